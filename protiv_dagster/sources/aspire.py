"""A company on Aspire: the External API client plus the Aspire mapping.

``time_entry_feeds`` returns two raw feeds, ``WorkTicketTimes`` (the live feed: time on work
tickets) and ``ClockTimes`` (whose time not allocated to tickets becomes drive rows). Aspire has no
deleted feed: a deleted time row simply is not in the re-read window, so ``removed_as_deleted`` is 0.

Counting: the drive rows come from ``ClockTimes``, not from the live feed, and a clock time fully
covered by ticket times yields no row. Across both feeds, fetched = loaded + set aside +
``clock_times_without_row`` (kept on the source after ``attendance``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import pandas as pd

from protiv_dagster.mapping import aspire as aspire_mapping
from protiv_dagster.resources.aspire import AspireResource
from protiv_dagster.sources import Mapped


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
