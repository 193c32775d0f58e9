"""A company on Aspire: the External API client plus the Aspire mapping.

``time_entry_feeds`` returns two raw feeds, ``WorkTicketTimes`` (the live feed: time on work
tickets) and ``ClockTimes`` (whose time not allocated to tickets becomes drive rows), plus
``vendorClock``: one record ``{"id": "vendorClock", "now": <ISO UTC>}``, the vendor's clock (HTTP
``Date`` of the WorkTicketTimes answer) that a running ticket time (``Hours`` still null) counts up
to, stored so a later re-mapping of the same raw feeds gives the same hours. Aspire has no
deleted feed: a deleted time row simply is not in the re-read window, so ``removed_as_deleted`` is 0.

Counting: the drive rows come from ``ClockTimes``, not from the live feed, and a clock time fully
covered by ticket times yields no row. Across both feeds, fetched = loaded + set aside +
``clock_times_without_row`` (kept on the source after ``attendance``).

Change detection (``changes_since``): Aspire has no deleted feed and no "what changed" endpoint. A
check is one paged OData listing of ``WorkTicketTimes`` (``$select`` of id, work date and
``LastModifiedDateTime``) filtered ``(work date in the listed days) or LastModifiedDateTime gt
<since>``, plus at most one other request: a quiet company costs at most 2 requests while the
listed days hold up to a page (1,000 rows), however old its connection. From that listing:

- token: the access token is kept between checks, encrypted in the registry with the connection
  (``token``, ``refresh_token``, ``token_expires_at``; never in logs, metadata, exceptions or any
  other table), and reused until it expires (about once a day) or a 401 says it is dead; the client
  then renews it once and the new pair is stored. The check that needed a token request makes no
  reference request.
- changes: rows stamped after the cursor (wherever they are dated now, so a move out of the window
  is seen too) give ``entry_ids`` and, for days in the window, ``weeks``: every add, edit or move,
  in any week, shows at the next check.
- deletions: the listed days are the newest ``open_weeks`` weeks of the window (``AspireTuning``;
  the current and the previous week by default, where edits and deletions are frequent) at every
  check, plus ONE slice of older days in rotation: from where the last slice ended (the first day of
  the window after the open weeks were reached), as many days as their stored row counts fit in
  the page beside the open weeks, at least one. The cursor keeps a digest (count + hash of the ids)
  of every day of the window holding entries; a listed day whose digest changed lost an entry (or
  gained one already reported by its stamp: that week is re-synced once more, never missed), and
  its week is reported. A deletion in the open weeks shows at the next check, an older one within
  one rotation: the window's older rows over what a slice holds, e.g. 39 checks (three and a quarter
  days at a two-hour refresh) for a 50-worker company with a year of history (22,000 rows); the
  cursor then holds about 9.5 kB of day digests. While the open weeks hold more than two thirds of
  a page they shrink, down to the current week, so a quiet check stays at one page up to about 650
  rows a week; beyond that a check lists one more page per 1,000 rows.
  ``listed_weeks`` names the weeks listed whole and ``live_entry_ids`` their live ids, so the caller
  can find which stored ids disappeared (and their stored weeks); the days of a week listed in part
  rely on their digests.
- reference data (Contacts of type Employee by ``ModifiedDate``, Opportunities by ``ModifiedDate``,
  WorkTickets and OpportunityServices by ``LastModifiedDateTime``, and PayRates, which carry no
  modification stamp: listed whole (up to 1,000 a request) and compared by a digest of their ids,
  employees, dates and rates, so a new, edited or deleted pay rate shows) is read all five when time
  changed (a sync runs anyway, and a new entry may sit on a new work ticket), else ONE endpoint per
  check in rotation, skipped on a check that needed a token request (but never on two checks
  running): a reference-only change (a work ticket's hours budget, a service's estimate, a pay rate)
  shows within 5 checks, 6 when the daily token renewal falls among them.

The first check (no cursor; an initial sync follows) lists the whole window, asks each of the five
stamped endpoints for its newest stamp and lists the pay rates: a token, one page per 1,000 rows of
the window and 6 requests (more with over 1,000 pay rates). A cursor of the earlier format (per-week digests, no
day digests) is taken as one whose digests are unknown: that check lists the whole window once and
reports ``listed_weeks`` = every week, so the caller compares them all with the warehouse.

Aspire stamps are branch-local wall time without an offset; they are compared as such, and the
overlap behind the newest stamp is two hours so that the hour repeated when daylight saving time
ends cannot hide a change.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from protiv_dagster.partitions import week_start
from protiv_dagster.vendors.aspire import mapping as aspire_mapping
from protiv_dagster.vendors.aspire.client import EMPLOYEE_FILTER, AspireTokens, AspireTuning, any_of
from protiv_dagster.vendors.aspire.credentials import AspireCredentials
from protiv_dagster.vendors.base import (
    ChangeLog,
    Changes,
    Mapped,
    Source,
    chunks,
    day_of_text,
    decode_cursor,
    encode_cursor,
    is_stamp,
    records_digest,
    weeks_between,
    weeks_of_days,
)

log = logging.getLogger(__name__)

# Wall-time stamps repeat an hour when daylight saving time ends: the overlap must exceed it.
OVERLAP = timedelta(hours=2)
# The mark of a tenant without any time row yet: every row added later is newer.
EMPTY_TENANT_MARK = "1900-01-01T00:00:00"
REFERENCE_FEEDS = (
    # (key prefix, endpoint, id field, stamp field (None: listed whole, compared by digest), extra filter)
    ("c", "Contacts", "ContactID", "ModifiedDate", EMPLOYEE_FILTER),
    ("o", "Opportunities", "OpportunityID", "ModifiedDate", None),
    ("w", "WorkTickets", "WorkTicketID", "LastModifiedDateTime", None),
    ("s", "OpportunityServices", "OpportunityServiceID", "LastModifiedDateTime", None),
    ("p", "PayRates", "PayRateID", None, None),
)
# Per endpoint listed whole: the fields whose change is a change of reference data.
LISTED_FIELDS = {"PayRates": ("PayRateID", "ContactID", "EffectiveDate", "HourlyBasePay", "BurdenPercent")}
# Share of a listing page kept free for rows outside the listed days (stamped since the cursor) and
# for the days that grew since their count was stored.
PAGE_HEADROOM = 0.1
# The open weeks shrink while they would hold more than this share of the page (headroom deducted).
OPEN_WEEKS_SHARE = 2 / 3


def _wall_text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _day_digest(ids: list[str]) -> str:
    """Count and short hash of a day's live ids: changes when an entry is deleted or moves out."""
    ordered = sorted(ids)
    return f"{len(ordered)}:{hashlib.sha1(','.join(ordered).encode()).hexdigest()[:10]}"


