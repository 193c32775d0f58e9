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
    """Cleaned candidate rows, the records set aside with reasons, and records removed as deleted."""

    rows: pd.DataFrame
    set_aside: pd.DataFrame
    removed_as_deleted: int = 0


class Source(Protocol):
    provider: str
    live_feed: str

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]: ...
    def workers(self) -> Mapped: ...
    def jobs(self) -> Mapped: ...
    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped: ...
    @property
    def request_count(self) -> int: ...
