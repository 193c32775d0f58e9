"""Change detection over many companies: concurrent per vendor, isolated failures, batched lookups."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.refresh import check_companies, plan_refresh, stored_weeks, vanished_weeks
from protiv_dagster.sync.runs import all_weeks
from protiv_dagster.sync.state import SyncStateStore
from protiv_dagster.tables import ALL_TABLES, RAW_TIMESHEETS
from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.aspire import AspireEmulator
from protiv_emulators.busybusy import BusyBusyEmulator
from protiv_emulators.generator import generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 18, tzinfo=UTC)
PULL_DATE = AS_OF.date() - timedelta(days=14)
FAST_RETRIES = {"max_attempts": 2, "max_wait_seconds": 0.1}


class InFlight:
    """Counts the vendor requests an emulator is answering at the same moment (peak per emulator
    and across all of them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter = Counter()
        self.peak: Counter = Counter()
        self.peak_total = 0

    def watch(self, name: str, emulator) -> None:
        serve = emulator._serve_vendor

        def counted(request):
            with self.lock:
                self.now[name] += 1
                self.peak[name] = max(self.peak[name], self.now[name])
                self.peak_total = max(self.peak_total, sum(self.now.values()))
            try:
                return serve(request)
            finally:
                with self.lock:
                    self.now[name] -= 1

        emulator._serve_vendor = counted


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """Four QuickBooks Time and four BusyBusy companies, each vendor on its own emulator."""
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    registry = ConnectionRegistry(url)
    qbt, busybusy = QuickBooksTimeEmulator().start(), BusyBusyEmulator().start()
    for number in range(4):
        # From Nov 5: a day before the pull date (Friday Nov 6) in the first synced week.
        data = generate_company(
            f"qbt-{number}", seed=number, workers=5, days=16, as_of=AS_OF, timezone="America/Denver"
        )
        registry.connect(
            data.company_id,
            "quickbooks_time",
            qbt.base_url,
            {"access_token": qbt.add_company(data)},
            attendance_pull_date=PULL_DATE,
            settings={"timezone": data.timezone},
        )
        data = generate_company(f"bb-{number}", seed=number, workers=5, days=14, as_of=AS_OF)
        username, password = busybusy.add_company(data)
        registry.connect(
            data.company_id,
            "busybusy",
            busybusy.rest_url,
            {"username": username, "password": password},
            attendance_pull_date=PULL_DATE,
            settings={"timezone": data.timezone},
        )
    vendors = VendorApis(quickbooks_time=QuickBooksTimeTuning(**FAST_RETRIES), busybusy=BusyBusyTuning(**FAST_RETRIES))
    try:
        yield registry, ConnectionRegistryResource(url=url), vendors, {"quickbooks_time": qbt, "busybusy": busybusy}
    finally:
        qbt.stop()
        busybusy.stop()


def synced_once(registry, resource, vendors, tmp_path: Path) -> tuple[Warehouse, SyncStateStore]:
    """An empty warehouse and a sync state where every connection's initial sync finished at NOW,
    with the cursor of its first check."""
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables(ALL_TABLES)
    store = resource.sync_state()
    for result in check_companies(registry.list(), {}, resource, vendors, NOW):
        connection = result.connection
        batch = store.open_batch(
            connection.company_id,
            "initial_sync",
            result.changes.cursor,
            all_weeks(connection, NOW),
            True,
            NOW,
            initial_sync_for=connection.connected_at,
        )
        store.finish_batch(batch.batch_id, succeeded=True, at=NOW)
    return warehouse, store


def test_checks_run_side_by_side_per_vendor_and_at_most_the_bound_each(fleet):
    registry, resource, vendors, emulators = fleet
    in_flight = InFlight()
    for name, emulator in emulators.items():
        emulator.faults.latency(0.3)
        in_flight.watch(name, emulator)
    results = check_companies(registry.list(), {}, resource, vendors, NOW, per_vendor=2)
    assert [r.error for r in results] == [None] * 8
    assert max(in_flight.peak.values()) <= 2
    assert in_flight.peak_total > 2  # the two vendors were asked at the same time


def test_one_failing_company_fails_alone_and_results_keep_the_order_asked(fleet):
    registry, resource, vendors, emulators = fleet
    registry.connect(
        "refused",
        "quickbooks_time",
        emulators["quickbooks_time"].base_url,
        {"access_token": "not-a-token"},
        attendance_pull_date=PULL_DATE,
    )
    registry.connect(
        "unreachable",
        "busybusy",
        "http://127.0.0.1:9",
        {"username": "owner", "password": "pw"},
        attendance_pull_date=PULL_DATE,
    )
    connections = registry.list()
    results = check_companies(connections, {}, resource, vendors, NOW, per_vendor=2)
    assert [r.connection.company_id for r in results] == [c.company_id for c in connections]
    failed = {r.connection.company_id: r.error for r in results if r.error}
    assert set(failed) == {"refused", "unreachable"}
    assert "QuickBooks Time" in failed["refused"] and "not-a-token" not in failed["refused"]
    assert all(r.changes.cursor and r.changes.requests <= 2 for r in results if r.error is None)


def test_a_quiet_fleet_costs_at_most_two_requests_a_company_and_one_change_plans_one_sync(fleet, tmp_path):
    registry, resource, vendors, emulators = fleet
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables(ALL_TABLES)
    store = resource.sync_state()
    for result in check_companies(registry.list(), {}, resource, vendors, NOW):  # as an initial sync leaves them
        connection = result.connection
        batch = store.open_batch(
            connection.company_id,
            "initial_sync",
            result.changes.cursor,
            all_weeks(connection, NOW),
            True,
            NOW,
            initial_sync_for=connection.connected_at,
        )
        store.finish_batch(batch.batch_id, succeeded=True, at=NOW)
    before = sum(emulator.request_count for emulator in emulators.values())

    later = NOW + timedelta(hours=2)
    plan = plan_refresh(resource, vendors, warehouse, store, later)
    made = sum(emulator.request_count for emulator in emulators.values()) - before
    assert plan.batches == [] and plan.quiet == 8 and plan.failed == {} and plan.deferred == 0
    assert plan.requests == made <= 16
    assert {state.current_as_of for state in store.all_states().values()} == {later}

    company = emulators["quickbooks_time"].company("qbt-2")
    sheet = next(s for s in company.timesheets() if s["type"] == "regular" and not s["on_the_clock"])
    company.edit_timesheet(sheet["id"], notes="moved to the other crew")
    plan = plan_refresh(resource, vendors, warehouse, store, later + timedelta(hours=2))
    assert [batch.company_id for batch in plan.batches] == ["qbt-2"] and plan.quiet == 7


def test_an_edit_before_the_pull_date_in_the_first_week_resyncs_that_week(fleet, tmp_path):
    registry, resource, vendors, emulators = fleet
    warehouse, store = synced_once(registry, resource, vendors, tmp_path)
    company = emulators["quickbooks_time"].company("qbt-1")
    sheet = next(s for s in company.timesheets() if s["date"] == "2026-11-05")  # the pull date is Nov 6
    company.edit_timesheet(sheet["id"], notes="approved late")
    plan = plan_refresh(resource, vendors, warehouse, store, NOW + timedelta(hours=2))
    assert [(batch.company_id, batch.weeks) for batch in plan.batches] == [("qbt-1", ("2026-11-02", "2026-11-16"))]


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_stored_and_vanished_weeks_are_looked_up_per_company_in_one_go(request, tmp_path, backend):
    if backend == "duckdb":
        warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    else:
        warehouse = Warehouse(
            url=request.getfixturevalue("postgres_url"), schema_name=request.getfixturevalue("postgres_schema")
        )
    warehouse.ensure_tables(ALL_TABLES)
    import pandas as pd

    stored = [  # the same vendor id in two companies must not be confused
        ("a", "2026-11-02", "7"),
        ("b", "2026-11-16", "7"),
        ("b", "2026-11-09", "8"),
        ("b", "2026-10-26", "5"),
    ]
    frame = pd.DataFrame(
        [
            (company, pd.Timestamp(week).date(), "aspire", "WorkTicketTimes", position, entry, None, "{}")
            for position, (company, week, entry) in enumerate(stored)
        ],
        columns=RAW_TIMESHEETS.column_names,
    )
    warehouse.replace_partition(RAW_TIMESHEETS, frame, {"provider": "aspire"})

    assert stored_weeks(warehouse, {"a": ["7"], "b": ["7", "99"]}) == {"a": {"2026-11-02"}, "b": {"2026-11-16"}}
    assert stored_weeks(warehouse, {}) == {}
    listed = frozenset({date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)})
    live = {
        "a": ("WorkTicketTimes", listed, frozenset({"7"})),
        # 8 was deleted; 5 lies in a week the check did not list, where nothing is compared
        "b": ("WorkTicketTimes", listed, frozenset({"7"})),
    }
    assert vanished_weeks(warehouse, live) == {"b": {"2026-11-09"}}
    # Only the weeks listed are compared: a check that listed the week of 16 November alone says
    # nothing of 8 (stored in the week of 9 November).
    assert (
        vanished_weeks(warehouse, {"b": ("WorkTicketTimes", frozenset({date(2026, 11, 16)}), frozenset({"7"}))}) == {}
    )
    assert vanished_weeks(warehouse, {"b": ("WorkTicketTimes", frozenset(), frozenset())}) == {}


