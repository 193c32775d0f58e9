"""Which jobs and milestones are ProPays, their budgets, and which of them are excluded (and why).

- A non-recurring job gets one ProPay; a recurring job one per milestone. A milestone with its own
  budget gets its own ProPay even in a non-recurring job; time on a milestone without a ProPay
  counts towards its job's ProPay. Drive jobs never get one.
- A job or milestone is a ProPay only with a valid budget for its budget type (the ``budget_type``
  column, else the company's ``default_budget_type``): ``hours`` needs budget_hours, ``amount``
  budget_amount, ``contract_price`` contract_price and a labor budget % (the job's, else the
  company's), ``rate`` rate and quantity, ``task_hours``/``task_amount`` at least one task line.
  Without one there is no ProPay and no output row (the jobs table already shows there is no budget).
- A ProPay that matches an exclusion rule is kept in the output, with no bonus and the reason. The
  first matching rule names the reason, in this order: manual exclusion, job id, property id,
  service type, name pattern; then (decided once time is known) all work before the launch date.
  A milestone inherits its job's service type and property when it has none of its own, and its
  job's exclusion by job id or name pattern.
"""

from __future__ import annotations

import fnmatch
import re

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import BUDGET_TYPES, CompanySettings
from protiv_dagster.propay.money import half_up_cents

AMOUNT_TYPES = ("amount", "contract_price", "rate", "task_amount")
HOURS_TYPES = ("hours", "task_hours")
OPTIONAL_JOB_COLUMNS = (
    "budget_type", "budget_amount", "contract_price", "labor_budget_percent", "rate", "quantity",
    "service_type", "property_id",
)


def _with_optional_columns(jobs: pd.DataFrame) -> pd.DataFrame:
    missing = {column: None for column in OPTIONAL_JOB_COLUMNS if column not in jobs.columns}
    return jobs.assign(**missing) if missing else jobs


def _task_totals(task_budgets: pd.DataFrame | None) -> pd.DataFrame:
    """Budget hours and $ per ProPay summed over its task lines (the netting rule makes the sum enough)."""
    if task_budgets is None or task_budgets.empty:
        return pd.DataFrame({"task_hours": pd.Series(dtype=float), "task_amount": pd.Series(dtype=float)})
    lines = task_budgets.assign(
        **{c: None for c in ("budget_hours", "budget_amount") if c not in task_budgets.columns}
    )
    return lines.groupby(lines["propay_id"].astype(str)).agg(
        task_hours=("budget_hours", lambda s: s.astype(float).sum(min_count=1)),
        task_amount=("budget_amount", lambda s: s.astype(float).sum(min_count=1)),
    )


