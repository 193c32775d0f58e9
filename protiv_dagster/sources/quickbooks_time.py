"""A company on QuickBooks Time: the REST client plus the QuickBooks Time mapping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from protiv_dagster.mapping import quickbooks_time as qbt_mapping
from protiv_dagster.registry import Connection, ConnectionRegistryResource
from protiv_dagster.resources.quickbooks_time import QuickBooksTimeCredentials, QuickBooksTimeResource
from protiv_dagster.sources import Mapped


class QuickBooksTimeSource:
    provider = "quickbooks_time"
    live_feed = "timesheets"
    deleted_feed = "timesheets_deleted"
    feed_fields = {"timesheets": ("id", "last_modified"), "timesheets_deleted": ("id", "last_modified")}

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
        return Mapped(rows, set_aside, removed, fetched=len(feeds.get(self.live_feed, [])))