# -- Aspire: the token kept between checks --------------------------------------------------------
@pytest.fixture
def aspire_fleet(tmp_path, monkeypatch):
    """Two Aspire companies on one emulator, connected in a real registry and initially synced as far
    as the sync state goes (their first check's cursor stored)."""
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    registry = ConnectionRegistry(url)
    emulator = AspireEmulator().start()
    secrets = []
    for number in range(2):
        data = generate_company(
            f"aspire-{number}", seed=number, workers=5, days=16, as_of=AS_OF, timezone="America/Denver"
        )
        client_id, secret = emulator.add_company(data)
        secrets.append(secret)
        registry.connect(
            data.company_id,
            "aspire",
            emulator.base_url,
            {"client_id": client_id, "secret": secret},
            attendance_pull_date=PULL_DATE,
            settings={"timezone": data.timezone},
        )
    resource = ConnectionRegistryResource(url=url)
    vendors = VendorApis(aspire=AspireTuning(**FAST_RETRIES))
    warehouse, store = synced_once(registry, resource, vendors, tmp_path)
    try:
        yield registry, resource, vendors, warehouse, store, emulator, secrets
    finally:
        emulator.stop()


def stored_token(registry: ConnectionRegistry, company_id: str) -> str | None:
    return registry.get(company_id).credentials().get("token")