def select_opportunities(
    jobs: pd.DataFrame, settings: CompanySettings | None = None, task_budgets: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ProPay units of a company, sorted by propay_id.

    Columns: propay_id, job_id, milestone_id, name, job_name, milestone_name, budget_type,
    budget_hours (as stated, hours types), budget_amount (as stated, $, amount types), source_status,
    service_type, property_id, exclusion_reason (rules known from the jobs alone; null = eligible).
    Budgets are not yet scaled by the company's budget modification.
    """
    settings = settings or CompanySettings()
    jobs = _with_optional_columns(jobs)
    work = jobs[~jobs["is_drive"].astype(bool)]
    top = work[work["level"] == "job"].set_index("job_id")
    milestones = work[(work["level"] == "milestone") & work["parent_job_id"].isin(top.index)]
    parent = milestones["parent_job_id"]

    def inherit(column: str) -> pd.Series:
        return milestones[column].where(milestones[column].notna(), parent.map(top[column]))

    candidates = pd.concat(
        [
            pd.DataFrame(
                {
                    "propay_id": milestones["job_id"].values,
                    "job_id": parent.values,
                    "milestone_id": milestones["job_id"].values,
                    "job_name": parent.map(top["name"]).values,
                    "milestone_name": milestones["name"].values,
                    "is_milestone": True,
                    "recurring": parent.map(top["recurring"]).astype(bool).values,
                    **{c: milestones[c].values for c in ("budget_type", "budget_hours", "budget_amount", "contract_price",
                                                           "labor_budget_percent", "rate", "quantity", "status")},
                    "service_type": inherit("service_type").values,
                    "property_id": inherit("property_id").values,
                }
            ),
            pd.DataFrame(
                {
                    "propay_id": top.index.values,
                    "job_id": top.index.values,
                    "milestone_id": None,
                    "job_name": top["name"].values,
                    "milestone_name": None,
                    "is_milestone": False,
                    "recurring": top["recurring"].astype(bool).values,
                    **{c: top[c].values for c in ("budget_type", "budget_hours", "budget_amount", "contract_price",
                                                    "labor_budget_percent", "rate", "quantity", "status",
                                                    "service_type", "property_id")},
                }
            ),
        ],
        ignore_index=True,
    )
    candidates["propay_id"] = candidates["propay_id"].astype(str)
    budget_type = candidates["budget_type"].where(candidates["budget_type"].notna(), settings.default_budget_type)
    budget_type = budget_type.astype(str).str.strip().str.lower()
    tasks = _task_totals(task_budgets).reindex(candidates["propay_id"])
    number = lambda column: pd.to_numeric(candidates[column], errors="coerce").astype(float)  # noqa: E731
    percent = number("labor_budget_percent").fillna(
        settings.labor_budget_percent if settings.labor_budget_percent is not None else np.nan
    )
    budget_hours = np.select(
        [budget_type == "hours", budget_type == "task_hours"],
        [number("budget_hours"), tasks["task_hours"].to_numpy(dtype=float)],
        default=np.nan,
    )
    budget_amount = np.select(
        [budget_type == "amount", budget_type == "contract_price", budget_type == "rate", budget_type == "task_amount"],
        [number("budget_amount"), number("contract_price") * percent / 100, number("rate") * number("quantity"),
         tasks["task_amount"].to_numpy(dtype=float)],
        default=np.nan,
    )
    known_type = budget_type.isin(BUDGET_TYPES)
    has_budget = ~np.isnan(budget_hours) | ~np.isnan(budget_amount)
    # Today's rule: a milestone needs its own budget; a job needs one and must not be recurring.
    is_unit = np.where(candidates["is_milestone"], has_budget, has_budget & ~candidates["recurring"])
    # An unknown budget type is a data problem worth showing, not a silent "no budget".
    is_unit = is_unit | (~known_type & candidates["budget_type"].notna() & (~candidates["recurring"] | candidates["is_milestone"]))
    units = candidates.assign(budget_type=budget_type, budget_hours=budget_hours, budget_amount=budget_amount)[is_unit]
    units = units.assign(
        name=np.where(units["is_milestone"], units["job_name"] + " / " + units["milestone_name"].fillna(""), units["job_name"]),
        source_status=units["status"],
    )
    units = units.assign(exclusion_reason=_exclusion_reasons(units, settings))
    columns = ["propay_id", "job_id", "milestone_id", "name", "job_name", "milestone_name", "budget_type",
               "budget_hours", "budget_amount", "source_status", "service_type", "property_id", "exclusion_reason"]
    return units[columns].sort_values("propay_id", ignore_index=True)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _exclusion_reasons(units: pd.DataFrame, settings: CompanySettings) -> pd.Series:
    """The first exclusion rule each unit matches, as text; null when none does."""
    rules = settings.exclusions
    reason = pd.Series(np.where(~units["budget_type"].isin(BUDGET_TYPES),
                                "unknown budget type " + units["budget_type"].map(repr), None),
                       index=units.index, dtype=object)
    # Lowest priority first: each later rule overwrites, so the highest-priority match wins.
    for pattern in reversed(rules.name_patterns):
        regex = _pattern_regex(pattern)
        hit = units["job_name"].fillna("").map(lambda n: bool(regex.match(n))) | units["milestone_name"].fillna("").map(
            lambda n: bool(regex.match(n))
        )
        reason = reason.mask(hit, f"name matches excluded pattern {pattern!r}")
    if rules.service_types:
        wanted = {s.strip().casefold() for s in rules.service_types}
        service = units["service_type"].map(lambda s: s.strip().casefold() if isinstance(s, str) else None)
        reason = reason.mask(service.isin(wanted), "service type " + units["service_type"].map(repr) + " is excluded")
    if rules.property_ids:
        hit = units["property_id"].astype("string").isin(rules.property_ids).fillna(False).astype(bool)
        reason = reason.mask(hit, "property " + units["property_id"].astype(str) + " is excluded")
    if rules.job_ids:
        job_hit = units["job_id"].astype(str).isin(rules.job_ids)
        milestone_hit = units["milestone_id"].astype("string").isin(rules.job_ids).fillna(False).astype(bool)
        reason = reason.mask(milestone_hit, "milestone " + units["milestone_id"].astype(str) + " is excluded")
        reason = reason.mask(job_hit, "job " + units["job_id"].astype(str) + " is excluded")
    if rules.manual:
        manual = units["propay_id"].map(rules.manual)
        reason = reason.mask(manual.notna(), "excluded manually: " + manual.fillna(""))
    return reason


def scaled_budgets(units: pd.DataFrame, settings: CompanySettings) -> tuple[np.ndarray, np.ndarray]:
    """Budget hours (float, NaN for amount types) and budget cents (int64, -1 for hours types), scaled
    by the company's budget modification percentage."""
    factor = settings.budget_modification_percent / 100
    hours = units["budget_hours"].to_numpy(dtype=float) * factor
    dollars = units["budget_amount"].to_numpy(dtype=float) * factor
    cents = np.where(np.isnan(dollars), -1, half_up_cents(np.nan_to_num(dollars)))
    return hours, cents


def assign_attendance(attendance: pd.DataFrame, opportunities: pd.DataFrame) -> pd.Series:
    """The propay_id each attendance row counts towards (NA when none): its milestone's ProPay, else its job's."""
    by_milestone = opportunities.dropna(subset=["milestone_id"]).set_index("milestone_id")["propay_id"]
    by_job = opportunities[opportunities["milestone_id"].isna()].set_index("job_id")["propay_id"]
    via_milestone = attendance["milestone_id"].map(by_milestone)
    return via_milestone.where(via_milestone.notna(), attendance["job_id"].map(by_job))
