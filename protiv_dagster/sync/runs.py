"""Company syncs as Dagster run requests: what each phase asks for, and how a batch's runs end.

Shared by the new-connection sensor, the two-hour refresh schedule and the sync progress sensor.
Every run of a sync carries the tags ``protiv/company``, ``protiv/batch``, ``protiv/trigger`` and
``protiv/phase``, so the Runs page filters by any of them and the progress sensor finds a batch's
runs without a table of its own. Run keys make a repeated request a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from protiv_dagster.assets.common import COMPANY_TAG, PROVIDER_TAG
from protiv_dagster.connections.registry import Connection
from protiv_dagster.partitions import (
    HISTORY_START,
    RANGE_END_TAG,
    RANGE_START_TAG,
    company_week_key,
    company_week_range_tags,
    consecutive_runs,
    week_keys,
)
from protiv_dagster.sync.state import SyncBatch

BATCH_TAG, TRIGGER_TAG, PHASE_TAG = "protiv/batch", "protiv/trigger", "protiv/phase"
# The run coordinator limits concurrent runs per provider tag (deploy/dagster.yaml), so it must be on
# the run request, not only added by the run once it has started (assets/common.py label_run).
REFERENCE_JOB, WEEK_JOB = "sync_company_reference", "sync_company_week"
# A phase whose runs never appeared (a tick that died after planning) is given up after this long;
# the cursor has not moved, so the next check asks the vendor for the same changes again.
NEVER_LAUNCHED_AFTER = timedelta(hours=1)
# A failed run of a sync is waited for while Dagster's run retries may still re-execute it (a run
# whose worker died, failed by run monitoring): until it is tagged whether it will be retried, and
# then until its retry appears (see _retry_coming).
RETRY_DECISION_WITHIN = timedelta(minutes=5)
# A sync run by another process (phase IN_PROCESS: the integrations service's initial sync) with no
# run started or ended for this long is given up: that process stopped before it ended.
IN_PROCESS_SILENT_AFTER = timedelta(hours=1)
RETRY_START_WITHIN = timedelta(hours=1)


def utc_now() -> datetime:
    """The automation's clock (one place, so tests can set the day the sensors think it is)."""
    return datetime.now(UTC)


def company_today(connection: Connection, now: datetime) -> date:
    """Today in the company's own time zone (work dates are local dates)."""
    return now.astimezone(ZoneInfo(connection.settings.timezone or "UTC")).date()


def sync_window(connection: Connection, now: datetime) -> tuple[date, date]:
    """The dates a company's syncs cover: its attendance pull date (never before the first
    partition) through today, local time."""
    first = max(connection.attendance_pull_date, date.fromisoformat(HISTORY_START))
    return first, company_today(connection, now)


def all_weeks(connection: Connection, now: datetime) -> list[str]:
    return week_keys(*sync_window(connection, now))


def week_runs(weeks: Sequence[str]) -> list[tuple[str, str]]:
    """(first, last) week of each run of a sync's weeks: one run per stretch of consecutive weeks,
    which asks the vendor once for the stretch (an initial sync is one run, whatever its length)."""
    groups = consecutive_runs([date.fromisoformat(week) for week in weeks])
    return [(group[0].isoformat(), group[-1].isoformat()) for group in groups]


def phase_requests(batch: SyncBatch, provider: str) -> list[dg.RunRequest]:
    """The runs of the batch's current phase: one reference run, or one run per stretch of
    consecutive weeks."""
    tags = {
        COMPANY_TAG: batch.company_id,
        BATCH_TAG: batch.batch_id,
        TRIGGER_TAG: batch.trigger,
        PHASE_TAG: batch.phase,
        PROVIDER_TAG: provider,
    }
    if batch.phase == "reference":
        return [
            dg.RunRequest(
                run_key=f"{batch.batch_id}/reference",
                job_name=REFERENCE_JOB,
                partition_key=batch.company_id,
                tags=tags,
            )
        ]
    if batch.phase == "weeks":
        return [
            dg.RunRequest(
                run_key=f"{batch.batch_id}/{first}" + ("" if first == last else f"..{last}"),
                job_name=WEEK_JOB,
                partition_key=str(company_week_key(batch.company_id, first)) if first == last else None,
                tags={**tags, **({} if first == last else company_week_range_tags(batch.company_id, first, last))},
            )
            for first, last in week_runs(batch.weeks)
        ]
    return []


