"""A company on QuickBooks Time: the REST client plus the QuickBooks Time mapping.

Change detection (``changes_since``) rests on the vendor's own mechanism:

- A quiet check is ONE request, ``GET /last_modified_timestamps`` for timesheets,
  timesheets_deleted, users, jobcodes and customfields: when every stamp equals the one stored in
  the cursor, nothing changed.
- When a time stamp moved, ``GET /timesheets?modified_since=`` (running sheets included) and
  ``GET /timesheets_deleted?modified_since=`` (each paged at 200, ``supplemental_data=no``; the API
  has no field selection) give the changed and deleted sheets with their work ``date``.
- Users, jobcodes or custom fields stamps that moved set ``reference_changed`` without any further
  request.

The cursor (JSON) holds the endpoint stamps and a ``ChangeLog`` over ``last_modified``. An
endpoint stamp within ``SETTLE`` of the vendor's clock (the answer's ``Date``) is stored as
unknown: a change made in the same second right after our read keeps the same stamp, so a recent
stamp must count as "changed" at the next check (which then pulls, and the change log drops what
was already reported).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from protiv_dagster.connections.registry import Connection, ConnectionRegistryResource
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
    nothing,
    weeks_between,
    weeks_of_days,
)
from protiv_dagster.vendors.quickbooks_time import mapping as qbt_mapping
from protiv_dagster.vendors.quickbooks_time.client import MAX_PAGE_SIZE, QuickBooksTimeTuning
from protiv_dagster.vendors.quickbooks_time.credentials import QuickBooksTimeCredentials

TIME_ENDPOINTS = ("timesheets", "timesheets_deleted")
REFERENCE_ENDPOINTS = ("users", "jobcodes", "customfields")
# How far behind the newest stamp seen the next pull starts (late commits, same-second ties).
OVERLAP = timedelta(minutes=10)
# An endpoint stamp this close to the vendor's clock may still be joined by same-second changes.
SETTLE = timedelta(minutes=2)


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class QuickBooksTimeSource(Source):
    provider = "quickbooks_time"
    live_feed = "timesheets"
    deleted_feed = "timesheets_deleted"
    feed_fields = {"timesheets": ("id", "last_modified"), "timesheets_deleted": ("id", "last_modified")}
    # Both feeds are filtered by the sheet's local work date: a window of weeks is split by it.
    weekly_feeds = frozenset({"timesheets", "timesheets_deleted"})
    # Each live record maps on its own (the other feeds are lookups): a large week is mapped in chunks.
    maps_records_independently = True

    def __init__(self, connection: Connection, resource: QuickBooksTimeTuning, registry: ConnectionRegistryResource):
        self.connection = connection
        company_id = connection.company_id

        def store_rotated(new: QuickBooksTimeCredentials) -> None:
            registry.rotate_credentials(
                company_id, {"access_token": new.access_token, "refresh_token": new.refresh_token or ""}
            )

        self.client = resource.client(
            connection.base_url,
            QuickBooksTimeCredentials.stored(connection.credentials()),
            on_token_refresh=store_rotated,
        )

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        return {
            self.live_feed: self.client.timesheets(start_date=first_day, end_date=last_day),
            self.deleted_feed: self.client.deleted_timesheets(start_date=first_day, end_date=last_day),
        }

    def time_entry_pages(self, first_day: date, last_day: date) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """The records of ``time_entry_feeds`` page by page, as they arrive: (feed, records)."""
        for page in self.client.timesheet_pages(start_date=first_day, end_date=last_day):
            yield self.live_feed, page.records
        for page in self.client.deleted_timesheet_pages(start_date=first_day, end_date=last_day):
            yield self.deleted_feed, page.records

    def live_entries(self, entry_ids: list[str]) -> dict[str, date | None]:
        """Live sheets among ``entry_ids`` (``/timesheets?ids=``, 200 ids a request), by their date."""
        numeric = [int(entry_id) for entry_id in entry_ids if entry_id.isascii() and entry_id.isdigit()]
        return {
            str(sheet.get("id")): day_of_text(sheet.get("date"))
            for ids in chunks(numeric, MAX_PAGE_SIZE)
            for sheet in self.client.timesheets(ids=ids)
        }

    def work_day(self, feed: str, record: Mapping[str, Any]) -> date | None:
        """The local work date the vendor filters ``feed`` on (None when unreadable)."""
        return day_of_text(record.get("date"))

    def changes_since(self, cursor: str | None, first_day: date, last_day: date) -> Changes:
        """What changed in QuickBooks Time since ``cursor``: 1 request when nothing did (see the
        module docstring); ``cursor=None`` costs the same one request, for the first stamps."""
        requests_before = self.client.request_count
        stamps = {
            name: _utc_text(moment)
            for name, moment in self.client.last_modified_timestamps((*TIME_ENDPOINTS, *REFERENCE_ENDPOINTS)).items()
        }
        settled = self._settled(stamps)
        state = decode_cursor(self.provider, cursor)
        if state is None:
            # Everything up to the newest time stamp is covered by the full sync that follows.
            newest = max(datetime.fromisoformat(stamps[name]) for name in TIME_ENDPOINTS)
            log = ChangeLog(_utc_text(newest))
            return Changes(
                weeks=weeks_between(first_day, last_day),
                entry_ids=frozenset(),
                reference_changed=True,
                cursor=encode_cursor(self.provider, {**log.state(), "stamps": settled}),
                requests=self.client.request_count - requests_before,
            )
        stored = state.get("stamps") or {}
        reference_changed = any(stamps.get(name) != stored.get(name) for name in REFERENCE_ENDPOINTS)
        log = ChangeLog(state["since"], dict(state.get("seen") or {}))
        weeks: frozenset[date] = frozenset()
        entry_ids: set[str] = set()
        if any(stamps.get(name) != stored.get(name) for name in TIME_ENDPOINTS):
            since = datetime.fromisoformat(log.since)
            days = []
            for key, sheets in (
                ("t", self.client.timesheets(modified_since=since)),
                ("d", self.client.deleted_timesheets(modified_since=since)),
            ):
                for sheet in sheets:
                    day = day_of_text(sheet.get("date"))
                    if sheet.get("id") is None or not is_stamp(sheet.get("last_modified")):
                        # Unreadable: its week (when the date says which) is re-synced, where the
                        # mapping sets the record aside with its reason; the log cannot track it.
                        if day is not None:
                            days.append(day)
                        continue
                    if log.is_new(f"{key}:{sheet['id']}", sheet["last_modified"]):
                        entry_ids.add(str(sheet["id"]))
                        if day is not None:
                            days.append(day)
            weeks = weeks_of_days(days, first_day, last_day)
            log = log.advanced(OVERLAP, _utc_text)
        return Changes(
            weeks=weeks,
            entry_ids=frozenset(entry_ids),
            reference_changed=reference_changed,
            cursor=encode_cursor(self.provider, {**log.state(), "stamps": settled}),
            requests=self.client.request_count - requests_before,
        )

    def _settled(self, stamps: dict[str, str]) -> dict[str, str | None]:
        """The stamps to compare next time; a recent one is stored as unknown (module docstring)."""
        now = self.client.server_time or datetime.now(UTC)
        return {name: (text if datetime.fromisoformat(text) < now - SETTLE else None) for name, text in stamps.items()}

    def workers(self) -> Mapped:
        rows, set_aside = qbt_mapping.users_to_workers(self.client.users(), self.connection.company_id)
        return Mapped(rows, set_aside)

    def worker_wages(self, worker_ids: Iterable[str]) -> Mapped:
        """None: QuickBooks Time keeps only today's pay rate (workers.hourly_wage)."""
        return nothing()

    def jobs(self) -> Mapped:
        rows, set_aside = qbt_mapping.jobcodes_to_jobs(
            self.client.jobcodes(),
            self.client.customfields("jobcode"),
            self.connection.settings,
            self.connection.company_id,
        )
        return Mapped(rows, set_aside)

    def task_lines(self, job_ids: Iterable[str]) -> Mapped:
        """None: QuickBooks Time has no line items on jobcodes."""
        return nothing()

    def job_assignments(self, job_ids: Iterable[str]) -> Mapped:
        """None: QuickBooks Time assigns nobody to a jobcode."""
        return nothing()

    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped:
        deleted_ids = {str(r.get("id")) for r in feeds.get(self.deleted_feed, [])}
        rows, set_aside, removed = qbt_mapping.timesheets_to_attendance(
            feeds.get(self.live_feed, []), deleted_ids, jobs, worker_ids, self.connection.company_id
        )
        return Mapped(rows, set_aside, removed, fetched=len(feeds.get(self.live_feed, [])))
