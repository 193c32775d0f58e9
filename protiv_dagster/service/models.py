"""The JSON the integrations service reads and answers: its OpenAPI schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from protiv_dagster.integrations.service import UTC_ONLY_VENDORS, Integration, IntegrationStatus, SyncSummary


class Problem(BaseModel):
    field: str | None = Field(description="The request field at fault (dotted: credentials.password), if one is.")
    message: str


class Problems(BaseModel):
    """Every 4xx answer: what is wrong, field by field."""

    detail: list[Problem]


class CredentialField(BaseModel):
    name: str
    description: str
    secret: bool = Field(description="Typed without echo; never shown back.")
    required: bool


class IntegrationOut(BaseModel):
    provider: str = Field(description="The id to connect with, e.g. busybusy.")
    label: str = Field(description="The vendor's name as people write it.")
    connects_with: str = Field(description="credentials (the fields below) or oauth (the authorize redirect).")
    fields: list[CredentialField]
    timezone_required: bool = Field(
        default=False,
        description="The vendor's times are UTC only: connect with settings.timezone (e.g. America/Denver).",
    )
    attendance_pull_date: str = Field(
        default="Date attendance is pulled from, YYYY-MM-DD, not in the future; 14 days ago when not given "
        "(two weeks recommended).",
    )

    @classmethod
    def of(cls, integration: Integration) -> IntegrationOut:
        return cls(
            provider=integration.provider,
            label=integration.label,
            connects_with=integration.connects_with,
            fields=[CredentialField(**f) for f in integration.fields],
            timezone_required=integration.provider in UTC_ONLY_VENDORS,
        )


class SyncOut(BaseModel):
    sync_id: str
    company_id: str
    status: str = Field(description="queued, running, succeeded or failed.")
    trigger: str
    requested_at: datetime
    started_by: str = Field(description="Who asked for it (the token's subject), or automation.")
    finished_at: datetime | None = None
    error: str | None = None
    run_ids: list[str] = Field(default_factory=list, description="Its Dagster runs.")

    @classmethod
    def of(cls, sync: SyncSummary) -> SyncOut:
        return cls(**sync.__dict__)


class StatusOut(BaseModel):
    company_id: str
    provider: str | None
    provider_label: str | None
    status: str = Field(
        description="pending (connected, initial sync under way), connected (green: last sync succeeded, data "
        "current), failed (red: see reason and action), disconnected."
    )
    reason: str
    action: str | None = Field(default=None, description="For a failed one: reconnect, vendor_down or force_sync.")
    action_message: str | None = None
    attendance_pull_date: date | None = None
    connected_at: datetime | None = None
    last_sync_at: datetime | None = None
    current_as_of: datetime | None = None
    next_refresh_at: datetime | None = None
    syncs: list[SyncOut] = Field(default_factory=list, description="Recent syncs, newest first.")
    propays_as_of: datetime | None = Field(
        default=None,
        description="When the company's ProPays (GET .../propays) were last written: read them again when it "
        "moves. Given for one company's integration, not in the list of companies.",
    )
    propays_updating: bool = Field(
        default=False,
        description="The last sync succeeded and its ProPays are still being computed: ask again shortly.",
    )

    @classmethod
    def of(cls, status: IntegrationStatus) -> StatusOut:
        values = dict(status.__dict__)
        values["syncs"] = [SyncOut.of(sync) for sync in status.syncs]
        return cls(**values)


class ConnectIn(BaseModel):
    """A company's integration, with the credentials the vendor asks for (see GET /integrations)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    provider: str = Field(description="busybusy, aspire (quickbooks_time: use the authorize redirect).")
    credentials: dict[str, str] = Field(default_factory=dict, description="The vendor's fields by name.")
    attendance_pull_date: date | None = Field(default=None, description="YYYY-MM-DD, not in the future.")
    base_url: str | None = Field(default=None, description="The vendor API's base URL; the configured one if left out.")
    settings: dict[str, Any] | None = Field(
        default=None, description="The company's ProPay settings (docs/settings.md)."
    )


class PullDateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attendance_pull_date: date = Field(description="YYYY-MM-DD, not in the future.")


class ForceSyncOut(BaseModel):
    sync: SyncOut
    already_running: bool = Field(description="True when this is a sync that was already under way.")
    status_url: str


class PullDateOut(BaseModel):
    status: StatusOut
    sync: SyncOut | None = Field(default=None, description="The sync of the weeks an earlier date adds.")
    sync_retry_after_seconds: int | None = Field(
        default=None, description="When the date moved earlier but a force sync ran within the minute: force sync then."
    )


class DisconnectedOut(BaseModel):
    company_id: str
    status: str = "disconnected"
    data_kept: bool = True


class VendorDownOut(Problems):
    """The vendor could not be asked: the failed status, nothing stored."""

    status: StatusOut


class ProPayOut(BaseModel):
    """One of the company's ProPays, as the integration page lists it."""

    propay_id: str
    name: str
    status: str = Field(description="pending, started, completed or canceled, from the vendor.")
    budget_hours: float | None = Field(description="Worker-hours budgeted; null while a $ budget has no time.")
    actual_hours: float
    bonus_pool: float | None = Field(description="The bonus pool in $.")
    pay_state: str = Field(description="final, provisional or none.")