def expected_runs(batch: SyncBatch) -> int:
    return 1 if batch.phase == "reference" else len(week_runs(batch.weeks))


def _partitions_of(run: dg.DagsterRun) -> str:
    """What a run covers: its partition, its partition range, or (neither) the run itself."""
    if RANGE_START_TAG in run.tags:
        return f"{run.tags[RANGE_START_TAG]}..{run.tags.get(RANGE_END_TAG)}"
    return run.tags.get("dagster/partition", run.run_id)


@dataclass(frozen=True)
class PhaseOutcome:
    state: str  # waiting | done | failed
    error: str | None = None


def run_failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    """The root cause of a failed run, as the asset raised it (Dagster wraps it in its own errors)."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = record.dagster_event.event_specific_data.error  # type: ignore[union-attr]
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            message = error.message.strip()
            if error.cls_name == "Failure":  # dg.Failure: its description, without Dagster's class path
                message = message.partition(": ")[2].strip() or message
            return message
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
        if record.dagster_event and record.dagster_event.message:
            return record.dagster_event.message
    return "see the run's event log"


def _retry_coming(instance: dg.DagsterInstance, record: dg.RunRecord, now: datetime) -> bool:
    """Whether Dagster's run retries will still re-execute this failed run, the latest of its
    partitions. Dagster tags a failed run ``dagster/will_retry`` just after storing its failure (a run
    read in between has no tag yet) and creates the retry moments later. A retry that has not appeared
    RETRY_START_WITHIN after the failure will not come (Dagster gives up on a job renamed by a deploy
    without untagging the run), so the sync ends instead of waiting forever."""
    waited = now.timestamp() - (record.end_time or record.update_timestamp.timestamp())
    tag = record.dagster_run.tags.get("dagster/will_retry")
    if tag is None:
        return instance.run_retries_enabled and waited < RETRY_DECISION_WITHIN.total_seconds()
    return tag == "true" and waited < RETRY_START_WITHIN.total_seconds()


def phase_outcome(instance: dg.DagsterInstance, batch: SyncBatch, now: datetime) -> PhaseOutcome:
    """Where the runs of the batch's current phase stand. A partition (or range) counts by its latest
    run, so a run retried by Dagster's run retries (a new run with the same tags, among them the
    batch's, and ``dagster/parent_run_id``) is judged by the retry: a run whose worker was killed,
    failed by run monitoring and retried, ends its phase when the retry succeeds."""
    records = instance.get_run_records(filters=dg.RunsFilter(tags={BATCH_TAG: batch.batch_id, PHASE_TAG: batch.phase}))
    latest: dict[str, dg.RunRecord] = {}
    for record in sorted(records, key=lambda r: r.create_timestamp):
        latest[_partitions_of(record.dagster_run)] = record
    for record in latest.values():
        run = record.dagster_run
        if run.status == dg.DagsterRunStatus.FAILURE and not _retry_coming(instance, record, now):
            return PhaseOutcome("failed", f"run {run.run_id} failed: {run_failure_message(instance, run.run_id)}")
        if run.status == dg.DagsterRunStatus.CANCELED:
            return PhaseOutcome("failed", f"run {run.run_id} was canceled")
    succeeded = sum(1 for record in latest.values() if record.dagster_run.status == dg.DagsterRunStatus.SUCCESS)
    if succeeded >= expected_runs(batch):
        return PhaseOutcome("done")
    if not latest and now - batch.requested_at > NEVER_LAUNCHED_AFTER:
        return PhaseOutcome("failed", f"the {batch.phase} runs were never launched")
    return PhaseOutcome("waiting")


def in_process_abandoned(instance: dg.DagsterInstance, batch: SyncBatch, now: datetime) -> bool:
    """Whether the process running a sync itself (phase IN_PROCESS, its runs tagged with its batch)
    has shown no sign of life for IN_PROCESS_SILENT_AFTER: neither the sync's start nor any change
    of one of its runs."""
    records = instance.get_run_records(filters=dg.RunsFilter(tags={BATCH_TAG: batch.batch_id}))
    updates = [record.update_timestamp for record in records]
    latest = max([batch.requested_at, *(at if at.tzinfo else at.replace(tzinfo=UTC) for at in updates)])
    return now - latest > IN_PROCESS_SILENT_AFTER
