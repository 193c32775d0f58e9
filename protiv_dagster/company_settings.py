"""A company's ProPay settings, validated with clear errors, and their history. Pure pydantic: the
engine imports it.

Units: ``worker_share`` and ``role_buckets`` are fractions (0.5 = 50 %), as they always were; every
setting whose name ends in ``_percent`` is a percentage (35 = 35 %). Money is in dollars.
Unknown keys are errors, everywhere (also inside ``exclusions``), so a typo never goes unnoticed.
The engine reads every number as the decimal it was written as (0.1 is one tenth, not the binary
float nearest to it): ``exact`` gives that value as a ``Fraction``.

Settings have history (rules §9): ``SettingsHistory`` is the company's versions, each in force from
its ``effective_from`` until the next one; a ProPay is computed with the version in force on the day
its work began, so a later change never rewrites a ProPay already under way.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ROLE_BUCKETS = ("crew", "crew_lead", "manager", "other", "company")
WORKER_ROLES = ("crew", "crew_lead", "manager", "other")  # the buckets paid to people
BUDGET_TYPES = ("hours", "amount", "contract_price", "rate", "task_hours", "task_amount")
DISTRIBUTION_METHODS = ("hours", "wage", "crew_lead_weighted", "equal", "manual")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

BudgetType = Literal["hours", "amount", "contract_price", "rate", "task_hours", "task_amount"]
DistributionMethod = Literal["hours", "wage", "crew_lead_weighted", "equal", "manual"]
WorkerRole = Literal["crew", "crew_lead", "manager", "other"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Dollars = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(gt=0, le=100)]


def exact(value: float | int | str | Decimal | Fraction) -> Fraction:
    """A number as the decimal it was written as: ``exact(0.1) == Fraction(1, 10)``, ``exact(18.5) ==
    Fraction(37, 2)``. Floats go through their shortest repr (what a JSON file or a NUMERIC column held)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, (Fraction, int, Decimal)):
        return Fraction(value)
    return Fraction(repr(float(value)) if isinstance(value, float) else str(value))


class SettingsError(ValueError):
    """Settings (or a connection) cannot be used; the message says what to fix."""