def _rows_of(digest: str | None) -> int:
    return int(digest.split(":", 1)[0]) if digest else 0


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class DeletionScan:
    """The days one check lists in full: the open weeks (``open_first``..``last``) and a slice of
    older days (``slice``, None when the window has no older day); ``next_slice`` is where the next
    check's slice starts."""

    open_first: date
    last: date
    slice: tuple[date, date] | None
    next_slice: date

    @property
    def ranges(self) -> list[tuple[date, date]]:
        return [r for r in (self.slice, (self.open_first, self.last)) if r is not None]

    def days(self) -> list[date]:
        return [day for first, last in self.ranges for day in _days(first, last)]


def plan_deletion_scan(
    window_first: date,
    window_last: date,
    digests: Mapping[str, str],
    slice_from: date | None,
    open_weeks: int,
    page_size: int,
) -> DeletionScan:
    """The days to list this check (module docstring): the open weeks, shrunk while they would take
    more than ``OPEN_WEEKS_SHARE`` of the page, then older days from ``slice_from`` while their
    stored counts fit what is left of the page (at least one day)."""
    budget = page_size * (1 - PAGE_HEADROOM)

    def rows(first: date, last: date) -> int:
        return sum(_rows_of(digests.get(day.isoformat())) for day in _days(first, last))

    current_week = week_start(window_last)
    weeks = open_weeks
    while True:
        open_first = max(window_first, current_week - timedelta(weeks=weeks - 1))
        open_rows = rows(open_first, window_last)
        if weeks == 1 or open_rows <= budget * OPEN_WEEKS_SHARE:
            break
        weeks -= 1
    older_last = open_first - timedelta(days=1)
    if older_last < window_first:
        return DeletionScan(open_first, window_last, None, window_first)
    first = slice_from if slice_from is not None and window_first <= slice_from <= older_last else window_first
    last, used = first, rows(first, first)
    while last < older_last:
        more = rows(last + timedelta(days=1), last + timedelta(days=1))
        if open_rows + used + more > budget:
            break
        last, used = last + timedelta(days=1), used + more
    next_slice = last + timedelta(days=1) if last < older_last else window_first
    return DeletionScan(open_first, window_last, (first, last), next_slice)


