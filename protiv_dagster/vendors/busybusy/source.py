"""A company on BusyBusy: the REST login + GraphQL client plus the BusyBusy mapping.

Feeds of a date range (stored raw, re-mapped later, so everything the mapping needs is in them):

- ``timeEntries``: every entry whose ``startTime`` falls in the company-local days, soft-deleted ones
  included (the mapping removes and counts them, so fetched = loaded + set aside + removed);
- ``costCodes``: to recognise the drive cost code;
- ``projects``: every project's ``id``, ``parentProjectId`` and ``depth``, to count the time on a
  sub-project deeper than the company's milestone depth to its ancestor at that depth (BusyBusy
  nests 7 levels; the jobs table holds only the top-level projects and the milestones);
- ``vendorClock``: one record ``{"id": "vendorClock", "now": <ISO UTC>}``, the vendor's clock (HTTP
  ``Date`` of the timeEntries answer) that running entries count up to.

The connection's ``base_url`` is the REST base; see ``resources/busybusy.py`` for the GraphQL URL.

Change detection (``changes_since``): the REST login plus ONE GraphQL request whose roots are
``timeEntries`` (``updatedOn`` at or after the cursor, the only range operator documented; the
``ChangeLog`` drops what it already reported: soft deletes stamp ``updatedOn`` and ``deletedOn``,
so edits, moves and deletions all show), ``members`` (``updatedOn``; a wage change is taken to stamp
it), ``projects`` (``updatedOn``), ``budgetHours`` (``createdOn``: budgets are versioned, a cost
code's budget too) and ``budgetCosts`` (which names no stamp: the ids of its latest records are
listed whole and their ``records_digest`` compared with the cursor's). 2 requests when nothing
changed, while the latest cost budgets fit a page (500); a root with more than one page adds requests
for that root only. The cursor is a ``ChangeLog`` over those vendor stamps (UTC), 10 minutes of
overlap, plus the cost budgets' digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from protiv_dagster.vendors.base import (
    ChangeLog,
    Changes,
    Mapped,
    Source,
    chunks,
    decode_cursor,
    encode_cursor,
    is_stamp,
    nothing,
    records_digest,
    weeks_between,
    weeks_of_days,
)
from protiv_dagster.vendors.busybusy import mapping as bb_mapping
from protiv_dagster.vendors.busybusy.client import CHANGE_ROOTS, BusyBusyTuning, iso, local_day_window
from protiv_dagster.vendors.busybusy.credentials import BusyBusyCredentials

# How far behind the newest stamp seen the next check starts (late commits, same-second ties).
OVERLAP = timedelta(minutes=10)
# The mark of an organization without any record yet: everything added later is newer.
EMPTY_ORGANIZATION_MARK = "1970-01-01T00:00:00Z"
KEY_PREFIX = {"timeEntries": "e", "members": "m", "projects": "p", "budgetHours": "bh"}


class BusyBusySource(Source):
    provider = "busybusy"
    live_feed = "timeEntries"
    cost_code_feed = "costCodes"
    clock_feed = "vendorClock"
    project_feed = "projects"
    feed_fields = {
        "timeEntries": ("id", "updatedOn"),
        "costCodes": ("id", None),
        "projects": ("id", None),
        "vendorClock": ("id", None),
    }
    # Entries are filtered by start time, in the company's local days; cost codes, the projects'
    # tree and the vendor's clock are lookups every week gets a copy of.
    weekly_feeds = frozenset({"timeEntries"})
    # Each live record maps on its own (the other feeds are lookups): a large week is mapped in chunks.
    maps_records_independently = True

    def __init__(
        self,
        connection: Any,
        resource: BusyBusyTuning,
        registry: Any = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ):
        self.connection = connection
        # ``registry`` is unused: BusyBusy issues no token worth keeping between checks.
        credentials = BusyBusyCredentials.stored(connection.credentials())
        self.client = resource.client(connection.base_url, credentials.username, credentials.password)
        self._clock = clock
        # Read once per source: workers and their wages share the members, jobs and their task lines
        # the budgets.
        self._members: list[dict[str, Any]] | None = None
        self._projects: list[dict[str, Any]] | None = None
        self._budgets: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None

    @property
    def timezone(self) -> str:
        """The company zone: BusyBusy sends UTC only, so local work dates need the setting."""
        zone = self.connection.settings.timezone
        if not zone:
            raise ValueError(
                f"company {self.connection.company_id!r} is on BusyBusy, which sends UTC times only: "
                "set its timezone setting so work dates can be computed"
            )
        return zone

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def now(self) -> datetime:
        """The vendor's clock when known (last answer's Date header), else the local one."""
        if self._clock is not None:
            return self._clock()
        return self.client.server_time or datetime.now(UTC)

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        start, end = local_day_window(first_day, last_day, self.timezone)
        entries = self.client.time_entries(start_from=start, start_before=end)
        return {
            self.live_feed: entries,
            self.cost_code_feed: self.client.cost_codes(),
            self.project_feed: [
                {name: project.get(name) for name in ("id", "parentProjectId", "depth")} for project in self.projects()
            ],
            self.clock_feed: [{"id": self.clock_feed, "now": iso(self.now())}],
        }

    def live_entries(self, entry_ids: list[str]) -> dict[str, date | None]:
        """Entries among ``entry_ids`` not soft-deleted (``id: {contains}``, a page of ids a request),
        by the local date of their start."""
        return {
            str(entry.get("id")): self.work_day(self.live_feed, entry)
            for part in chunks(entry_ids, self.client.page_size)
            for entry in self.client.time_entries(ids=part, deleted=False)
        }

    def work_day(self, feed: str, record: Mapping[str, Any]) -> date | None:
        """The company-local date of the entry's start, which the vendor filters on (None when unreadable)."""
        try:
            start = datetime.fromisoformat(str(record["startTime"]).replace("Z", "+00:00"))
            return start.astimezone(ZoneInfo(self.timezone)).date() if start.tzinfo else None
        except (KeyError, TypeError, ValueError):
            return None

    def changes_since(self, cursor: str | None, first_day: date, last_day: date) -> Changes:
        """What changed in BusyBusy since ``cursor``: login + one GraphQL request when nothing did
        (see the module docstring); ``cursor=None`` costs the same two, for the newest stamps."""
        requests_before = self.client.request_count
        state = decode_cursor(self.provider, cursor)
        if state is None:
            newest, listings = self.client.newest_stamps()
            stamps = [text for text in newest.values() if text]
            mark = (
                iso(max(datetime.fromisoformat(t.replace("Z", "+00:00")) for t in stamps))
                if stamps
                else EMPTY_ORGANIZATION_MARK
            )
            listed: dict[str, str] = {root: records_digest(records) for root, records in listings.items()}
            return Changes(
                weeks=weeks_between(first_day, last_day),
                entry_ids=frozenset(),
                reference_changed=True,
                cursor=encode_cursor(self.provider, {**ChangeLog(mark).state(), "listed": listed}),
                requests=self.client.request_count - requests_before,
            )
        log = ChangeLog(state["since"], dict(state.get("seen") or {}))
        found = self.client.changed_after({root: log.since for root in CHANGE_ROOTS})
        entry_ids: set[str] = set()
        days: list[date] = []
        reference_changed = False
        listed = {}
        for root, records in found.items():
            stamp_field = CHANGE_ROOTS[root].stamp
            if stamp_field is None:
                # Listed whole: a cursor without its digest (an earlier format) counts as changed.
                listed[root] = records_digest(records)
                reference_changed |= listed[root] != (state.get("listed") or {}).get(root)
                continue
            for record in records:
                day = self.work_day(self.live_feed, record) if root == "timeEntries" else None
                if not record.get("id") or not is_stamp(record.get(stamp_field)):
                    # Unreadable: what it belongs to is re-synced (its week when the start time
                    # says which), where the mapping sets it aside with its reason.
                    reference_changed |= root != "timeEntries"
                    if day is not None:
                        days.append(day)
                    continue
                if not log.is_new(f"{KEY_PREFIX[root]}:{record['id']}", record[stamp_field]):
                    continue
                if root != "timeEntries":
                    reference_changed = True
                    continue
                entry_ids.add(str(record["id"]))
                if day is not None:
                    days.append(day)
        return Changes(
            weeks=weeks_of_days(days, first_day, last_day),
            entry_ids=frozenset(entry_ids),
            reference_changed=reference_changed,
            cursor=encode_cursor(self.provider, {**log.advanced(OVERLAP, iso).state(), "listed": listed}),
            requests=self.client.request_count - requests_before,
        )

    def members(self) -> list[dict[str, Any]]:
        if self._members is None:
            self._members = self.client.members()
        return self._members

    def projects(self) -> list[dict[str, Any]]:
        if self._projects is None:
            self._projects = self.client.projects()
        return self._projects

    def budgets(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The latest budgetHours and budgetCosts rows."""
        if self._budgets is None:
            self._budgets = (self.client.budget_hours(), self.client.budget_costs())
        return self._budgets

    def workers(self) -> Mapped:
        rows, set_aside = bb_mapping.members_to_workers(
            self.members(), self.connection.company_id, self.timezone, now=self.now()
        )
        return Mapped(rows, set_aside)

    def worker_wages(self, worker_ids: Iterable[str]) -> Mapped:
        """Every wage history of the members (the members are read once with ``workers``)."""
        rows, set_aside, deleted, superseded = bb_mapping.members_to_wages(
            self.members(), worker_ids, self.connection.company_id, self.timezone
        )
        return Mapped(rows, set_aside, removed_as_deleted=deleted, without_row=superseded)

    def jobs(self) -> Mapped:
        rows, set_aside, folded = bb_mapping.projects_to_jobs(
            self.projects(), *self.budgets(), self.connection.settings, self.connection.company_id
        )
        # Sub-projects at depths other than the job's and the milestone's: no row, their time
        # counts to an ancestor.
        return Mapped(rows, set_aside, without_row=folded)

    def task_lines(self, job_ids: Iterable[str]) -> Mapped:
        """The cost-code budgets of the projects (the budgets are read once with ``jobs``; the cost
        codes, for the line items' names, in one more request)."""
        rows, set_aside = bb_mapping.budgets_to_task_lines(
            *self.budgets(), self.client.cost_codes(), job_ids, self.connection.company_id
        )
        return Mapped(rows, set_aside)

    def job_assignments(self, job_ids: Iterable[str]) -> Mapped:
        """None: BusyBusy assigns nobody to a project."""
        return nothing()

    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped:
        clock_records = feeds.get(self.clock_feed) or []
        now = None
        if clock_records and isinstance(clock_records[0].get("now"), str):
            now = datetime.fromisoformat(clock_records[0]["now"].replace("Z", "+00:00"))
        rows, set_aside, removed = bb_mapping.time_entries_to_attendance(
            feeds.get(self.live_feed, []),
            jobs,
            worker_ids,
            self.connection.company_id,
            self.timezone,
            now or self.now(),
            bb_mapping.drive_cost_code_ids(feeds.get(self.cost_code_feed, []), self.connection.settings),
            bb_mapping.project_units(
                feeds.get(self.project_feed, []), self.connection.settings.busybusy_milestone_depth
            ),
        )
        # Only time entries are counted: cost codes, projects and the vendor clock are lookups, not records to load.
        return Mapped(rows, set_aside, removed, fetched=len(feeds.get(self.live_feed, [])))
