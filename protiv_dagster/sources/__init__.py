"""A company's source of attendance: the vendor client for its provider plus that vendor's mapping.

Assets ask a ``Source`` for records and cleaned frames without knowing which vendor answers. Each
provider supplies the same four things: the raw time-entry feeds of a date range, workers, jobs, and
the mapping of raw feeds to attendance. Adding a vendor means adding one module here and wiring it
in ``resources/vendors.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import pandas as pd



@dataclass
class Mapped:
    """What a mapping made of the fetched records; every record is counted once:
    fetched = len(rows) + len(set_aside) + removed_as_deleted + without_row.
    """

    rows: pd.DataFrame
    set_aside: pd.DataFrame
    removed_as_deleted: int = 0  # the vendor lists them as deleted
    without_row: int = 0  # yield no row by design (e.g. Aspire clock time fully covered by tickets)
    fetched: int | None = None  # records the mapping read; None = rows + set aside + the two above

    @property
    def fetched_count(self) -> int:
        if self.fetched is not None:
            return self.fetched
        return len(self.rows) + len(self.set_aside) + self.removed_as_deleted + self.without_row


class Source(Protocol):
    provider: str
    live_feed: str
    # Per raw feed: the record's id field and its modification-time field (None when it has none),
    # stored beside each raw record so analysts can find it without parsing the payload.
    feed_fields: Mapping[str, tuple[str, str | None]]

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]: ...
    def workers(self) -> Mapped: ...
    def jobs(self) -> Mapped: ...
    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped: ...
    @property
    def request_count(self) -> int: ...
