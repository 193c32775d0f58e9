"""The sensors at fleet scale: what one tick reports when many companies are connected."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from protiv_dagster.automation import sensors
from protiv_dagster.automation.sensors import REPORT_CHANGED_PER_TICK, REPORT_UNCHANGED_PER_TICK
from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, EnvReference
from protiv_dagster.definitions import build_defs
from protiv_dagster.partitions import company_partitions
from protiv_dagster.sync import runs as syncs

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
COMPANIES = [f"co-{n:03d}" for n in range(REPORT_UNCHANGED_PER_TICK + 50)]


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    registry = ConnectionRegistry(url)
    for company_id in COMPANIES:  # no vendor is asked: health comes from the sync state
        registry.connect(
            company_id,
            "busybusy",
            "http://127.0.0.1:9",
            {
                "username": EnvReference("PROTIV_CREDENTIAL_BB_USER"),
                "password": EnvReference("PROTIV_CREDENTIAL_BB_PW"),
            },
            attendance_pull_date=date(2026, 11, 6),
        )
    resource = ConnectionRegistryResource(url=url)
    resource.sync_state().record_quiet_checks(COMPANIES, NOW)
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        instance.add_dynamic_partitions(company_partitions.name, COMPANIES)
        yield build_defs(registry=resource), resource, instance


def tick(defs, resource, instance, cursor, at, monkeypatch):
    monkeypatch.setattr(syncs, "utc_now", lambda: at)
    with dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        resources={"registry": resource},
        definitions=defs,
    ) as context:
        return defs.get_sensor_def("connection_status").evaluate_tick(context)


def test_unchanged_health_is_re_reported_oldest_first_a_bounded_number_per_tick(fleet, monkeypatch):
    defs, resource, instance = fleet
    first = tick(defs, resource, instance, None, NOW, monkeypatch)
    assert len(first.asset_events) == len(COMPANIES) and len(first.run_requests) == len(
        COMPANIES
    )  # all new: all reported

    quiet = tick(defs, resource, instance, first.cursor, NOW + timedelta(minutes=10), monkeypatch)
    assert quiet.asset_events == [] and quiet.run_requests == []

    # Every result is 30 minutes old now: the oldest go first, at most the bound per tick, no run.
    resource.sync_state().record_quiet_checks(COMPANIES, NOW + timedelta(minutes=25))
    later = NOW + timedelta(minutes=31)
    slice_one = tick(defs, resource, instance, quiet.cursor, later, monkeypatch)
    assert len(slice_one.asset_events) == REPORT_UNCHANGED_PER_TICK and slice_one.run_requests == []
    slice_two = tick(defs, resource, instance, slice_one.cursor, later + timedelta(minutes=1), monkeypatch)
    assert len(slice_two.asset_events) == len(COMPANIES) - REPORT_UNCHANGED_PER_TICK
    reported = {event.partition for event in slice_one.asset_events + slice_two.asset_events}
    assert reported == set(COMPANIES)
    assert all(entry["at"] >= later.timestamp() for entry in json.loads(slice_two.cursor).values())

    # A change of colour is reported at once, whatever the bound.
    resource.sync_state().record_check("co-007", later, error="BusyBusy: login refused")
    changed = tick(defs, resource, instance, slice_two.cursor, later + timedelta(minutes=2), monkeypatch)
    assert [event.partition for event in changed.asset_events] == ["co-007"]
    assert [request.partition_key for request in changed.run_requests] == ["co-007"]


def test_changes_of_colour_are_reported_a_bounded_number_per_tick_red_first(fleet, monkeypatch):
    defs, resource, instance = fleet
    assert len(COMPANIES) < REPORT_CHANGED_PER_TICK  # the other tests see every change at once
    monkeypatch.setattr(sensors, "REPORT_CHANGED_PER_TICK", 60)
    reds = {"co-100", "co-140"}
    for company_id in reds:
        resource.sync_state().record_check(company_id, NOW, error="BusyBusy: login refused")

    first = tick(defs, resource, instance, None, NOW, monkeypatch)
    reported_first = [event.partition for event in first.asset_events]
    assert len(reported_first) == 60 and reds <= set(reported_first)
    assert sorted(request.partition_key for request in first.run_requests) == sorted(reported_first)
    assert set(json.loads(first.cursor)) == set(reported_first)  # the others are still to report

    second = tick(defs, resource, instance, first.cursor, NOW + timedelta(minutes=1), monkeypatch)
    third = tick(defs, resource, instance, second.cursor, NOW + timedelta(minutes=2), monkeypatch)
    reported = [event.partition for result in (first, second, third) for event in result.asset_events]
    assert sorted(reported) == sorted(COMPANIES)  # each once, over three ticks
    assert [len(result.run_requests) for result in (first, second, third)] == [60, 60, len(COMPANIES) - 120]
    quiet = tick(defs, resource, instance, third.cursor, NOW + timedelta(minutes=3), monkeypatch)
    assert quiet.asset_events == [] and quiet.run_requests == []
