"""A company on Aspire: the External API client plus the Aspire mapping.

``time_entry_feeds`` returns two raw feeds, ``WorkTicketTimes`` (the live feed: time on work
tickets) and ``ClockTimes`` (whose time not allocated to tickets becomes drive rows). Aspire has no
deleted feed: a deleted time row simply is not in the re-read window, so ``removed_as_deleted`` is 0.

Counting: the drive rows come from ``ClockTimes``, not from the live feed, and a clock time fully
covered by ticket times yields no row. Across both feeds, fetched = loaded + set aside +
``clock_times_without_row`` (kept on the source after ``attendance``).

Change detection (``changes_since``): Aspire has no deleted feed and no "what changed" endpoint, so
a check is one paged OData listing of ``WorkTicketTimes`` with ``$select`` of id, work date and
``LastModifiedDateTime``, filtered ``(WorkTicketTimeDate in the whole weeks of the window) or
LastModifiedDateTime gt <since>``. Token + one page = 2 requests for a quiet company with up to
1,000 time rows in the window (one more request per further 1,000). From that one listing:

- changes: rows stamped after the cursor (wherever they are dated now, so a move out of the window
  is seen too) give ``entry_ids`` and, for days in the window, ``weeks``;
- deletions: the cursor keeps a digest (count + hash of the ids) of each week of the window; a week
  whose digest changed without explaining it by a stamp lost an entry, and is reported. The ids
  themselves are gone at the vendor: ``live_entry_ids`` lists the window's live ids, so the caller
  can find which stored ids disappeared (and their stored weeks);
- reference data (Contacts of type Employee by ``ModifiedDate``, Opportunities by ``ModifiedDate``,
  WorkTickets by ``LastModifiedDateTime``: 3 more requests) is checked when time changed (a sync
  runs anyway) or on every ``reference_check_every``-th check (``AspireResource``), so a
  reference-only change (a work ticket's hours budget) shows within that many checks.

Aspire stamps are branch-local wall time without an offset; they are compared as such, and the
overlap behind the newest stamp is two hours so that the hour repeated when daylight saving time
ends cannot hide a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import hashlib
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from protiv_dagster.mapping import aspire as aspire_mapping
from protiv_dagster.resources.aspire import EMPLOYEE_FILTER, AspireResource
from protiv_dagster.partitions import week_start
from protiv_dagster.sources import (
    ChangeLog,
    Changes,
    Mapped,
    decode_cursor,
    encode_cursor,
    weeks_between,
    weeks_of_days,
)

# Wall-time stamps repeat an hour when daylight saving time ends: the overlap must exceed it.
OVERLAP = timedelta(hours=2)
# The mark of a tenant without any time row yet: every row added later is newer.
EMPTY_TENANT_MARK = "1900-01-01T00:00:00"
REFERENCE_FEEDS = (
    # (key prefix, endpoint, id field, stamp field, extra filter)
    ("c", "Contacts", "ContactID", "ModifiedDate", EMPLOYEE_FILTER),
    ("o", "Opportunities", "OpportunityID", "ModifiedDate", None),
    ("w", "WorkTickets", "WorkTicketID", "LastModifiedDateTime", None),
)


def _wall_text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _week_digest(ids: list[str]) -> str:
    """Count and short hash of a week's live ids: changes when an entry is deleted or moves out."""
    ordered = sorted(ids)
    return f"{len(ordered)}:{hashlib.sha1(','.join(ordered).encode()).hexdigest()[:12]}"


