"""A company's ProPay settings, validated with clear errors. Pure pydantic: the engine imports it."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROLE_BUCKETS = ("crew", "crew_lead", "manager", "other", "company")


class SettingsError(ValueError):
    """Settings (or a connection) cannot be used; the message says what to fix."""


class CompanySettings(BaseModel):
    """How a company runs ProPay; validated on write and on read, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = Field(default=None, description="IANA time zone of the company's work dates.")
    worker_share: float = Field(default=0.5, ge=0, le=1, description="Share of saved labor $ paid to workers.")
    role_buckets: dict[str, float] = Field(
        default_factory=lambda: {"crew": 1.0}, description="Share of the bonus pool per role; sums to 1."
    )
    include_drive_time: bool = Field(default=False, description="Count drive time in ProPay actuals.")
    drive_job_patterns: tuple[str, ...] = Field(
        default=("Drive Time", "Drive"), description="Job names (wildcards allowed) whose time is drive time."
    )
    budget_hours_field: str = Field(default="Budget Hours", description="QuickBooks Time custom field with budget hours.")
    job_status_field: str = Field(default="Job Status", description="QuickBooks Time custom field with the job status.")
    recurring_field: str = Field(default="Recurring", description="QuickBooks Time custom field marking recurring jobs.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("role_buckets")
    @classmethod
    def _buckets_sum_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(ROLE_BUCKETS)
        if unknown:
            raise ValueError(f"unknown role buckets {sorted(unknown)}; known: {', '.join(ROLE_BUCKETS)}")
        if any(share < 0 for share in value.values()):
            raise ValueError("role bucket shares must not be negative")
        if abs(sum(value.values()) - 1.0) > 1e-9:
            raise ValueError(f"role buckets must sum to 100 %, they sum to {sum(value.values()) * 100:g} %")
        return value

    def is_drive_job(self, name: str) -> bool:
        lowered = name.casefold()
        return any(fnmatch.fnmatchcase(lowered, pattern.casefold()) for pattern in self.drive_job_patterns)

    @model_validator(mode="after")
    def _company_bucket_is_not_the_only_one(self) -> CompanySettings:
        if self.role_buckets.get("company", 0) == 1.0:
            raise ValueError("role buckets give the whole pool back to the company: nobody would earn a bonus")
        return self


def parse_settings(raw: Mapping[str, object] | None, *, company_id: str = "") -> CompanySettings:
    try:
        return CompanySettings.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise SettingsError(f"invalid settings for company {company_id!r}: {problems}") from None