def test_a_quiet_aspire_company_costs_two_requests_with_its_kept_token_and_a_renewed_token_is_kept(aspire_fleet):
    registry, resource, vendors, warehouse, store, emulator, _ = aspire_fleet
    for company_id in ("aspire-0", "aspire-1"):  # the first check's token was kept
        assert stored_token(registry, company_id) == emulator.company(company_id).token
    cursors = {company_id: state.cursor for company_id, state in store.all_states().items()}

    def refresh(at: datetime) -> tuple[object, list[tuple[str, int]]]:
        before = len(emulator.request_log)
        plan = plan_refresh(resource, vendors, warehouse, store, at)
        served = [(entry.path, entry.status) for entry in emulator.request_log[before:]]
        assert plan.requests == len(served)  # what the client counted is what the vendor served
        return plan, served

    plan, served = refresh(NOW + timedelta(hours=2))
    assert plan.quiet == 2 and plan.batches == [] and plan.failed == {}
    assert len(served) == 4 and not any(path.startswith("/Authorization") for path, _ in served)
    assert sorted(served) == sorted([("/WorkTicketTimes", 200), ("/Contacts", 200)] * 2)
    # The quiet checks' cursors are kept, so the next check asks the next reference endpoint.
    assert all(state.cursor != cursors[c] for c, state in store.all_states().items())
    plan, served = refresh(NOW + timedelta(hours=4))
    assert sorted(served) == sorted([("/WorkTicketTimes", 200), ("/Opportunities", 200)] * 2)

    # The vendor ends a token early (401): renewed once through the refresh token, kept, and that
    # check makes no reference request.
    old_token = emulator.company("aspire-0").token
    emulator.expire_token("aspire-0")
    plan, served = refresh(NOW + timedelta(hours=6))
    assert plan.quiet == 2 and plan.failed == {}
    assert served.count(("/WorkTicketTimes", 401)) == 1 and served.count(("/Authorization/RefreshToken", 200)) == 1
    assert len(served) == 3 + 2  # 401, renewal, listing; the other company listing + WorkTickets
    assert stored_token(registry, "aspire-0") == emulator.company("aspire-0").token != old_token
    plan, served = refresh(NOW + timedelta(hours=8))
    assert len(served) == 4 and not any(path.startswith("/Authorization") for path, _ in served)

    # A kept token known to have expired is replaced before use: one token request, no 401.
    registry.rotate_credentials(
        "aspire-1", {"token_expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    )
    plan, served = refresh(NOW + timedelta(hours=10))
    assert plan.quiet == 2 and len(served) == 2 + 2
    assert ("/Authorization", 200) in served and not any(status == 401 for _, status in served)
    assert stored_token(registry, "aspire-1") == emulator.company("aspire-1").token


def test_an_aspire_token_never_shows_in_the_registry_columns_logs_or_a_failed_check(aspire_fleet, caplog):
    registry, resource, vendors, warehouse, store, emulator, secrets = aspire_fleet
    caplog.set_level(logging.DEBUG)
    emulator.expire_token("aspire-0")  # a renewal during the refresh, so a refresh token is issued too
    plan_refresh(resource, vendors, warehouse, store, NOW + timedelta(hours=2))
    # The admin changes the API user's secret at Aspire: the kept token and refresh token die.
    tokens = {
        company_id: (emulator.company(company_id).token, emulator.company(company_id).refresh_token)
        for company_id in ("aspire-0", "aspire-1")
    }
    company = emulator.company("aspire-1")
    company.secret, company.refresh_token = "rotated-by-the-admin", "revoked"
    emulator.expire_token("aspire-1")
    plan = plan_refresh(resource, vendors, warehouse, store, NOW + timedelta(hours=4))
    assert list(plan.failed) == ["aspire-1"] and plan.failed["aspire-1"].startswith("Aspire:")

    import sqlalchemy as sa

    with registry.engine.connect() as conn:
        rows = repr(conn.execute(sa.select(registry.table)).all())
    places = {
        "registry rows": rows,
        "logs": caplog.text,
        "failed check": plan.failed["aspire-1"] + repr(store.state("aspire-1")),
        "cursors": repr(store.all_states()),
    }
    values = {value for pair in tokens.values() for value in pair if value} | set(secrets)
    assert len(values) >= 5
    assert [(place, value[:6]) for place, text in places.items() for value in values if value in text] == []
    assert stored_token(registry, "aspire-0") == tokens["aspire-0"][0]  # kept, but only encrypted


def test_a_spread_refresh_asks_each_share_in_turn_the_longest_unasked_first(fleet, tmp_path):
    registry, resource, vendors, emulators = fleet
    warehouse, store = synced_once(registry, resource, vendors, tmp_path)
    company = emulators["quickbooks_time"].company("qbt-2")
    sheet = next(s for s in company.timesheets() if s["type"] == "regular" and not s["on_the_clock"])
    company.edit_timesheet(sheet["id"], notes="moved to the other crew")

    def tick(at: datetime):
        before = {name: emulator.request_count for name, emulator in emulators.items()}
        plan = plan_refresh(resource, vendors, warehouse, store, at, spread=4)
        asked = {c for c, state in store.all_states().items() if state.last_checked_at == at}
        made = sum(emulator.request_count - before[name] for name, emulator in emulators.items())
        assert plan.requests == made <= 2 * len(asked)
        return plan, asked

    # Eight companies over four ticks (a tick every 30 minutes: each company every two hours), two a
    # tick, all asked last at NOW: in the order of their ids.
    at = [NOW + timedelta(minutes=30 * number) for number in range(1, 7)]
    plan, first = tick(at[0])
    assert first == {"bb-0", "bb-1"} and plan.deferred == 6 and plan.quiet == 2 and plan.batches == []
    plan, second = tick(at[1])
    assert second == {"bb-2", "bb-3"} and plan.deferred == 6 and plan.batches == []
    plan, third = tick(at[2])
    assert third == {"qbt-0", "qbt-1"} and plan.batches == []
    # The edit waited for its company's turn, then is planned like any refresh.
    plan, fourth = tick(at[3])
    assert fourth == {"qbt-2", "qbt-3"} and plan.deferred == 6
    assert [batch.company_id for batch in plan.batches] == ["qbt-2"] and plan.quiet == 1
    assert sorted(first | second | third | fourth) == sorted(c.company_id for c in registry.list())
    # The next round starts over with the companies asked longest ago; the one in flight is skipped.
    plan, fifth = tick(at[4])
    assert fifth == first and plan.skipped == 1 and plan.deferred == 5
    (in_flight,) = store.pending_batches()
    store.finish_batch(in_flight.batch_id, succeeded=True, at=at[4])
    plan, sixth = tick(at[5])
    assert sixth == second and plan.skipped == 0