class AspireSource:
    provider = "aspire"
    live_feed = "WorkTicketTimes"
    clock_feed = "ClockTimes"
    feed_fields = {"WorkTicketTimes": ("WorkTicketTimeID", "LastModifiedDateTime"), "ClockTimes": ("ClockTimeID", None)}

    def __init__(self, connection: Any, resource: AspireResource):
        self.connection = connection
        credentials = connection.credentials()
        settings = getattr(connection, "settings", None)
        self.timezone_override: str | None = getattr(settings, "timezone", None)
        self.drive_job_name = next(
            (p for p in getattr(settings, "drive_job_patterns", ()) if "*" not in p and "?" not in p),
            aspire_mapping.DRIVE_JOB_NAME,
        )
        self.wage_lookback_days = resource.wage_lookback_days
        self.reference_check_every = resource.reference_check_every
        self.client = resource.client(
            connection.base_url, credentials["client_id"], credentials["secret"], timezone=self.timezone_override
        )
        self._zones: aspire_mapping.Zones | None = None
        self._contact_branches: dict[str, str] | None = None
        self._tickets: list[dict[str, Any]] | None = None
        self.clock_times_without_row = 0

    @property
    def request_count(self) -> int:
        return self.client.request_count

    # -- lookups read once per source ------------------------------------------------------------
    def zones(self) -> aspire_mapping.Zones:
        if self._zones is None:
            self._zones = aspire_mapping.branch_zones(self.client.branches(), self.timezone_override)
            if self.client.timezone is None and self._zones.default:
                self.client.timezone = self._zones.default  # send filter datetimes in branch wall time
        return self._zones

    def _employees(self) -> list[dict[str, Any]]:
        employees = self.client.employees()
        self._contact_branches = {
            str(c["ContactID"]): str(c["BranchID"]) for c in employees if c.get("ContactID") and c.get("BranchID")
        }
        return employees

    def contact_branches(self) -> dict[str, str]:
        if self._contact_branches is None:
            self._employees()
        return self._contact_branches or {}

    def work_tickets(self) -> list[dict[str, Any]]:
        if self._tickets is None:
            self._tickets = self.client.work_tickets()
        return self._tickets

    # -- the Source protocol ---------------------------------------------------------------------
    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        self.zones()
        return {
            self.live_feed: self.client.work_ticket_times(first_day=first_day, last_day=last_day),
            self.clock_feed: self.client.clock_times(first_day=first_day, last_day=last_day),
        }

    def changes_since(
        self, cursor: str | None, first_day: date, last_day: date, *, check_reference: bool | None = None
    ) -> Changes:
        """What changed in Aspire since ``cursor`` (see the module docstring): token + one listing
        page when nothing did. ``cursor=None`` adds one request for the newest stamp.
        ``check_reference`` forces (True) or skips (False) the reference-data requests."""
        requests_before = self.client.request_count
        window_first, window_last = week_start(first_day), week_start(last_day) + timedelta(days=6)
        state = decode_cursor(self.provider, cursor)
        since = datetime.fromisoformat(state["since"]) if state else None
        rows = self.client.work_ticket_time_changes(first_day=window_first, last_day=window_last, modified_after=since)

        by_week: dict[date, list[str]] = {monday: [] for monday in weeks_between(window_first, window_last)}
        for row in rows:
            day = date.fromisoformat(str(row["WorkTicketTimeDate"])[:10])
            if window_first <= day <= window_last:
                by_week[week_start(day)].append(str(row["WorkTicketTimeID"]))
        digests = {monday.isoformat(): _week_digest(ids) for monday, ids in sorted(by_week.items())}
        live_ids = frozenset(i for ids in by_week.values() for i in ids)

        if state is None:
            newest = self.client.latest_modification("WorkTicketTimes", "WorkTicketTimeID", "LastModifiedDateTime")
            mark = _wall_text(datetime.fromisoformat(newest)) if newest else EMPTY_TENANT_MARK
            # Reference records stamped after the time mark are re-reported once at the next
            # reference check: harmless, and it saves three requests here.
            cursor_state = {
                **ChangeLog(mark).state(), "weeks": digests, "reference": ChangeLog(mark).state(), "checks": 0,
            }
            return Changes(
                weeks=weeks_between(first_day, last_day),
                entry_ids=frozenset(),
                reference_changed=True,
                cursor=encode_cursor(self.provider, cursor_state),
                requests=self.client.request_count - requests_before,
                live_entry_ids=live_ids,
            )

        log = ChangeLog(state["since"], dict(state.get("seen") or {}))
        entry_ids: set[str] = set()
        days: list[date] = []
        for row in rows:
            stamp = row.get("LastModifiedDateTime")
            if stamp and log.is_new(f"t:{row['WorkTicketTimeID']}", str(stamp)):
                entry_ids.add(str(row["WorkTicketTimeID"]))
                days.append(date.fromisoformat(str(row["WorkTicketTimeDate"])[:10]))
        weeks = set(weeks_of_days(days, first_day, last_day))
        previous = state.get("weeks") or {}
        for monday_text, digest in digests.items():
            if monday_text in previous and previous[monday_text] != digest:
                weeks.add(date.fromisoformat(monday_text))  # an entry left this week: deleted or moved

        checks = int(state.get("checks") or 0) + 1
        reference_state = state.get("reference") or ChangeLog(state["since"]).state()
        due = check_reference if check_reference is not None else bool(weeks or entry_ids) or checks >= self.reference_check_every
        reference_changed = False
        if due:
            reference = ChangeLog(reference_state["since"], dict(reference_state.get("seen") or {}))
            after = datetime.fromisoformat(reference.since)
            for prefix, endpoint, id_field, stamp_field, extra in REFERENCE_FEEDS:
                for record in self.client.modified_after(endpoint, id_field, stamp_field, after, filter=extra):
                    stamp = record.get(stamp_field)
                    if stamp and reference.is_new(f"{prefix}:{record[id_field]}", str(stamp)):
                        reference_changed = True
            reference_state = reference.advanced(OVERLAP, _wall_text).state()
            checks = 0

        cursor_state = {
            **log.advanced(OVERLAP, _wall_text).state(), "weeks": digests, "reference": reference_state, "checks": checks,
        }
        return Changes(
            weeks=frozenset(weeks),
            entry_ids=frozenset(entry_ids),
            reference_changed=reference_changed,
            cursor=encode_cursor(self.provider, cursor_state),
            requests=self.client.request_count - requests_before,
            live_entry_ids=live_ids,
        )

    def workers(self) -> Mapped:
        zones = self.zones()
        employees = self._employees()
        today = date.today()
        recent = self.client.work_ticket_times(
            first_day=today - timedelta(days=self.wage_lookback_days),
            last_day=today + timedelta(days=1),
            select=["ContactID", "WorkTicketTimeDate", "BaseHourlyRate"],
        )
        rows, set_aside = aspire_mapping.employees_to_workers(
            employees, aspire_mapping.latest_wages(recent), zones, self.connection.company_id
        )
        return Mapped(rows, set_aside)

    def jobs(self) -> Mapped:
        rows, set_aside = aspire_mapping.opportunities_to_jobs(
            self.client.opportunities(), self.work_tickets(), self.zones(), self.connection.company_id,
            drive_job_name=self.drive_job_name,
        )
        return Mapped(rows, set_aside)

    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped:
        rows, set_aside, without_row = aspire_mapping.times_to_attendance(
            feeds.get(self.live_feed, []),
            feeds.get(self.clock_feed, []),
            aspire_mapping.ticket_targets(self.work_tickets()),
            jobs,
            worker_ids,
            self.zones(),
            self.contact_branches(),
            self.connection.company_id,
        )
        self.clock_times_without_row = without_row
        fetched = len(feeds.get(self.live_feed, [])) + len(feeds.get(self.clock_feed, []))
        return Mapped(rows, set_aside, without_row=without_row, fetched=fetched)