def stored_tokens(credentials: AspireCredentials) -> AspireTokens | None:
    """The token pair kept with the connection, None when there is none (or it cannot be read)."""
    if not credentials.token or not credentials.token_expires_at:
        return None
    try:
        expires_at = datetime.fromisoformat(credentials.token_expires_at)
    except ValueError:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return AspireTokens(credentials.token, credentials.refresh_token or None, expires_at)


class AspireSource(Source):
    provider = "aspire"
    live_feed = "WorkTicketTimes"
    clock_feed = "ClockTimes"
    vendor_clock_feed = "vendorClock"
    feed_fields = {
        "WorkTicketTimes": ("WorkTicketTimeID", "LastModifiedDateTime"),
        "ClockTimes": ("ClockTimeID", None),
        "vendorClock": ("id", None),
    }
    # Both feeds are filtered by a branch-local date (the ticket time's work date, the clock's start).
    weekly_feeds = frozenset({"WorkTicketTimes", "ClockTimes"})
    _work_day_fields = {"WorkTicketTimes": "WorkTicketTimeDate", "ClockTimes": "ClockStart"}

    def __init__(self, connection: Any, resource: AspireTuning, registry: Any = None):
        """``registry`` (a ``ConnectionRegistryResource``) keeps the access token between checks;
        without it every source asks for a new token."""
        self.connection = connection
        self.registry = registry
        credentials = AspireCredentials.stored(connection.credentials())
        settings = getattr(connection, "settings", None)
        self.timezone_override: str | None = getattr(settings, "timezone", None)
        self.drive_job_name = next(
            (p for p in getattr(settings, "drive_job_patterns", ()) if "*" not in p and "?" not in p),
            aspire_mapping.DRIVE_JOB_NAME,
        )
        self.wage_lookback_days = resource.wage_lookback_days
        self.open_weeks = resource.open_weeks
        self.page_size = resource.page_size
        self.client = resource.client(
            connection.base_url,
            credentials.client_id,
            credentials.secret,
            timezone=self.timezone_override,
            tokens=stored_tokens(credentials) if registry is not None else None,
            on_new_tokens=self._keep_tokens if registry is not None else None,
        )
        self._zones: aspire_mapping.Zones | None = None
        self._contact_branches: dict[str, str] | None = None
        self._tickets: list[dict[str, Any]] | None = None
        self._pay_rates: list[dict[str, Any]] | None = None
        self.clock_times_without_row = 0

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def _keep_tokens(self, tokens: AspireTokens) -> None:
        """Store a new token pair with the connection (encrypted), for the next check or sync. A
        failure to store costs one token request later, so it is logged (without a value), not raised."""
        company_id = self.connection.company_id
        try:
            self.registry.rotate_credentials(
                company_id,
                {
                    "token": tokens.token,
                    "refresh_token": tokens.refresh_token or "",
                    "token_expires_at": tokens.expires_at.isoformat(timespec="seconds"),
                },
                issued_for=self.connection,
            )
        except Exception as exc:  # noqa: BLE001 - the token works; only its reuse is lost
            log.warning("Aspire: the new token of company %r could not be kept (%s)", company_id, type(exc).__name__)

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

    def pay_rates(self) -> list[dict[str, Any]]:
        if self._pay_rates is None:
            self._pay_rates = self.client.pay_rates()
        return self._pay_rates

    # -- the Source protocol ---------------------------------------------------------------------
    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        self.zones()
        times = self.client.work_ticket_times(first_day=first_day, last_day=last_day)
        now = self.client.server_time or datetime.now(UTC)  # the Date of the times' answer
        return {
            self.live_feed: times,
            self.clock_feed: self.client.clock_times(first_day=first_day, last_day=last_day),
            self.vendor_clock_feed: [{"id": self.vendor_clock_feed, "now": now.isoformat()}],
        }

    def live_entries(self, entry_ids: list[str]) -> dict[str, date | None]:
        """Live work ticket times among ``entry_ids`` (``$filter`` on their ids, 50 a request: Aspire has
        no get-by-id path and no deleted feed), by their work date."""
        ids = [int(entry_id) if entry_id.isascii() and entry_id.isdigit() else entry_id for entry_id in entry_ids]
        return {
            str(row.get("WorkTicketTimeID")): day_of_text(row.get("WorkTicketTimeDate"))
            for part in chunks(ids, 50)
            for row in self.client.list(
                self.live_feed,
                "WorkTicketTimeID",
                filter=any_of("WorkTicketTimeID", part),
                select=["WorkTicketTimeID", "WorkTicketTimeDate"],
            )
        }

    def work_day(self, feed: str, record: Mapping[str, Any]) -> date | None:
        """The branch-local date the vendor filters ``feed`` on (None when unreadable)."""
        return day_of_text(record.get(self._work_day_fields.get(feed, "")))

    def changes_since(
        self, cursor: str | None, first_day: date, last_day: date, *, check_reference: bool | None = None
    ) -> Changes:
        """What changed in Aspire since ``cursor`` (see the module docstring): at most 2 requests
        when nothing did. ``cursor=None`` lists the whole window and asks for the newest stamps.
        ``check_reference`` forces (True: all five endpoints) or skips (False) the reference data."""
        requests_before, tokens_before = self.client.request_count, self.client.token_request_count
        window_first, window_last = week_start(first_day), week_start(last_day) + timedelta(days=6)
        state = decode_cursor(self.provider, cursor)
        since = datetime.fromisoformat(state["since"]) if state else None
        digests: dict[str, str] | None = None  # None: unknown (no cursor, or one of the earlier format)
        if state is not None and isinstance(state.get("days"), dict):
            digests = {
                day: digest
                for day, digest in state["days"].items()
                if window_first.isoformat() <= day <= window_last.isoformat()
            }
        if digests is None:
            scan = DeletionScan(window_first, window_last, None, window_first)
        else:
            assert state is not None  # digests come from the cursor's state
            scan_from = date.fromisoformat(state["scan"]) if state.get("scan") else None
            scan = plan_deletion_scan(window_first, window_last, digests, scan_from, self.open_weeks, self.page_size)
        rows = self.client.work_ticket_time_changes(days=scan.ranges, modified_after=since)

        listed: dict[date, list[str]] = {day: [] for day in scan.days()}
        for row in rows:
            day = day_of_text(row.get("WorkTicketTimeDate"))
            if day in listed:
                listed[day].append(str(row.get("WorkTicketTimeID")))
        listed_digests = {day: _day_digest(ids) if ids else None for day, ids in listed.items()}
        day_digests = dict(digests or {})
        for day, digest in listed_digests.items():
            if digest:
                day_digests[day.isoformat()] = digest
            else:
                day_digests.pop(day.isoformat(), None)
        listed_weeks = frozenset(
            monday
            for monday in weeks_between(window_first, window_last)
            if all(monday + timedelta(days=offset) in listed for offset in range(7))
        )
        live_ids = frozenset(i for day, ids in listed.items() if week_start(day) in listed_weeks for i in ids)
        scan_state = {"days": dict(sorted(day_digests.items())), "scan": scan.next_slice.isoformat()}

        if state is None:
            # Everything stamped up to now is covered by the full sync that follows; each reference
            # endpoint gets its own mark, so that none is reported changed by the sync's own data.
            marks = {
                prefix: self._newest_mark(endpoint, id_field, stamp_field)
                for prefix, endpoint, id_field, stamp_field, _ in (
                    ("t", "WorkTicketTimes", "WorkTicketTimeID", "LastModifiedDateTime", None),
                    *REFERENCE_FEEDS,
                )
                if stamp_field
            }
            cursor_state = {
                **ChangeLog(marks.pop("t")).state(),
                **scan_state,
                "reference": {prefix: ChangeLog(mark).state() for prefix, mark in marks.items()},
                "next_reference": 0,
                "listed": {
                    prefix: self._listing_digest(endpoint, id_field)
                    for prefix, endpoint, id_field, stamp_field, _ in REFERENCE_FEEDS
                    if not stamp_field
                },
            }
            return Changes(
                weeks=weeks_between(first_day, last_day),
                entry_ids=frozenset(),
                reference_changed=True,
                cursor=encode_cursor(self.provider, cursor_state),
                requests=self.client.request_count - requests_before,
                live_entry_ids=live_ids,
                listed_weeks=listed_weeks,
            )

        log = ChangeLog(state["since"], dict(state.get("seen") or {}))
        entry_ids: set[str] = set()
        days: list[date] = []
        for row in rows:
            stamp, day = row.get("LastModifiedDateTime"), day_of_text(row.get("WorkTicketTimeDate"))
            if row.get("WorkTicketTimeID") is None or not is_stamp(stamp, aware=False):
                # Unreadable: its week (when the date says which) is re-synced, where the mapping
                # sets the row aside with its reason; the log cannot track it.
                if day is not None:
                    days.append(day)
                continue
            if log.is_new(f"t:{row['WorkTicketTimeID']}", str(stamp)):
                entry_ids.add(str(row["WorkTicketTimeID"]))
                if day is not None:
                    days.append(day)
        weeks = set(weeks_of_days(days, first_day, last_day))
        if digests is not None:
            changed_days = [day for day, digest in listed_digests.items() if digest != digests.get(day.isoformat())]
            weeks |= weeks_of_days(changed_days, first_day, last_day)  # an entry left the day: deleted or moved

        reference_changed, reference_state = self._reference_changes(
            state,
            time_changed=bool(weeks or entry_ids),
            force=check_reference,
            token_requested=self.client.token_request_count > tokens_before,
        )
        cursor_state = {**log.advanced(OVERLAP, _wall_text).state(), **scan_state, **reference_state}
        return Changes(
            weeks=frozenset(weeks),
            entry_ids=frozenset(entry_ids),
            reference_changed=reference_changed,
            cursor=encode_cursor(self.provider, cursor_state),
            requests=self.client.request_count - requests_before,
            live_entry_ids=live_ids,
            listed_weeks=listed_weeks,
        )

    def _listing_digest(self, endpoint: str, id_field: str) -> str:
        """The ``records_digest`` of an endpoint without modification stamps (``LISTED_FIELDS``), listed whole."""
        fields = LISTED_FIELDS[endpoint]
        return records_digest(self.client.list(endpoint, id_field, select=list(fields)), fields)

    def _newest_mark(self, endpoint: str, id_field: str, stamp_field: str) -> str:
        newest = self.client.latest_modification(endpoint, id_field, stamp_field)
        return _wall_text(datetime.fromisoformat(newest)) if newest else EMPTY_TENANT_MARK

    def _reference_changes(
        self, state: Mapping[str, Any], *, time_changed: bool, force: bool | None, token_requested: bool
    ) -> tuple[bool, dict[str, Any]]:
        """Whether reference data changed, by the reference endpoints due this check (module
        docstring), and the cursor's reference part after it. Each endpoint keeps its own mark."""
        stored = state.get("reference") or {}
        if "since" in stored:  # the earlier format: one mark for the three endpoints
            stored = {prefix: stored for prefix, *_ in REFERENCE_FEEDS}
        logs = {
            prefix: ChangeLog(
                (stored.get(prefix) or {}).get("since") or state["since"],
                dict((stored.get(prefix) or {}).get("seen") or {}),
            )
            for prefix, _, _, stamp_field, _ in REFERENCE_FEEDS
            if stamp_field
        }
        listed = dict(state.get("listed") or {})
        turn = int(state.get("next_reference") or 0) % len(REFERENCE_FEEDS)
        waited = bool(state.get("reference_waited"))
        if force is True or (force is None and time_changed):
            due = list(REFERENCE_FEEDS)
        elif force is False:
            due = []
        elif token_requested and not waited:
            due, waited = [], True  # this check made its second request already
        else:
            due, turn, waited = [REFERENCE_FEEDS[turn]], (turn + 1) % len(REFERENCE_FEEDS), False
        changed = False
        for prefix, endpoint, id_field, stamp_field, extra in due:
            if not stamp_field:
                # A cursor without this digest (an earlier format) counts as changed, once.
                digest = self._listing_digest(endpoint, id_field)
                changed |= digest != listed.get(prefix)
                listed[prefix] = digest
                continue
            reference = logs[prefix]
            after = datetime.fromisoformat(reference.since)
            for record in self.client.modified_after(endpoint, id_field, stamp_field, after, filter=extra):
                stamp = record.get(stamp_field)
                if record.get(id_field) is None or not is_stamp(stamp, aware=False):
                    changed = True  # unreadable: re-read the reference data, where it is set aside
                elif reference.is_new(f"{prefix}:{record[id_field]}", str(stamp)):
                    changed = True
            logs[prefix] = reference.advanced(OVERLAP, _wall_text)
        return changed, {
            "reference": {prefix: reference.state() for prefix, reference in logs.items()},
            "listed": listed,
            "next_reference": turn,
            "reference_waited": waited,
        }

    def workers(self) -> Mapped:
        """Employees with the pay rate in force today; an employee without one takes the rate of their
        latest recent work ticket time, read only for such employees (none: no request)."""
        zones = self.zones()
        employees = self._employees()
        today = date.today()
        rates, _ = aspire_mapping.pay_rates_to_wages(self.pay_rates(), None, self.connection.company_id)
        wages = aspire_mapping.wages_in_force(rates, today)
        without = sorted(
            {
                int(contact["ContactID"])
                for contact in employees
                if isinstance(contact.get("ContactID"), int)
                and not isinstance(contact.get("ContactID"), bool)
                and str(contact["ContactID"]) not in wages
            }
        )
        recent = [
            row
            for part in chunks(without, 50)
            for row in self.client.work_ticket_times(
                first_day=today - timedelta(days=self.wage_lookback_days),
                last_day=today + timedelta(days=1),
                contact_ids=part,
                select=["ContactID", "WorkTicketTimeDate", "BaseHourlyRate"],
            )
        ]
        rows, set_aside = aspire_mapping.employees_to_workers(
            employees, {**aspire_mapping.latest_wages(recent), **wages}, zones, self.connection.company_id
        )
        return Mapped(rows, set_aside)

    def worker_wages(self, worker_ids: Iterable[str]) -> Mapped:
        """The pay rates (read once with ``workers``) of the employees among ``worker_ids``."""
        rows, set_aside = aspire_mapping.pay_rates_to_wages(self.pay_rates(), worker_ids, self.connection.company_id)
        return Mapped(rows, set_aside)

    def jobs(self) -> Mapped:
        rows, set_aside = aspire_mapping.opportunities_to_jobs(
            self.client.opportunities(),
            self.work_tickets(),
            self.zones(),
            self.connection.company_id,
            drive_job_name=self.drive_job_name,
        )
        return Mapped(rows, set_aside)

    def task_lines(self, job_ids: Iterable[str]) -> Mapped:
        """The opportunity services (one more listing)."""
        rows, set_aside = aspire_mapping.services_to_task_lines(
            self.client.opportunity_services(), job_ids, self.connection.company_id
        )
        return Mapped(rows, set_aside)

    def job_assignments(self, job_ids: Iterable[str]) -> Mapped:
        """The crew leaders of the work tickets (read once with ``jobs``) and of the work ticket times
        of the ``wage_lookback_days`` before today (one more listing, of three fields)."""
        today = date.today()
        times = self.client.crew_leader_times(
            first_day=today - timedelta(days=self.wage_lookback_days), last_day=today + timedelta(days=1)
        )
        rows, set_aside = aspire_mapping.crew_leaders_to_assignments(
            self.work_tickets(), times, job_ids, self.connection.company_id
        )
        return Mapped(rows, set_aside)

    def _vendor_clock(self, feeds: Mapping[str, list[dict[str, Any]]]) -> datetime:
        """The vendor's clock stored with the feeds (so a re-mapping of them counts a running time to
        the same hours), else the client's last answer's, else the local one."""
        for record in feeds.get(self.vendor_clock_feed) or []:
            try:
                moment = datetime.fromisoformat(str(record.get("now")).replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return self.client.server_time or datetime.now(UTC)

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
            aspire_mapping.ticket_services(self.work_tickets()),
            now=self._vendor_clock(feeds),
        )
        self.clock_times_without_row = without_row
        fetched = len(feeds.get(self.live_feed, [])) + len(feeds.get(self.clock_feed, []))
        return Mapped(rows, set_aside, without_row=without_row, fetched=fetched)
