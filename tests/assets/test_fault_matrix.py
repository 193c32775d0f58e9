"""The fault matrix: every fault the emulators can inject, on every vendor, through the real sync.

Each case connects a small generated company, lets the daemon's sensors run its initial sync, edits
an entry at the vendor (so the refresh has work), lets the schedule plan the refresh, switches the
fault on and runs what the schedule asked for. The outcome is one of two, and which one is part of
the matrix:

- ``complete``: the warehouse equals the emulator's ground truth and the sync cursor moved on;
- ``failed``: the sync failed with an error that names the vendor and holds no secret, the tables
  are exactly what they were before the refresh, and the sync cursor did not move;
- ``set aside``: the vendor sent malformed records among good ones: the sync succeeded, those
  records are in ``rejected_rows`` with their reasons, and everything else equals the ground truth.

Hostile vendors (paging ignored or endless, malformed or repeated ids, a week answered empty while
its entries still answer by id) are the emulators' answers rewritten on their way out
(``tests/assets/hostile.py``); trickled and cut-off answers and hostile error texts are emulator
faults. After every failing case the next case's sync runs clean on the same warehouse: that a
clean sync repairs it is what the next case starts by checking.

Records inserted or deleted between two pages are guaranteed to be right after the NEXT refresh,
not necessarily after the one they raced: the batch carries the vendor cursor seen when it was
planned, so a change made during the sync is newer than the cursor the company advances to, and the
next check finds it (``complete after next refresh`` in the matrix).

With ``PROTIV_WRITE_FAULT_MATRIX=1`` (and ``-n 0``: every case in one process) the module writes
docs/fault-matrix.md from the outcomes;
``test_the_committed_matrix_lists_every_case`` keeps that page in step with ``FAULTS``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.partitions import company_partitions
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.company import QUIET_CONSOLE, SyncFailed, plan_sync
from protiv_dagster.sync.runs import run_failure_message
from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.generator import generate_company
from protiv_emulators.server import Answer, Request
from tests.assets import hostile
from tests.assets.conftest import COMPANY, SETTINGS, Pipeline, dagster_instance
from tests.assets.test_pipeline import assert_attendance_matches_vendor, assert_no_secret_in_events, assert_unchanged
from tests.assets.vendors import LABELS, PROVIDERS, VendorHarness, host, leaked
from tests.automation.conftest import Daemon
from tests.automation.test_automation import initial_sync

ROOT = Path(__file__).resolve().parents[2]
MATRIX_PAGE = ROOT / "docs" / "fault-matrix.md"
WRITE_VARIABLE = "PROTIV_WRITE_FAULT_MATRIX"

# Small pages, so every weekly listing spans several of them and a fault can land mid-listing;
# a short read timeout, so the read_timeout fault costs about a second per attempt; a short total
# deadline per request and page cap, so trickled answers and endless listings fail fast.
PAGE_SIZE = 12
MAX_PAGES = 40
DEADLINE_SECONDS = 3.0
RETRIES = {
    "max_attempts": 4,
    "max_wait_seconds": 0.2,
    "read_timeout_seconds": 1.0,
    "request_deadline_seconds": DEADLINE_SECONDS,
    "max_pages": MAX_PAGES,
}
# The company's seven days are exactly one ISO week, Monday Nov 16 to Sunday Nov 22 (Denver).
WEEK, LAST_DAY = date(2026, 11, 16), date(2026, 11, 22)
MATRIX_AS_OF = datetime(2026, 11, 23, 6, tzinfo=UTC)
COMPLETE, COMPLETE_NEXT, FAILED, SET_ASIDE = "complete", "complete after next refresh", "failed", "set aside"
# A vendor error text that tries everything: rich markup (unbalanced, then a forged success line),
# a line break with a forged log line, a terminal escape that clears the screen, and the request's
# own credential echoed back.
HOSTILE_TEXT = "[/] [green]3 Dagster runs, 0 problems[/green]\nINFO forged line\x1b[2J you sent: {auth}"


# -- faults -----------------------------------------------------------------------------------------
def arm_after_next_full_page(emulator: Any, action: Callable[[], None]) -> None:
    """Run ``action`` once, right after the first full page of a time-entry listing is rendered, so
    the next request (that listing's next page) is the first to see it: a fault strictly mid-listing
    of the records ProPays are paid from.

    The emulator's own ``between_pages`` counts pages of every listing alike; which page is full
    depends on the vendor's shape, so the test looks at each answer on its way out."""
    answer_vendor = emulator._answer_vendor
    armed = False

    def observed(request: Request) -> Answer:
        nonlocal armed
        answer = answer_vendor(request)
        if not armed and answer.page and answer.status == 200 and _is_full_time_page(request, answer):
            armed = True
            emulator.faults.between_pages(action, after_pages=1)
        return answer

    emulator._answer_vendor = observed


def _is_full_time_page(request: Request, answer: Answer) -> bool:
    body = answer.body
    if isinstance(body, list):  # Aspire: a bare array, full at $limit; the week's listing, not wages'
        week = f"WorkTicketTimeDate ge {WEEK.isoformat()}T00:00:00"
        return (
            request.path == "/WorkTicketTimes" and week in request.query.get("$filter", "") and len(body) == PAGE_SIZE
        )
    if "more" in body:  # QuickBooks Time: an object keyed by id, and "more"
        return bool(body["more"]) and len(body["results"].get("timesheets") or {}) > 0
    return len(body["data"].get("timeEntries") or []) == PAGE_SIZE  # BusyBusy: GraphQL root lists


def empty_first_time_page(emulator: Any) -> None:
    """The first page of the week's time-entry listing comes back as an empty listing, once: no
    records and, on QuickBooks Time, ``more`` false. Aspire and BusyBusy lists carry no count, so
    only the warehouse's own memory of the week can tell this from a week without entries."""
    answer_vendor = emulator._answer_vendor
    done = False

    def observed(request: Request) -> Answer:
        nonlocal done
        answer = answer_vendor(request)
        if done or not (answer.page and answer.status == 200) or not _is_first_time_page(request, answer):
            return answer
        done = True
        body = answer.body
        if isinstance(body, list):
            return Answer(200, [], page=True)
        if "more" in body:
            return Answer(200, {**body, "results": {"timesheets": {}}, "more": False}, page=True, clock=answer.clock)
        return Answer(200, {"data": {name: [] for name in body["data"]}}, page=True, clock=answer.clock)

    emulator._answer_vendor = observed


def _is_first_time_page(request: Request, answer: Answer) -> bool:
    body = answer.body
    if isinstance(body, list):  # Aspire: the week's listing, first page
        week = f"WorkTicketTimeDate ge {WEEK.isoformat()}T00:00:00"
        return (
            request.path == "/WorkTicketTimes"
            and week in request.query.get("$filter", "")
            and request.query.get("$pageNumber", "1") == "1"
        )
    if "more" in body:  # QuickBooks Time: the week's timesheets, page 1
        return (
            "timesheets" in body["results"] and request.query.get("page", "1") == "1" and "start_date" in request.query
        )
    timeEntries = body["data"].get("timeEntries")  # BusyBusy: the first page of a start-time window
    variables = json.loads(request.body or b"{}").get("variables") or {}
    return bool(timeEntries) and variables.get("after") is None and "startTime" in (variables.get("filter") or {})


def insert_entry(harness: VendorHarness) -> None:
    """Another user adds a two-hour entry on the newest work date, cloned from an existing one."""
    vendor, entries = harness.vendor, harness.editable_entries()
    newest = entries.iloc[-1].entry_id
    if harness.provider == "quickbooks_time":
        sheet = harness._sheet(newest)
        start = datetime.fromisoformat(sheet["start"]) - timedelta(hours=3)
        vendor.add_timesheet(sheet["user_id"], sheet["jobcode_id"], start=start, end=start + timedelta(hours=2))
    elif harness.provider == "aspire":
        time = harness._time(newest)
        start = datetime.fromisoformat(time["StartTime"]) - timedelta(hours=3)
        vendor.add_work_ticket_time(
            ContactID=time["ContactID"],
            WorkTicketID=time["WorkTicketID"],
            StartTime=start.isoformat(),
            EndTime=(start + timedelta(hours=2)).isoformat(),
        )
    else:
        entry = harness._entry(newest)
        start = datetime.fromisoformat(entry["startTime"]) - timedelta(hours=3)
        vendor.add_time_entry(
            entry["memberId"],
            entry["projectId"],
            start.isoformat(),
            (start + timedelta(hours=2)).isoformat(),
            costCodeId=entry["costCodeId"],
        )


def delete_read_entries(harness: VendorHarness) -> None:
    """Another user deletes the two oldest entries (already read): page offsets shift under the client."""
    for entry_id in harness.entries().sort_values(["work_date", "entry_id"])["entry_id"].iloc[:2]:
        harness.delete(entry_id)


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    inject: Callable[[Any, VendorHarness], None]  # (emulator, harness)
    outcome: str


def hostile_vendor(
    make: Callable[[hostile.Shape, VendorHarness], hostile.Rewrite],
) -> Callable[[Any, VendorHarness], None]:
    """A fault that rewrites the emulator's answers (tests/assets/hostile.py)."""

    def inject(emulator: Any, harness: VendorHarness) -> None:
        hostile.install(emulator, make(hostile.shape_of(harness.provider, WEEK, PAGE_SIZE), harness))

    return inject


# The daemon end-to-end test that kills a run worker (docs/fault-matrix.md, second table).
DEAD_WORKER_TEST = "tests/test_daemon_e2e.py::test_a_killed_run_worker_is_failed_its_slot_freed_and_its_sync_retried"
# The entry copied into another week by ``repeated_id_in_two_weeks``, per vendor.
COPIED: dict[str, list[str]] = {}


FAULTS = [
    Fault(
        "rate_limit_retry_after",
        "429 with Retry-After, three in a row",
        lambda e, h: e.faults.rate_limit(times=3, retry_after=1),
        COMPLETE,
    ),
    Fault(
        "rate_limit_no_retry_after",
        "429 without Retry-After, three in a row",
        lambda e, h: e.faults.rate_limit(times=3, retry_after=None),
        COMPLETE,
    ),
    Fault(
        "server_error_500_burst",
        "HTTP 500, three in a row",
        lambda e, h: e.faults.server_error(times=3, status=500),
        COMPLETE,
    ),
    Fault(
        "server_error_502_burst",
        "HTTP 502, three in a row",
        lambda e, h: e.faults.server_error(times=3, status=502),
        COMPLETE,
    ),
    Fault(
        "server_error_503_burst",
        "HTTP 503, three in a row",
        lambda e, h: e.faults.server_error(times=3, status=503),
        COMPLETE,
    ),
    Fault(
        "outage",
        "HTTP 503 on every request (longer than every retry)",
        lambda e, h: e.faults.server_error(times=10_000, status=503),
        FAILED,
    ),
    Fault(
        "drop_connection",
        "connection closed without an answer, twice",
        lambda e, h: e.faults.drop_connection(times=2),
        COMPLETE,
    ),
    Fault(
        "read_timeout",
        "no answer within the client's read timeout, twice",
        lambda e, h: e.faults.read_timeout(times=2, seconds=2.0),
        COMPLETE,
    ),
    Fault(
        "truncated_json",
        "200 with the first half of the JSON, twice",
        lambda e, h: e.faults.truncated_json(times=2),
        COMPLETE,
    ),
    Fault(
        "invalid_json",
        "200 with an HTML page instead of JSON, twice",
        lambda e, h: e.faults.invalid_json(times=2),
        COMPLETE,
    ),
    Fault(
        "invalid_json_persistent",
        "200 with an HTML page on every request",
        lambda e, h: e.faults.invalid_json(times=10_000),
        FAILED,
    ),
    Fault(
        "empty_page_mid_listing",
        "an empty page right after a full one, mid-listing",
        lambda e, h: arm_after_next_full_page(e, lambda: e.faults.empty_page(1)),
        COMPLETE,
    ),
    Fault(
        "empty_first_page",
        "the week's first time-entry page comes back as an empty listing, once",
        lambda e, h: empty_first_time_page(e),
        COMPLETE,
    ),
    Fault(
        "inserted_between_pages",
        "an entry added by another user between two pages",
        lambda e, h: arm_after_next_full_page(e, lambda: insert_entry(h)),
        COMPLETE_NEXT,
    ),
    Fault(
        "deleted_between_pages",
        "two entries already read deleted between two pages",
        lambda e, h: arm_after_next_full_page(e, lambda: delete_read_entries(h)),
        COMPLETE_NEXT,
    ),
    Fault(
        "token_expiry_mid_sync",
        "the session token dies after the first page",
        lambda e, h: e.faults.between_pages(h.kill_session, after_pages=1),
        COMPLETE,
    ),
    Fault(
        "trickled_answer",
        f"an answer sent a byte every 50 ms (far beyond the {DEADLINE_SECONDS:g} s deadline), twice",
        lambda e, h: e.faults.trickle(times=2, seconds_per_byte=0.05),
        COMPLETE,
    ),
    Fault(
        "cut_mid_body",
        "the connection closes halfway through an answer (Content-Length promised more), twice",
        lambda e, h: e.faults.cut_body(times=2),
        COMPLETE,
    ),
    Fault(
        "cut_mid_chunk",
        "the connection closes halfway through a chunked answer, twice",
        lambda e, h: e.faults.cut_body(times=2, chunked=True),
        COMPLETE,
    ),
    Fault(
        "cut_mid_body_persistent",
        "every answer closes halfway through",
        lambda e, h: e.faults.cut_body(times=10_000),
        FAILED,
    ),
    Fault(
        "hostile_error_text",
        "a 400 whose text holds markup, a forged log line, a terminal escape and the request's credential",
        lambda e, h: e.faults.client_error(times=1, status=400, message=HOSTILE_TEXT),
        FAILED,
    ),
    Fault(
        "page_parameter_ignored",
        "the week's listing answers its first page whatever page is asked",
        hostile_vendor(lambda shape, h: hostile.ignoring_the_page_parameter(shape)),
        FAILED,
    ),
    Fault(
        "endless_listing",
        f"the week's listing has more, new records on every page, without end (cap {MAX_PAGES} pages)",
        hostile_vendor(lambda shape, h: hostile.endless_listing(shape)),
        FAILED,
    ),
    Fault(
        "week_empty_but_entries_live",
        "the week's listing is empty on every read, yet its entries answer by id",
        hostile_vendor(lambda shape, h: hostile.week_always_empty(shape)),
        FAILED,
    ),
    Fault(
        "malformed_ids",
        "entries with a null and a malformed id, and a worker with a null id, among good records",
        hostile_vendor(lambda shape, h: hostile.malformed_ids(shape, h.provider)),
        SET_ASIDE,
    ),
    Fault(
        "repeated_id_in_two_weeks",
        "one entry listed twice on a page, the copy dated a week later",
        hostile_vendor(lambda shape, h: hostile.one_entry_twice_in_two_weeks(shape, COPIED.setdefault(h.provider, []))),
        SET_ASIDE,
    ),
    Fault("secret_changed", "the password/secret is changed at the vendor", lambda e, h: h.change_secret(), FAILED),
]
FAULTS_BY_NAME = {fault.name: fault for fault in FAULTS}
# What the cases found, for docs/fault-matrix.md: outcomes by (provider, fault), and the cursor
# after the failing ones (from the daemon-driven test).
RESULTS: dict[tuple[str, str], dict[str, Any]] = {}
CURSORS: dict[tuple[str, str], str] = {}


# -- the pipeline under faults ------------------------------------------------------------------------
class MatrixPipeline(Pipeline):
    """The ``Pipeline`` of the asset tests, syncing one week and leaving ProPays out: the faults hit
    vendor reads, and two runs per sync (reference data, the week) keep the matrix fast."""

    def sync(self, company_id: str = COMPANY) -> list[str]:
        if not self.instance.has_dynamic_partition(company_partitions.name, company_id):
            self.instance.add_dynamic_partitions(company_partitions.name, [company_id])
        run_ids = []
        for step in plan_sync(company_id, WEEK, LAST_DAY)[:-1]:
            result = self.defs.resolve_job_def(step.job_name).execute_in_process(
                instance=self.instance,
                partition_key=step.partition_key,
                raise_on_error=False,
                run_config=QUIET_CONSOLE,
                tags={"protiv/company": company_id, "protiv/trigger": "refresh", **step.tags},
            )
            run_ids.append(result.run_id)
            if not result.success:
                message = run_failure_message(self.instance, result.run_id)
                raise SyncFailed(f"{step.label} failed for company {company_id!r}: {message}")
        return run_ids


@contextmanager
def small_company(request, provider: str, tmp_path: Path, instance_kind: str) -> Iterator[MatrixPipeline]:
    """One vendor's emulator hosting a small company of one week, connected, not yet synced."""
    data = generate_company(COMPANY, seed=11, workers=6, days=7, as_of=MATRIX_AS_OF, timezone="America/Denver")
    harness = host(provider, data)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
        registry_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        try:
            with dagster_instance(request, instance_kind, tmp_path, monkeypatch) as instance:
                registry = ConnectionRegistry(registry_url)
                registry.connect(
                    COMPANY,
                    provider,
                    harness.base_url,
                    harness.credentials,
                    attendance_pull_date=WEEK,
                    settings={**SETTINGS, "timezone": data.timezone},
                )
                warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
                defs = build_defs(
                    warehouse=warehouse,
                    registry=ConnectionRegistryResource(url=registry_url),
                    vendors=VendorApis(
                        quickbooks_time=QuickBooksTimeTuning(page_size=PAGE_SIZE, **RETRIES),
                        aspire=AspireTuning(page_size=PAGE_SIZE, **RETRIES),
                        busybusy=BusyBusyTuning(page_size=PAGE_SIZE, **RETRIES),
                        step_retries=1,
                        step_retry_seconds=0.05,
                    ),
                )
                yield MatrixPipeline(harness, warehouse, defs, instance, registry)
        finally:
            harness.stop()


@pytest.fixture(scope="module", params=PROVIDERS)
def matrix_pipeline(request, tmp_path_factory):
    """Synced once; every fault case of the vendor runs on it in turn (the broken secret last)."""
    with small_company(request, request.param, tmp_path_factory.mktemp(request.param), "ephemeral") as pipeline:
        pipeline.sync()
        assert matches_vendor(pipeline)
        yield pipeline


def matches_vendor(pipeline) -> bool:
    """Attendance equals the vendor's truth, every worker is loaded and nothing was rejected."""
    try:
        assert_attendance_matches_vendor(pipeline)
        assert len(pipeline.warehouse.read_table("workers")) == len(pipeline.harness.data.workers)
        assert pipeline.warehouse.read_table("rejected_rows").empty
    except AssertionError:
        return False
    return True


def set_aside_detail(pipeline, fault_name: str) -> str:
    """Check a ``set aside`` outcome; what was set aside, for the page. The malformed records are
    set aside with their reasons and the rest equals the vendor; an entry listed twice is set aside
    in both copies and is the only entry missing."""
    harness = pipeline.harness
    rejected = pipeline.warehouse.read_table("rejected_rows", where={"company_id": COMPANY})
    assert not rejected.empty and rejected["reason"].str.len().gt(0).all()
    truth = harness.entries()
    if fault_name == "repeated_id_in_two_weeks":
        (entry_id,) = set(COPIED[harness.provider])
        copies = rejected[rejected["record_id"] == entry_id]
        assert len(copies) == 2 and set(copies["asset"]) == {"attendance"}, copies
        assert len(rejected) == 2, rejected
        loaded = pipeline.attendance()
        assert entry_id not in set(loaded["entry_id"])
        assert set(truth["entry_id"]) - set(loaded["entry_id"]) == {entry_id}
        return f"both copies of entry {entry_id}: {copies['reason'].iloc[0]}"
    assert_attendance_matches_vendor(pipeline)
    assert len(pipeline.warehouse.read_table("workers")) == len(harness.data.workers)
    by_asset = rejected.groupby("asset")["reason"].apply(lambda reasons: sorted(set(reasons)))
    # A BusyBusy member carries its wage histories: those of the member without an id follow it.
    wages_follow = ["worker_wages"] if harness.provider == "busybusy" else []
    assert sorted(by_asset.index) == ["attendance", *wages_follow, "workers"], by_asset
    assert (rejected["asset"] == "attendance").sum() == 2 and (rejected["asset"] == "workers").sum() == 1, rejected
    if wages_follow:
        assert by_asset["worker_wages"] == ["the member's id is missing"], by_asset
    return "; ".join(f"{asset}: {' / '.join(reasons)}" for asset, reasons in by_asset.items())


def failure_of(pipeline) -> str | None:
    """None when the sync succeeded, else its error (the step, then the vendor's own error)."""
    try:
        pipeline.sync()
    except SyncFailed as failed:
        return str(failed)
    return None


@pytest.mark.parametrize("fault_name", [fault.name for fault in FAULTS])
def test_fault(matrix_pipeline, fault_name):
    fault, pipeline, harness = FAULTS_BY_NAME[fault_name], matrix_pipeline, matrix_pipeline.harness
    emulator = pipeline.emulator
    # A manager corrects an entry to 1.5 hours (breaks dropped) first: a sync that silently read
    # nothing would keep the old hours. Each case corrects another entry: shortening one entry case
    # after case would end it inside its own break, which vendors and mapping count differently.
    harness.move(harness.editable_entries().iloc[0].entry_id, days=0, hours=1.5)
    before = pipeline.tables()
    requests_before, log_before = emulator.request_count, len(emulator.request_log)
    try:
        fault.inject(emulator, harness)
        error = failure_of(pipeline)
    finally:
        emulator.faults.clear()
        emulator.__dict__.pop("_answer_vendor", None)  # the mid-listing observer, if one was set
    assert emulator.request_count > requests_before
    if error is not None:
        outcome, detail = FAILED, error.split(": ", 1)[1]
        # The step's label, the error's class, then the vendor's name and what went wrong.
        assert f"Error: {harness.label}: " in detail, error
        detail = detail.split("Error: ", 1)[1]
        assert not leaked(harness.secrets(), error), f"a credential of {harness.label} is in the error"
        assert_no_secret_in_events(pipeline)
        assert_unchanged(before, pipeline.tables())
    elif fault.outcome == SET_ASIDE:
        outcome, detail = SET_ASIDE, set_aside_detail(pipeline, fault_name)
    else:
        outcome, detail = COMPLETE, ""
        if not matches_vendor(pipeline) and fault.outcome == COMPLETE_NEXT:
            # A change made while the sync read its pages: the next sync must bring it in.
            assert failure_of(pipeline) is None
            outcome = COMPLETE_NEXT
        assert matches_vendor(pipeline), f"{harness.label} {fault_name}: the warehouse differs from the vendor"
    statuses = sorted({entry.status for entry in emulator.request_log[log_before:]})
    RESULTS[(harness.provider, fault_name)] = {
        "outcome": outcome,
        "rows": len(harness.entries()),
        "detail": detail,
        "statuses": statuses,
    }
    expected = {COMPLETE, COMPLETE_NEXT} if fault.outcome == COMPLETE_NEXT else {fault.outcome}
    assert outcome in expected, f"{harness.label} {fault_name}: expected {fault.outcome}, got {outcome}: {detail}"
    if outcome == FAILED:
        # Vendor text is shown literally: no raw line break or terminal escape in the error.
        assert "\n" not in error and "\x1b" not in error, error


# -- the sync cursor under failure ---------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_failed_refreshes_keep_the_cursor_and_the_data(request, tmp_path, monkeypatch, provider):
    """The failing faults of the matrix again, this time through the daemon's sensors and schedule:
    a refresh that fails leaves ``SyncStateStore.state(company).cursor`` where it was."""
    monkeypatch.setattr(syncs, "utc_now", lambda: MATRIX_AS_OF)
    with small_company(request, provider, tmp_path, "sqlite") as pipeline:
        daemon, harness = Daemon(pipeline), pipeline.harness
        daemon.follow_upstream()
        initial_sync(daemon)
        assert daemon.failures == [] and matches_vendor(pipeline)
        store = daemon.store()

        # A race first: entries deleted while a refresh reads its pages are gone after the next one.
        cursor, failures_before, live = store.state(COMPANY).cursor, len(daemon.failures), len(harness.entries())
        harness.move(harness.editable_entries().iloc[0].entry_id, days=0, hours=1.5)  # what the refresh is for
        refresh(daemon, lambda: FAULTS_BY_NAME["deleted_between_pages"].inject(pipeline.emulator, harness))
        pipeline.emulator.__dict__.pop("_answer_vendor", None)
        assert len(harness.entries()) == live - 2, "the deletions did not happen mid-listing"
        refresh(daemon)
        assert len(daemon.failures) == failures_before and matches_vendor(pipeline)
        assert store.state(COMPANY).cursor != cursor

        failing = [fault for fault in FAULTS if fault.outcome == FAILED]
        assert failing[-1].name == "secret_changed"  # irreversible: last, after a clean refresh
        for fault in failing:
            if fault.name == "secret_changed":
                # A clean refresh first: the cursor must move when nothing fails.
                cursor, failures_before = store.state(COMPANY).cursor, len(daemon.failures)
                harness.move(harness.editable_entries().iloc[0].entry_id, days=0, hours=1.5)
                refresh(daemon)
                assert len(daemon.failures) == failures_before and matches_vendor(pipeline)
                assert store.state(COMPANY).cursor != cursor
            cursor, before = store.state(COMPANY).cursor, pipeline.tables()
            harness.move(harness.editable_entries().iloc[0].entry_id, days=0, hours=1.5)
            failures_before = len(daemon.failures)
            refresh(daemon, lambda fault=fault: fault.inject(pipeline.emulator, harness))
            pipeline.emulator.faults.clear()
            pipeline.emulator.__dict__.pop("_answer_vendor", None)  # a hostile vendor's rewrite, if one was set
            state = store.state(COMPANY)
            assert len(daemon.failures) > failures_before, f"{fault.name}: the refresh did not fail"
            assert f"{harness.label}: " in daemon.failures[-1] and f"{harness.label}: " in (state.last_error or "")
            assert not leaked(harness.secrets(), "\n".join(daemon.failures) + (state.last_error or ""))
            assert_unchanged(before, pipeline.tables())
            assert state.cursor == cursor, f"{harness.label} {fault.name}: the cursor moved on a failed sync"
            CURSORS[(provider, fault.name)] = "unchanged"


def refresh(daemon: Daemon, before_launch: Callable[[], None] = lambda: None) -> None:
    """Plan a refresh with the schedule, switch the fault on, then run what the sensors ask for."""
    result = daemon.tick_schedule("refresh_every_two_hours")
    before_launch()
    daemon.launch(result.run_requests)
    daemon.settle()


# -- faults outside a vendor's answers (the page's second table) -----------------------------------------
@dataclass(frozen=True)
class OtherFault:
    point: str
    fault: str
    outcome: str
    test: str  # pytest node id that shows it


OTHER_FAULTS = [
    OtherFault(
        "DuckDB warehouse",
        "several run processes writing one DuckDB file at once, one opening it the moment another lets it go",
        "each opens the database as the last one left it: DuckDB is asked to read the file only once the other has closed it (DuckDB alone read its headers before locking: stale rows, a corrupt file)",
        "tests/warehouse/test_gate.py::test_another_process_does_not_let_duckdb_read_the_file_until_this_one_has_closed_it",
    ),
    OtherFault(
        "credentials",
        "a credential with a trailing CR or LF (a paste at the hidden prompt)",
        "refused at connect naming the field, never the value; one trailing line ending typed at the prompt is dropped",
        "tests/cli/test_admin.py::test_a_pasted_line_ending_is_dropped_and_anything_more_is_refused_by_name",
    ),
    OtherFault(
        "credentials",
        "any other control or whitespace character in a credential",
        "refused at connect naming the field and the position",
        "tests/connections/test_connect_validation.py::test_a_credential_with_whitespace_or_control_characters_is_refused_by_name_never_by_value",
    ),
    OtherFault(
        "credentials",
        "an environment variable holding a credential with a trailing line ending",
        "the sync fails naming the credential and the variable, not the value",
        "tests/connections/test_connect_validation.py::test_an_environment_credential_with_a_trailing_newline_is_a_clear_error_at_run_time",
    ),
    OtherFault(
        "credentials",
        "a header the HTTP library refuses before sending (bearer, Basic, key header, token bodies)",
        "a VendorRequestError with every form of the credential scrubbed, on all three vendors",
        "tests/vendors/test_http.py::test_qbt_bearer_token_with_a_line_ending_never_reaches_an_error",
    ),
    OtherFault(
        "credentials",
        "a canary credential driven through every failing fault of the table above",
        "found nowhere: instance (SQLite and PostgreSQL), its files, logs, output, warehouse, registry",
        "tests/test_secrets.py::test_a_canary_credential_through_every_error_path_is_found_nowhere",
    ),
    OtherFault(
        "credential sources",
        "`--credential-env access_token=PROTIV_SECRET_KEY` (any worker variable)",
        "refused before any prompt: only PROTIV_CREDENTIAL_* variables, never the encryption key",
        "tests/connections/test_connect_validation.py::test_cli_refuses_the_encryption_key_as_a_credential_before_any_prompt",
    ),
    OtherFault(
        "credential sources",
        "a registry of an older version referring to any variable",
        "the sync fails: an admin must reconnect",
        "tests/connections/test_connect_validation.py::test_a_reference_written_by_an_older_version_to_any_variable_is_refused_at_run_time",
    ),
    OtherFault(
        "credential sources",
        "a base URL with `user:pass@`",
        "refused without quoting it; nothing stored",
        "tests/connections/test_connect_validation.py::test_a_base_url_carrying_credentials_is_refused_without_quoting_it",
    ),
    OtherFault(
        "vendor text",
        "a stored last error holding `[/]`, balanced markup and a terminal escape",
        "`protiv status` shows it literally, for every company",
        "tests/cli/test_operations.py::test_status_prints_a_stored_vendor_error_literally",
    ),
    OtherFault(
        "vendor text",
        "a failing sync whose vendor error holds markup",
        "`protiv sync` prints it literally and exits 1",
        "tests/connections/test_connect_validation.py::test_sync_shows_a_failure_message_literally",
    ),
    OtherFault(
        "dead run worker",
        "a run worker killed by SIGKILL under the daemon (deploy/dagster.yaml)",
        "the run is failed within 2 minutes, its slot freed, and the company's sync completed",
        DEAD_WORKER_TEST,
    ),
    OtherFault(
        "analyst roles",
        "a role dropped outside `protiv analyst-role revoke` and re-created with the same name",
        "sees no row; `analyst-role list` flags the grant stale",
        "tests/test_tenant_isolation.py::test_a_role_dropped_and_created_again_with_the_same_name_sees_nothing",
    ),
    OtherFault(
        "connect",
        "a pull date in the future or 9999-12-31",
        "refused at connect; a stored one is a clear sync error",
        "tests/connections/test_connect_validation.py::test_a_pull_date_a_sync_cannot_start_from_is_refused",
    ),
    OtherFault(
        "connect",
        "an unparseable base URL (`http://[::1`, a newline, spaces, 100 KB)",
        "refused naming the option and the rule",
        "tests/connections/test_connect_validation.py::test_a_base_url_that_cannot_be_used_is_refused_with_the_rule",
    ),
    OtherFault(
        "connect",
        "a company id with invisible or bidirectional characters (U+200B)",
        "refused naming the rule",
        "tests/connections/test_connect_validation.py::test_a_company_id_that_could_be_mistaken_for_another_is_refused",
    ),
]


def test_every_other_fault_names_a_test_that_exists():
    for other in OTHER_FAULTS:
        path, name = other.test.split("::")
        assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), f"{other.test} does not exist"


