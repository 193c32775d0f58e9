"""The circular button: a force sync through the service is the same sync as `protiv sync`, run in
the service's worker and recorded in the Dagster instance; it is idempotent while it runs, limited
to once a minute per company, tells the app by a signed webhook, and a disconnect keeps its data.
A pull date moved earlier syncs what it adds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from protiv_dagster.integrations.audit import AuditLog
from protiv_dagster.integrations.auth import Actor
from protiv_dagster.integrations.service import SYNC_TAG, IntegrationService
from protiv_dagster.sync.state import IN_PROCESS
from tests.service.conftest import Api

pytestmark = pytest.mark.slow


def propay_rows(api: Api, company_id: str) -> int:
    return len(api.warehouse.read_table("propay_opportunities", where={"company_id": company_id}))


def test_a_force_sync_runs_once_at_a_time_at_most_once_a_minute_and_a_disconnect_keeps_its_data(api: Api):
    company = "bb-force"
    connected = api.connect(company, "busybusy")
    assert connected.status_code == 201 and connected.json()["status"] == "pending"
    # The service starts the initial sync itself; a force sync afterwards is a new one.
    [initial] = connected.json()["syncs"]
    assert (
        initial["trigger"] == "initial_sync" and api.wait_for_sync(company, initial["sync_id"])["status"] == "succeeded"
    )
    headers = api.as_admin(company, "carol")
    first = api.call("POST", f"/companies/{company}/syncs", headers)
    assert first.status_code == 202, first.text
    sync = first.json()["sync"]
    assert first.json()["already_running"] is False and first.headers["Location"] == first.json()["status_url"]
    again = api.call("POST", f"/companies/{company}/syncs", headers)
    assert again.status_code == 202 and again.json()["already_running"] is True
    assert again.json()["sync"]["sync_id"] == sync["sync_id"]

    done = api.wait_for_sync(company, sync["sync_id"])
    assert done["status"] == "succeeded", done
    assert len(done["run_ids"]) == 3 and done["started_by"] == "carol"
    runs = [api.instance.get_run_by_id(run_id) for run_id in done["run_ids"]]
    assert [run.job_name for run in runs] == ["sync_company_reference", "sync_company_week", "compute_propay"]
    assert all(run.tags[SYNC_TAG] == sync["sync_id"] and run.tags["protiv/company"] == company for run in runs)
    assert propay_rows(api, company) > 0

    limited = api.call("POST", f"/companies/{company}/syncs", headers)
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    status = api.call("GET", f"/companies/{company}/integration", headers).json()
    assert status["status"] == "connected" and status["last_sync_at"] and status["current_as_of"]
    assert status["syncs"][0]["status"] == "succeeded"

    finished = api.receiver.wait_for(lambda e: e["type"] == "sync.finished" and e["data"]["sync_id"] == sync["sync_id"])
    assert finished["data"]["status"] == "succeeded" and finished["data"]["run_ids"] == done["run_ids"]
    api.receiver.wait_for(
        lambda e: (
            e["type"] == "company.status_changed"
            and e["data"]["company_id"] == company
            and e["data"]["status"] == "connected"
        )
    )
    actions = [(e.actor, e.action, e.outcome) for e in reversed(AuditLog(api.registry.url).entries(company))]
    assert actions == [
        ("alice", "connect", "done"),
        ("carol", "force_sync", "done"),
        ("carol", "force_sync", "refused"),
    ]

    gone = api.call("DELETE", f"/companies/{company}/integration", headers)
    assert gone.status_code == 200 and gone.json() == {
        "company_id": company,
        "status": "disconnected",
        "data_kept": True,
    }
    assert propay_rows(api, company) > 0
    assert api.call("GET", f"/companies/{company}/integration", headers).status_code == 404
    api.receiver.wait_for(lambda e: e["data"].get("company_id") == company and e["data"]["status"] == "disconnected")


def test_a_pull_date_moved_earlier_syncs_what_it_adds(api: Api):
    company = "aspire-pull-date"
    today = date.today()
    connected = api.connect(company, "aspire", attendance_pull_date=(today - timedelta(days=3)).isoformat())
    assert connected.status_code == 201
    # The pull date is moved once the initial sync has ended (a sync under way is answered instead).
    assert api.wait_for_sync(company, connected.json()["syncs"][0]["sync_id"])["status"] == "succeeded"
    headers = api.as_admin(company)
    future = api.call(
        "PATCH", f"/companies/{company}/integration", headers, json={"attendance_pull_date": "2999-01-01"}
    )
    assert future.status_code == 422 and future.json()["detail"][0]["field"] == "attendance_pull_date"

    later = api.call(
        "PATCH",
        f"/companies/{company}/integration",
        headers,
        json={"attendance_pull_date": (today - timedelta(days=2)).isoformat()},
    )
    assert later.status_code == 200 and later.json()["sync"] is None

    earlier = (today - timedelta(days=12)).isoformat()
    moved = api.call("PATCH", f"/companies/{company}/integration", headers, json={"attendance_pull_date": earlier})
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"]["attendance_pull_date"] == earlier
    done = api.wait_for_sync(company, moved.json()["sync"]["sync_id"])
    assert done["status"] == "succeeded", done
    attendance = api.warehouse.read_table("attendance", where={"company_id": company})
    assert str(min(attendance["work_date"]))[:10] >= earlier and len(attendance) > 0
    assert [e.action for e in AuditLog(api.registry.url).entries(company)][:3] == ["pull_date", "pull_date", "connect"]


def test_a_sync_is_recorded_before_it_runs_and_outlives_a_restart_of_the_service(api: Api):
    """A force sync is in the sync state from the click (the daemon's refresh leaves the company
    alone while it runs); after a restart its id still answers, with who asked for it; a sync an
    earlier process left in flight is closed at start, so the company is not stuck 'syncing'."""
    company = "bb-restart"
    connected = api.connect(company, "busybusy")
    assert api.wait_for_sync(company, connected.json()["syncs"][0]["sync_id"])["status"] == "succeeded"
    started = api.call("POST", f"/companies/{company}/syncs", api.as_admin(company, "dave"))
    assert started.status_code == 202, started.text
    sync_id = started.json()["sync"]["sync_id"]
    recorded = api.service.store.batch(sync_id)  # in the sync state at once, not only in memory
    assert recorded.trigger == "app_force_sync" and recorded.phase in ("in_process", "done")
    done = api.wait_for_sync(company, sync_id)
    assert done["status"] == "succeeded" and len(done["run_ids"]) == 3
    assert api.service.wait_until_idle(120)

    # What a process that died with a sync under way leaves behind.
    now = datetime.now(UTC)
    left = api.service.store.open_batch(company, "app_force_sync", None, [], True, now, phase=IN_PROCESS)
    restarted = IntegrationService(api.service.defs, api.instance, registry_url=api.registry.url)
    restarted.start()
    restarted.stop()
    operator = Actor("ops", "operator")
    again = restarted.sync(operator, company, sync_id)
    assert again.status == "succeeded" and again.started_by == "dave" and again.run_ids == done["run_ids"]
    closed = restarted.sync(operator, company, left.batch_id)
    assert closed.status == "failed" and closed.error and "restarted before this sync ended" in closed.error
    assert api.service.store.pending_batches(company) == []
