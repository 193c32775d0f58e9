"""A company on Tiny Clock: every listing whole, the change check a re-read of the window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from protiv_dagster.vendors.base import (
    Changes,
    Mapped,
    Source,
    day_of_text,
    decode_cursor,
    encode_cursor,
    weeks_between,
    weeks_of_days,
)
from tests.vendors.tiny import mapping
from tests.vendors.tiny.client import TinyClockTuning
from tests.vendors.tiny.credentials import TinyClockCredentials


class TinyClockSource(Source):
    provider = "tiny_clock"
    live_feed = "entries"
    feed_fields = {"entries": ("id", "last_modified")}
    weekly_feeds = frozenset({"entries"})

    def __init__(self, connection: Any, tuning: TinyClockTuning, registry: Any = None):
        self.connection = connection
        credentials = TinyClockCredentials.stored(connection.credentials())
        self.client = tuning.client(connection.base_url, credentials.api_key)

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        return {self.live_feed: self.client.entries(first_day, last_day)}

    def work_day(self, feed: str, record: Mapping[str, Any]) -> date | None:
        return day_of_text(record.get("date"))

    def live_entries(self, entry_ids: list[str]) -> dict[str, date | None]:
        wanted = set(entry_ids)
        first = self.connection.attendance_pull_date
        return {
            str(record["id"]): day_of_text(record.get("date"))
            for record in self.client.entries(first, date.today())
            if str(record["id"]) in wanted
        }

    def changes_since(self, cursor: str | None, first_day: date, last_day: date) -> Changes:
        """Tiny Clock has no change feed: a never-synced company gets every week, a synced one the
        weeks whose entries differ from the last check's (by id and stamp)."""
        entries = self.client.entries(first_day, last_day)
        stamps = {str(record["id"]): str(record.get("last_modified")) for record in entries}
        state = decode_cursor(self.provider, cursor)
        if state is None:
            weeks, changed, reference = weeks_between(first_day, last_day), frozenset(stamps), True
        else:
            known = state.get("stamps", {})
            changed = frozenset(i for i, stamp in stamps.items() if known.get(i) != stamp) | (set(known) - set(stamps))
            days = [day_of_text(r.get("date")) for r in entries if str(r["id"]) in changed]
            weeks, reference = weeks_of_days([d for d in days if d], first_day, last_day), False
        return Changes(
            weeks,
            frozenset(changed),
            reference,
            encode_cursor(self.provider, {"stamps": stamps}),
            self.client.request_count,
        )

    def workers(self) -> Mapped:
        rows, set_aside = mapping.people_to_workers(self.client.people(), self.connection.company_id)
        return Mapped(rows, set_aside)

    def jobs(self) -> Mapped:
        rows, set_aside = mapping.jobs_to_jobs(
            self.client.jobs(), self.client.fields(), self.connection.settings, self.connection.company_id
        )
        return Mapped(rows, set_aside)

    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped:
        records = feeds.get(self.live_feed, [])
        rows, set_aside, removed = mapping.entries_to_attendance(
            records, set(), jobs, worker_ids, self.connection.company_id
        )
        return Mapped(rows, set_aside, removed, fetched=len(records))
