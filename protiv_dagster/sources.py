"""A company's source of attendance: the vendor client for its provider plus that vendor's mapping.

Assets ask a ``Source`` for records and cleaned frames without knowing which vendor answers. Each
provider supplies the same four things: the raw time-entry feeds of a date range, workers, jobs, and
the mapping of raw feeds to attendance. Adding a vendor means adding one class here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import pandas as pd

from protiv_dagster.mapping import quickbooks_time as qbt_mapping
from protiv_dagster.registry import Connection, ConnectionRegistryResource, RegistryError
from protiv_dagster.resources.quickbooks_time import QuickBooksTimeCredentials, QuickBooksTimeResource


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


class QuickBooksTimeSource:
    provider = "quickbooks_time"
    live_feed = "timesheets"
    deleted_feed = "timesheets_deleted"

    def __init__(self, connection: Connection, resource: QuickBooksTimeResource, registry: ConnectionRegistryResource):
        self.connection = connection
        credentials = connection.credentials()
        company_id = connection.company_id

        def store_rotated(new: QuickBooksTimeCredentials) -> None:
            registry.rotate_credentials(
                company_id, {"access_token": new.access_token, "refresh_token": new.refresh_token or ""}
            )

        self.client = resource.client(
            connection.base_url,
            QuickBooksTimeCredentials(
                access_token=credentials["access_token"],
                refresh_token=credentials.get("refresh_token"),
                client_id=credentials.get("client_id"),
                client_secret=credentials.get("client_secret"),
            ),
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

    def workers(self) -> Mapped:
        rows, set_aside = qbt_mapping.users_to_workers(self.client.users(), self.connection.company_id)
        return Mapped(rows, set_aside)

    def jobs(self) -> Mapped:
        rows, set_aside = qbt_mapping.jobcodes_to_jobs(
            self.client.jobcodes(),
            self.client.customfields("jobcode"),
            self.connection.settings,
            self.connection.company_id,
        )
        return Mapped(rows, set_aside)

    def attendance(
        self, feeds: Mapping[str, list[dict[str, Any]]], jobs: pd.DataFrame, worker_ids: Iterable[str]
    ) -> Mapped:
        deleted_ids = {str(r.get("id")) for r in feeds.get(self.deleted_feed, [])}
        rows, set_aside, removed = qbt_mapping.timesheets_to_attendance(
            feeds.get(self.live_feed, []), deleted_ids, jobs, worker_ids, self.connection.company_id
        )
        return Mapped(rows, set_aside, removed)


def source_for(
    connection: Connection, *, registry: ConnectionRegistryResource, quickbooks_time: QuickBooksTimeResource
) -> Source:
    """The source that reads this company's vendor; a clear error for a provider not wired yet."""
    if connection.provider == "quickbooks_time":
        return QuickBooksTimeSource(connection, quickbooks_time, registry)
    raise RegistryError(
        f"company {connection.company_id!r} is connected to {connection.provider_label}, "
        "which this code location cannot sync yet"
    )