# -- the committed page ---------------------------------------------------------------------------------
def render_matrix() -> str:
    """docs/fault-matrix.md from RESULTS and CURSORS: vendors and faults in a fixed order."""
    lines = [
        "# Fault matrix",
        "",
        "Generated by `tests/assets/test_fault_matrix.py`: `PROTIV_WRITE_FAULT_MATRIX=1 pytest -n 0",
        "tests/assets/test_fault_matrix.py` rewrites it, and `test_the_committed_matrix_lists_every_case`",
        "fails when this page and the test's cases disagree.",
        "",
        "Every fault is injected by the vendor's emulator (`emulators/protiv_emulators/`) over real HTTP",
        "into a sync of a small company (6 workers, one week, pages of "
        f"{PAGE_SIZE} records so every listing spans several pages),",
        "after a manager corrected one entry at the vendor. Outcomes:",
        "",
        f"- **{COMPLETE}**: the sync succeeded and the warehouse equals the emulator's ground truth",
        "  (every live entry once, on its work date, with the vendor's hours; every worker; nothing rejected).",
        f"- **{COMPLETE_NEXT}**: a change made while the sync was reading pages is in the warehouse",
        "  after the next sync. The refresh that raced it advances the cursor only to the vendor stamp",
        "  seen when it was planned, so the change is newer and the next check re-reads its week.",
        f"- **{FAILED}**: the sync failed with an error naming the vendor and holding no credential; every",
        "  warehouse table is exactly as before, and (driven through the daemon's sensors and schedule)",
        "  the company's sync cursor did not move. The next case's clean sync on the same warehouse",
        "  repairs it (each case starts from a warehouse equal to the vendor).",
        f"- **{SET_ASIDE}**: the vendor sent malformed records among good ones; the sync succeeded, those",
        "  records are in `rejected_rows` with their reasons (the Error column), and everything else",
        "  equals the ground truth. One bad record never fails a sync.",
        "",
        "Hostile vendors (paging ignored or endless, malformed or repeated ids, a week answered empty",
        "while its entries still answer by id) are the emulators' answers rewritten on their way out",
        "(`tests/assets/hostile.py`); trickled and cut-off answers and the hostile error text are",
        f"emulator faults. Page cap {MAX_PAGES} pages and request deadline {DEADLINE_SECONDS:g} s here (defaults:",
        "10,000 pages, 120 s). Errors are shown as stored: vendor text literal, control characters escaped.",
        "",
        "Rows compared: the vendor's live time entries the warehouse was checked against.",
        "Cursor: for failed syncs, the company's sync cursor after the same fault hit a refresh planned by",
        "the schedule and run by the sensors (`test_failed_refreshes_keep_the_cursor_and_the_data`, which",
        "also checks that a clean refresh and the refresh after a race move it on).",
        "Statuses: what the emulator answered during the faulted sync (0 = connection dropped).",
        "",
        "| Vendor | Fault | Injected | Outcome | Rows compared | Statuses | Cursor | Error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for provider in PROVIDERS:
        for fault in FAULTS:
            result = RESULTS[(provider, fault.name)]
            cursor = CURSORS.get((provider, fault.name), "not checked") if result["outcome"] == FAILED else "-"
            detail = result["detail"].replace("|", "\\|") or "-"
            statuses = ", ".join(map(str, result["statuses"]))
            lines.append(
                f"| {LABELS[provider]} | `{fault.name}` | {fault.description} | {result['outcome']} | "
                f"{result['rows']} | {statuses} | {cursor} | {detail} |"
            )
    lines += [
        "",
        "## Faults outside a vendor's answers",
        "",
        "Admins' mistakes, hostile input at connect, dead run workers and analyst roles, each with the test",
        "that shows it (`test_every_other_fault_names_a_test_that_exists` keeps the names real).",
        "",
        "| Point | Fault | Outcome | Test |",
        "|---|---|---|---|",
        *(f"| {o.point} | {o.fault} | {o.outcome} | `{o.test}` |" for o in OTHER_FAULTS),
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", autouse=True)
def write_matrix_page():
    """With PROTIV_WRITE_FAULT_MATRIX=1, write the page once every case of the module has run."""
    yield
    if os.environ.get(WRITE_VARIABLE) != "1":
        return
    cases = {(provider, fault.name) for provider in PROVIDERS for fault in FAULTS}
    failing = {(provider, fault.name) for provider in PROVIDERS for fault in FAULTS if fault.outcome == FAILED}
    if cases <= set(RESULTS) and failing <= set(CURSORS):
        MATRIX_PAGE.write_text(render_matrix())
    else:
        raise RuntimeError(
            f"{WRITE_VARIABLE}=1 needs every case of the matrix in one process: run the whole module with "
            "-n 0 (no xdist workers), no -k, and no failures"
        )


def test_the_committed_matrix_lists_every_case():
    """docs/fault-matrix.md has one row per (vendor, fault) of FAULTS, with the outcome expected."""
    if os.environ.get(WRITE_VARIABLE) == "1":
        pytest.skip("the page is being written by this run")
    rows = [
        line.split(" | ")
        for line in MATRIX_PAGE.read_text().split("\n## ")[0].splitlines()
        if line.startswith("| ") and "`" in line
    ]
    found = {(row[0].removeprefix("| "), row[1].strip("`")): row[3] for row in rows}
    assert len(found) == len(rows), "a (vendor, fault) pair is listed twice"
    expected = {(LABELS[provider], fault.name): fault.outcome for provider in PROVIDERS for fault in FAULTS}
    assert set(found) == set(expected), f"regenerate with {WRITE_VARIABLE}=1"
    for case, outcome in expected.items():
        allowed = {COMPLETE, COMPLETE_NEXT} if outcome == COMPLETE_NEXT else {outcome}
        assert found[case] in allowed, f"{case}: the page says {found[case]}, the test expects {outcome}"