class ExclusionRules(BaseModel):
    """Jobs and milestones that get no ProPay even with a budget. They still appear in the ProPay
    output, without a bonus, with the reason (analysts ask "why no ProPay?")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_types: tuple[str, ...] = Field(
        default=(), description="Service types (case-insensitive) that never get a ProPay, e.g. Warranty."
    )
    name_patterns: tuple[str, ...] = Field(
        default=(),
        description="Job or milestone names, wildcards allowed, case-insensitive: TEST* excludes 'Test fence'.",
    )
    job_ids: tuple[str, ...] = Field(
        default=(), description="Job or milestone ids excluded, with all their milestones."
    )
    property_ids: tuple[str, ...] = Field(default=(), description="Properties (client sites) whose jobs are excluded.")
    manual: dict[str, str] = Field(
        default_factory=dict, description="One-off exclusions: ProPay id -> the reason given."
    )

    @field_validator("name_patterns", "service_types")
    @classmethod
    def _no_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item.strip() for item in value):
            raise ValueError("must not contain a blank entry")
        return value


class CompanySettings(BaseModel):
    """How a company runs ProPay; validated on write and on read, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = Field(default=None, description="IANA time zone of the company's work dates.")

    # From savings to people
    worker_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of saved labor $ paid to workers (split job savings); the company keeps the rest.",
    )
    role_buckets: dict[str, float] = Field(
        default_factory=lambda: {"crew": 1.0},
        description="Share of the bonus pool per bucket (crew, crew_lead, manager, other, company); sums to 1. Everyone "
        "with time shares the crew bucket; the crew_lead and manager buckets go to the ProPay's lead(s) and manager(s), "
        "other to workers with that role; a bucket nobody holds goes into the crew bucket; the company bucket is kept.",
    )
    distribution_method: DistributionMethod = Field(
        default="hours",
        description="How the crew bucket is shared among everyone with time on the ProPay: hours (per second worked), "
        "wage (seconds x the wage in force), crew_lead_weighted (the crew lead's time counts lead_multiplier times), "
        "equal, manual (manual_distribution). Largest remainder to the cent, ties to the smaller worker id.",
    )
    lead_multiplier: float = Field(
        default=1.5, gt=0, le=10, description="Weight of a crew lead's hour under crew_lead_weighted."
    )
    worker_roles: dict[str, WorkerRole] = Field(
        default_factory=dict,
        description="Worker id -> role (crew, crew_lead, manager, other); unlisted workers are crew. A role holds its "
        "bucket on ProPays the worker has time on, unless the source assigns the job's lead or manager itself.",
    )
    manual_distribution: dict[str, Percent] = Field(
        default_factory=dict,
        description="Worker id -> fixed percentage of the crew bucket under the manual method; rescaled over the workers "
        "with time on the ProPay. A worker without a percentage gets no crew share.",
    )
    penalties: dict[str, Dollars] = Field(
        default_factory=dict,
        description="ProPay id -> $ deducted from its bonus pool before distribution (never below 0).",
    )
    disqualifications: dict[str, str] = Field(
        default_factory=dict, description="ProPay id -> reason: the ProPay pays no bonus at all."
    )

    # Which work counts
    launch_date: date | None = Field(default=None, description="Time before this day never counts towards a ProPay.")
    exclusions: ExclusionRules = Field(default_factory=ExclusionRules, description="Jobs that get no ProPay.")
    include_drive_time: bool = Field(default=False, description="Count drive time in ProPay actuals.")
    count_jobs_before_pull_date: bool = Field(
        default=False,
        description="Count jobs and milestones the source created before the attendance pull date (their earlier "
        "work was never synced). Off: they get no ProPay, with the reason; on: they are counted and flagged.",
    )
    drive_job_patterns: tuple[str, ...] = Field(
        default=("Drive Time", "Drive"), description="Job names (wildcards allowed) whose time is drive time."
    )
    busybusy_milestone_depth: int = Field(
        default=2,
        ge=2,
        le=7,
        description="BusyBusy only: the sub-project depth that is a milestone (projects nest 7 levels; depth 1 is the "
        "job). Time on a deeper sub-project counts to its ancestor at this depth; time on a shallower one to the job.",
    )

    # Budgets and labor cost
    default_budget_type: BudgetType = Field(
        default="hours",
        description="Budget type of a job whose source does not say (hours, amount, contract_price, rate, task_hours, task_amount).",
    )
    labor_budget_percent: Percent | None = Field(
        default=None,
        description="Labor share of the contract price, %, for contract_price jobs that do not state their own.",
    )
    budget_modification_percent: float = Field(
        default=100.0, ge=1, le=200, description="Every budget is scaled by this percentage (100 = as stated)."
    )
    budgets_include_burden: bool = Field(
        default=False, description="Budgets are stated with burden: labor cost uses wage x (1 + burden_percent)."
    )
    burden_percent: float = Field(
        default=0.0, ge=0, le=200, description="Payroll burden on wages, %, used when budgets include burden."
    )

    # Overtime (FLSA regular rate)
    overtime_weekly_hours: float = Field(
        default=40.0, gt=0, le=168, description="Hours worked in a workweek beyond which hours are overtime."
    )
    overtime_daily_hours: float | None = Field(
        default=None, gt=0, le=24, description="Optional daily threshold (e.g. 8 in California); off when null."
    )
    workweek_start: Weekday = Field(default="monday", description="First day of the workweek used for overtime.")

    # Budget source in QuickBooks Time (custom fields on jobcodes)
    budget_hours_field: str = Field(
        default="Budget Hours", description="QuickBooks Time custom field with budget hours."
    )
    job_status_field: str = Field(default="Job Status", description="QuickBooks Time custom field with the job status.")
    recurring_field: str = Field(
        default="Recurring", description="QuickBooks Time custom field marking recurring jobs."
    )
    budget_type_field: str = Field(
        default="Budget Type", description="QuickBooks Time custom field naming the budget type of a job."
    )
    budget_amount_field: str = Field(
        default="Budget Amount", description="QuickBooks Time custom field with the labor budget in $."
    )
    contract_price_field: str = Field(
        default="Contract Price", description="QuickBooks Time custom field with the contract price in $."
    )
    labor_budget_percent_field: str = Field(
        default="Labor Budget %", description="QuickBooks Time custom field with the labor % of the contract price."
    )
    rate_field: str = Field(default="Rate", description="QuickBooks Time custom field with the $ rate per unit.")
    quantity_field: str = Field(
        default="Quantity", description="QuickBooks Time custom field with the quantity of units."
    )
    service_type_field: str = Field(
        default="Service Type", description="QuickBooks Time custom field with the service type (for exclusions)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("overtime_weekly_hours", "overtime_daily_hours")
    @classmethod
    def _whole_seconds(cls, value: float | None) -> float | None:
        # Hours are counted in whole seconds; a threshold between two seconds would need a rule of its own.
        if value is not None and (exact(value) * 3600).denominator != 1:
            raise ValueError(f"must be a whole number of seconds ({value:g} h x 3600 is not)")
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

    def role_of(self, worker_id: str) -> str:
        """A worker's role: from ``worker_roles``, crew when not listed."""
        return self.worker_roles.get(worker_id, "crew")

    @model_validator(mode="after")
    def _company_bucket_is_not_the_only_one(self) -> CompanySettings:
        if self.role_buckets.get("company", 0) == 1.0:
            raise ValueError("role buckets give the whole pool back to the company: nobody would earn a bonus")
        return self

    @model_validator(mode="after")
    def _manual_method_has_percentages(self) -> CompanySettings:
        if self.distribution_method == "manual" and not self.manual_distribution:
            raise ValueError("distribution_method 'manual' needs manual_distribution (worker id -> percentage)")
        return self

    @model_validator(mode="after")
    def _disqualifications_have_reasons(self) -> CompanySettings:
        blank = [pid for pid, reason in self.disqualifications.items() if not reason.strip()]
        if blank:
            raise ValueError(f"disqualifications need a reason: {sorted(blank)}")
        return self


def parse_settings(raw: Mapping[str, object] | None, *, company_id: str = "") -> CompanySettings:
    try:
        return CompanySettings.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise SettingsError(f"invalid settings for company {company_id!r}: {problems}") from None


class SettingsVersion(BaseModel):
    """One version of a company's settings: ``settings`` in force from ``effective_from`` (None: from
    the start) until the next version's date. ``version`` is the number ProPays name
    (``propay_opportunities.settings_version``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1, description="Version number, 1 for the company's first settings.")
    effective_from: date | None = Field(
        default=None, description="First day the version applies to; None: from the start."
    )
    settings: CompanySettings = Field(default_factory=CompanySettings, description="The settings of this version.")


class SettingsHistory(BaseModel):
    """A company's settings versions, oldest first. Version numbers are positive and increase;
    ``effective_from`` strictly increases (only the first may be None). The first version applies to
    any date before the second one's, however early: a day always has exactly one version in force.

    The registry numbers every version it records and lets a same-day correction supersede a
    version, so the versions in force may skip numbers (1, 3); they keep their numbers here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    versions: tuple[SettingsVersion, ...] = Field(min_length=1, description="The versions, oldest first.")

    @model_validator(mode="after")
    def _ordered(self) -> SettingsHistory:
        numbers = [v.version for v in self.versions]
        if any(b <= a for a, b in zip(numbers, numbers[1:])):
            raise ValueError(f"version numbers must increase, oldest first: {numbers}")
        later = [v.effective_from for v in self.versions[1:]]
        if any(day is None for day in later):
            raise ValueError("only the first version may apply from the start (effective_from None)")
        days = [d for d in (self.versions[0].effective_from, *later) if d is not None]
        if any(b <= a for a, b in zip(days, days[1:])):
            raise ValueError(f"effective_from must strictly increase: {[d.isoformat() for d in days]}")
        return self

    @classmethod
    def single(cls, settings: CompanySettings) -> SettingsHistory:
        """Settings without history: version 1, in force on every date."""
        return cls(versions=(SettingsVersion(version=1, settings=settings),))

    @classmethod
    def of(cls, settings: CompanySettings | SettingsHistory | Iterable[object]) -> SettingsHistory:
        """A history from plain settings (one version 1), a history, or versions in any form with
        ``version``, ``effective_from`` and ``settings`` attributes (the registry's stored versions)."""
        if isinstance(settings, SettingsHistory):
            return settings
        if isinstance(settings, CompanySettings):
            return cls.single(settings)
        return cls(
            versions=tuple(
                v
                if isinstance(v, SettingsVersion)
                else SettingsVersion(version=v.version, effective_from=v.effective_from, settings=v.settings)  # type: ignore[attr-defined]
                for v in settings
            )
        )

    @property
    def latest(self) -> SettingsVersion:
        return self.versions[-1]

    def in_force(self, day: date | None) -> SettingsVersion:
        """The version in force on ``day``: the last one whose effective_from is on or before it (the
        first version before any of them); the latest version for None (no work yet)."""
        if day is None:
            return self.latest
        current = self.versions[0]
        for candidate in self.versions[1:]:
            if candidate.effective_from is not None and candidate.effective_from <= day:
                current = candidate
            else:
                break
        return current
