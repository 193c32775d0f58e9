"""Which jobs and milestones are ProPays, their budgets, and which of them are excluded (and why).

Structure (from the jobs table alone, the same under every settings version; rules §1 and §9):

- A **non-recurring job** is exactly one ProPay, for the job. Its milestones belong to it: time on
  them counts to it, and when the job has no budget of its own their budgets add up (they must then
  be of one budget type, else there is no ProPay and the reason says so). A milestone's budget is
  ignored when its job has one.
- A **recurring job** gets one ProPay per milestone (time on the job itself, outside any milestone,
  counts nowhere). **Decision:** a recurring job whose only work unit is one milestone gets one
  ProPay for that milestone; it takes the job's budget when the milestone has none, and time on the
  job itself counts to it too. A recurring job without milestones has no ProPay.
- **Drive jobs** (and drive milestones, and the milestones of drive jobs) never get one.
- A milestone whose job is not in the jobs table gets none; time on an unknown milestone of a
  non-recurring job counts to the job's ProPay.

Budgets (under the settings version the ProPay is computed with): the budget type is the
job's or milestone's ``budget_type``, else (a milestone) its job's, else the company's
``default_budget_type``. A valid budget: ``hours`` budget_hours; ``amount`` budget_amount;
``contract_price`` contract_price x labor budget % / 100 (the row's %, else its job's, else the
company's); ``rate`` rate x quantity; ``task_hours``/``task_amount`` the sum of the budget hours / $
of the task lines of that job or milestone (at least one line with a budget). Every number is read
as the decimal it was written as. A job or milestone whose type is none of these has no ProPay
("unknown budget type").

Exclusions (the ProPay is kept in the output with the reason and pays nothing): the first rule that
matches, in this order: manual exclusion (by ProPay id), job id (the job, then any milestone of the
ProPay), property, service type, name pattern. A ProPay's job and milestones are all looked at: a
milestone inherits its job's service type and property when it has none, and a name pattern
matches the job's name or the milestone's. Launch date, pull date and missing wages are decided
once time is known (``engine``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import BUDGET_TYPES, CompanySettings, exact
from protiv_dagster.propay.exact import fractions_of

AMOUNT_TYPES = ("amount", "contract_price", "rate", "task_amount")
HOURS_TYPES = ("hours", "task_hours")
OPTIONAL_JOB_COLUMNS = (
    "budget_type",
    "budget_amount",
    "contract_price",
    "labor_budget_percent",
    "rate",
    "quantity",
    "service_type",
    "property_id",
    "created_date",
    "budget_hours",
)
NOT_COUNTED = -2  # a known job or milestone whose time counts to no ProPay
TASK_LINE_COLUMNS = ("job_id", "task_id", "name", "budget_hours", "budget_amount")


def _with_optional_columns(jobs: pd.DataFrame) -> pd.DataFrame:
    missing = {column: None for column in OPTIONAL_JOB_COLUMNS if column not in jobs.columns}
    return jobs.assign(**missing) if missing else jobs


def _text(values: pd.Series) -> pd.Series:
    """Ids as text, missing kept missing."""
    return values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))


@dataclass(frozen=True)
class Candidates:
    """The would-be ProPays of a company, before budgets and settings.

    ``table``: one row per candidate (its code is the row position), sorted by propay_id: propay_id,
    job_id, milestone_id (None for a whole job), name, job_name, milestone_name, recurring,
    source_status. ``members``: the jobs-table rows whose time counts to each candidate (``candidate``
    code, ``member_id``, ``is_unit`` for the row the ProPay is for, the row's budget columns and
    inherited service type, property and names). ``milestone_target`` / ``job_target``: the
    candidate code of a milestone id / job id (``NOT_COUNTED`` for a known row whose time counts to
    none). ``recurring_parent``: per candidate, the recurring job of a per-milestone ProPay (its
    assignments stand in when the milestone has none). ``unplaced``: jobs and milestones in no
    candidate, with the reason (job_id, milestone_id, name, reason).
    """

    table: pd.DataFrame
    members: pd.DataFrame
    milestone_target: pd.Series
    job_target: pd.Series
    recurring_parent: np.ndarray
    unplaced: pd.DataFrame


def build_candidates(jobs: pd.DataFrame) -> Candidates:
    jobs = _with_optional_columns(jobs).reset_index(drop=True)
    jobs = jobs.assign(job_id=_text(jobs["job_id"]), parent_job_id=_text(jobs["parent_job_id"]))
    is_drive = jobs["is_drive"].fillna(False).astype(bool)
    is_milestone = (jobs["level"] == "milestone") | jobs["parent_job_id"].notna()
    top = jobs[~is_milestone].drop_duplicates("job_id").set_index("job_id", drop=False)
    milestones = jobs[is_milestone].drop_duplicates("job_id")
    recurring = top["recurring"].fillna(False).astype(bool)
    top_drive = top["is_drive"].fillna(False).astype(bool)

    parent = milestones["parent_job_id"]
    known_parent = parent.isin(top.index)
    parent_drive = parent.map(top_drive).fillna(False).astype(bool)
    milestone_drive = is_drive[milestones.index] | parent_drive
    live_milestones = milestones[known_parent & ~milestone_drive]
    live_count = live_milestones.groupby("parent_job_id").size()

    unplaced = []

    def note(rows: pd.DataFrame, job_ids, milestone_ids, reason) -> None:
        unplaced.append(
            pd.DataFrame(
                {
                    "job_id": job_ids,
                    "milestone_id": milestone_ids,
                    "name": rows["name"].to_numpy(dtype=object),
                    "reason": reason,
                }
            )
        )

    drive_jobs = top[top_drive]
    note(drive_jobs, drive_jobs["job_id"].to_numpy(), None, "drive job")
    orphans = milestones[~known_parent]
    note(
        orphans,
        orphans["parent_job_id"].to_numpy(),
        orphans["job_id"].to_numpy(),
        "its job " + orphans["parent_job_id"].fillna("(none)").astype(str) + " is not in the jobs table",
    )
    drive_milestones = milestones[known_parent & milestone_drive]
    note(
        drive_milestones,
        drive_milestones["parent_job_id"].to_numpy(),
        drive_milestones["job_id"].to_numpy(),
        np.where(parent_drive[drive_milestones.index], "milestone of a drive job", "drive job"),
    )

    work_jobs = top[~top_drive]
    plain = work_jobs[~recurring[work_jobs.index]]
    rec = work_jobs[recurring[work_jobs.index]]
    count = live_count.reindex(rec.index).fillna(0).astype(int)
    single = rec[count == 1]
    multi = rec[count >= 2]
    empty = rec[count == 0]
    note(multi, multi["job_id"].to_numpy(), None, "recurring job: each of its milestones is its own ProPay")
    note(
        empty,
        empty["job_id"].to_numpy(),
        None,
        "recurring job without milestones: a recurring job gets one ProPay per milestone",
    )

    milestone_of_single = live_milestones[live_milestones["parent_job_id"].isin(single.index)]
    milestone_of_multi = live_milestones[live_milestones["parent_job_id"].isin(multi.index)]
    milestone_of_plain = live_milestones[live_milestones["parent_job_id"].isin(plain.index)]
    unit_milestones = pd.concat([milestone_of_single, milestone_of_multi])

    plain_units = pd.DataFrame(
        {
            "propay_id": plain["job_id"].to_numpy(dtype=object),
            "job_id": plain["job_id"].to_numpy(dtype=object),
            "milestone_id": None,
            "job_name": plain["name"].to_numpy(dtype=object),
            "milestone_name": None,
            "recurring": False,
            "source_status": plain["status"].to_numpy(dtype=object),
            "recurring_parent": None,
        }
    )
    milestone_units = pd.DataFrame(
        {
            "propay_id": unit_milestones["job_id"].to_numpy(dtype=object),
            "job_id": unit_milestones["parent_job_id"].to_numpy(dtype=object),
            "milestone_id": unit_milestones["job_id"].to_numpy(dtype=object),
            "job_name": unit_milestones["parent_job_id"].map(top["name"]).to_numpy(dtype=object),
            "milestone_name": unit_milestones["name"].to_numpy(dtype=object),
            "recurring": True,
            "source_status": unit_milestones["status"].to_numpy(dtype=object),
            "recurring_parent": np.where(  # type: ignore[call-overload]  # numpy's stubs reject None
                unit_milestones["parent_job_id"].isin(multi.index), unit_milestones["parent_job_id"], None
            ),
        }
    )
    table = pd.concat([plain_units, milestone_units], ignore_index=True)
    table = table.sort_values("propay_id", ignore_index=True, kind="stable")
    table["name"] = np.where(
        table["milestone_id"].isna(),
        table["job_name"].astype(object),
        table["job_name"].fillna("").astype(str) + " / " + table["milestone_name"].fillna("").astype(str),
    )
    code = pd.Series(np.arange(len(table)), index=pd.Index(table["propay_id"]))

    def member_rows(rows: pd.DataFrame, candidate_ids, is_unit: bool, parent_ids) -> pd.DataFrame:
        parents = pd.Series(parent_ids, index=rows.index, dtype=object)

        def inherit(column: str) -> pd.Series:
            return rows[column].where(rows[column].notna(), parents.map(top[column]))

        return pd.DataFrame(
            {
                "candidate": code.reindex(candidate_ids).to_numpy(dtype=np.int64),
                "member_id": rows["job_id"].to_numpy(dtype=object),
                "is_milestone": parents.notna().to_numpy(),
                "is_unit": is_unit,
                "name": rows["name"].to_numpy(dtype=object),
                "job_name": np.where(parents.notna(), parents.map(top["name"]), rows["name"]).astype(object),
                "parent_budget_type": parents.map(top["budget_type"]).to_numpy(dtype=object),
                "parent_labor_budget_percent": parents.map(top["labor_budget_percent"]).to_numpy(dtype=object),
                "service_type": inherit("service_type").to_numpy(dtype=object),
                "property_id": inherit("property_id").to_numpy(dtype=object),
                **{
                    c: rows[c].to_numpy(dtype=object)
                    for c in (
                        "budget_type",
                        "budget_hours",
                        "budget_amount",
                        "contract_price",
                        "labor_budget_percent",
                        "rate",
                        "quantity",
                        "created_date",
                    )
                },
            }
        )

    no_parent = lambda rows: [None] * len(rows)  # noqa: E731
    members = pd.concat(
        [
            member_rows(plain, plain["job_id"], True, no_parent(plain)),
            member_rows(
                milestone_of_plain, milestone_of_plain["parent_job_id"], False, milestone_of_plain["parent_job_id"]
            ),
            member_rows(unit_milestones, unit_milestones["job_id"], True, unit_milestones["parent_job_id"]),
            member_rows(
                single,
                single["job_id"].map(milestone_of_single.set_index("parent_job_id")["job_id"]),
                False,
                no_parent(single),
            ),
        ],
        ignore_index=True,
    ).sort_values(["candidate", "is_unit", "member_id"], ascending=[True, False, True], ignore_index=True)

    milestone_target = pd.concat(
        [
            pd.Series(NOT_COUNTED, index=pd.Index(milestones["job_id"], dtype=object)),
            members[members["is_milestone"]].set_index("member_id")["candidate"],
        ]
    )
    milestone_target = milestone_target[~milestone_target.index.duplicated(keep="last")].astype(np.int64)
    job_target = pd.concat(
        [
            pd.Series(NOT_COUNTED, index=pd.Index(top["job_id"], dtype=object)),
            members[~members["is_milestone"]].set_index("member_id")["candidate"],
        ]
    )
    job_target = job_target[~job_target.index.duplicated(keep="last")].astype(np.int64)
    unplaced_frame = (
        pd.concat(unplaced, ignore_index=True)
        if unplaced
        else pd.DataFrame(columns=["job_id", "milestone_id", "name", "reason"])
    )
    return Candidates(
        table=table.drop(columns=["recurring_parent"]),
        members=members,
        milestone_target=milestone_target,
        job_target=job_target,
        recurring_parent=table["recurring_parent"].to_numpy(dtype=object),
        unplaced=unplaced_frame,
    )


# --- Budgets ------------------------------------------------------------------------------------


def _task_sums(task_lines: pd.DataFrame | None, column: str) -> pd.Series:
    """Per job or milestone id, the exact sum of its task lines' budgets in ``column`` (only ids with
    at least one line that states one)."""
    if task_lines is None or task_lines.empty or column not in task_lines.columns:
        return pd.Series(dtype=object)
    values = fractions_of(task_lines[column])
    known = pd.notna(pd.Series(values, dtype=object))
    ids = _text(task_lines["job_id"])[known.to_numpy()]
    sums: dict[str, Fraction] = {}
    for owner, value in zip(ids, values[known.to_numpy()]):
        sums[owner] = sums.get(owner, Fraction(0)) + value
    return pd.Series(sums, dtype=object)


def _row_budgets(members: pd.DataFrame, settings: CompanySettings, task_lines: pd.DataFrame | None):
    """Per member row: its budget type text, whether the type is known, and its valid budget
    (Fraction, None when it has none for its type)."""
    raw_type = members["budget_type"].where(members["budget_type"].notna(), members["parent_budget_type"])
    raw_type = raw_type.where(raw_type.notna(), settings.default_budget_type)
    budget_type = raw_type.astype(str).str.strip().str.lower()
    known = budget_type.isin(BUDGET_TYPES).to_numpy()
    t = budget_type.to_numpy(dtype=object)
    hours = fractions_of(members["budget_hours"])
    amount = fractions_of(members["budget_amount"])
    price = fractions_of(members["contract_price"])
    percent = fractions_of(members["labor_budget_percent"])
    parent_percent = fractions_of(members["parent_labor_budget_percent"])
    company_percent = exact(settings.labor_budget_percent) if settings.labor_budget_percent is not None else None
    rate = fractions_of(members["rate"])
    quantity = fractions_of(members["quantity"])
    task_hours = _task_sums(task_lines, "budget_hours").reindex(members["member_id"]).to_numpy(dtype=object)
    task_amount = _task_sums(task_lines, "budget_amount").reindex(members["member_id"]).to_numpy(dtype=object)
    budget = np.full(len(members), None, dtype=object)
    for kind, values in (
        ("hours", hours),
        ("amount", amount),
        ("task_hours", task_hours),
        ("task_amount", task_amount),
    ):
        mine = t == kind
        budget[mine] = [v if isinstance(v, Fraction) else None for v in values[mine]]
    mine = np.flatnonzero(t == "contract_price")
    budget[mine] = [
        price[i] * pct / 100 if price[i] is not None and pct is not None else None
        for i, pct in zip(
            mine,
            (
                percent[i]
                if percent[i] is not None
                else parent_percent[i]
                if parent_percent[i] is not None
                else company_percent
                for i in mine
            ),
        )
    ]
    mine = np.flatnonzero(t == "rate")
    budget[mine] = [rate[i] * quantity[i] if rate[i] is not None and quantity[i] is not None else None for i in mine]
    budget = np.array([b if b is None or b >= 0 else None for b in budget], dtype=object)
    return raw_type.to_numpy(dtype=object), t, known, budget


@dataclass(frozen=True)
class Budgets:
    """Per candidate: ``budget_type``, ``budget`` (Fraction in hours or $ as stated, before the
    company's budget modification; None when there is no ProPay) and ``reason`` (why there is no
    ProPay; None when there is one)."""

    budget_type: np.ndarray
    budget: np.ndarray
    reason: np.ndarray


def candidate_budgets(
    candidates: Candidates, settings: CompanySettings, task_lines: pd.DataFrame | None, subset: np.ndarray
) -> Budgets:
    """The budget of each candidate in ``subset`` (codes) under ``settings``."""
    n = len(candidates.table)
    out_type = np.full(n, None, dtype=object)
    out_budget = np.full(n, None, dtype=object)
    out_reason = np.full(n, None, dtype=object)
    members = candidates.members[np.isin(candidates.members["candidate"].to_numpy(), subset)]
    if members.empty:
        return Budgets(out_type, out_budget, out_reason)
    raw, kind, known, budget = _row_budgets(members, settings, task_lines)
    cand = members["candidate"].to_numpy()
    is_unit = members["is_unit"].to_numpy(dtype=bool)
    has = np.array([b is not None for b in budget], dtype=bool)

    unit = is_unit
    out_type[cand[unit]] = kind[unit]
    out_budget[cand[unit & known & has]] = budget[unit & known & has]
    unknown_unit = unit & ~known
    out_reason[cand[unknown_unit]] = ["unknown budget type " + repr(r) for r in raw[unknown_unit]]
    # Without a valid budget of its own: a whole job sums its milestones', a recurring job's only
    # milestone takes its job's; anything else has no budget.
    lacking = set(cand[unit & known & ~has].tolist())
    fallback = ~is_unit & np.isin(cand, list(lacking))
    by_candidate: dict[int, list[int]] = {}
    for i in np.flatnonzero(fallback).tolist():
        by_candidate.setdefault(int(cand[i]), []).append(i)
    for c in lacking:
        rows = by_candidate.get(c, [])
        unknown = [i for i in rows if not known[i]]
        budgeted = [i for i in rows if known[i] and has[i]]
        if unknown:
            out_reason[c] = "unknown budget type " + repr(raw[unknown[0]])
        elif not budgeted:
            out_reason[c] = f"no budget ({out_type[c]} budget type)"
        elif len({kind[i] for i in budgeted}) > 1:
            out_reason[c] = (
                "its milestones' budgets are of different types ("
                + ", ".join(sorted({kind[i] for i in budgeted}))
                + ")"
            )
        else:
            out_type[c] = kind[budgeted[0]]
            out_budget[c] = sum((budget[i] for i in budgeted), Fraction(0))
    return Budgets(out_type, out_budget, out_reason)


# --- Exclusion rules ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _matcher(regex: re.Pattern[str]) -> Callable[[str], bool]:
    """Whether a text matches ``regex`` at its start."""
    return lambda text: bool(regex.match(text))


def exclusion_reasons(candidates: Candidates, settings: CompanySettings, subset: np.ndarray) -> np.ndarray:
    """Per candidate in ``subset`` the first exclusion rule it matches, as text; None when none does."""
    n = len(candidates.table)
    reason = np.full(n, None, dtype=object)
    rules = settings.exclusions
    in_subset = np.zeros(n, dtype=bool)
    in_subset[np.asarray(subset, dtype=np.int64)] = True
    members = candidates.members[in_subset[candidates.members["candidate"].to_numpy()]]
    cand = members["candidate"].to_numpy()

    def mark(hit: np.ndarray, texts) -> None:
        # Lowest priority first: a later rule overwrites, so the highest-priority match wins; among
        # members the first (unit first, then by id) names the reason.
        texts = np.broadcast_to(np.asarray(texts, dtype=object), hit.shape)
        rows = np.flatnonzero(hit)
        _, first = np.unique(cand[rows], return_index=True)
        reason[cand[rows[first]]] = texts[rows[first]]

    for pattern in reversed(rules.name_patterns):
        matches = _matcher(_pattern_regex(pattern))
        hit = (
            members["name"].fillna("").astype(str).map(matches)
            | members["job_name"].fillna("").astype(str).map(matches)
        ).to_numpy(dtype=bool)
        mark(hit, f"name matches excluded pattern {pattern!r}")
    if rules.service_types:
        wanted = {s.strip().casefold() for s in rules.service_types}
        service = members["service_type"].map(lambda s: s.strip().casefold() if isinstance(s, str) else None)
        mark(
            service.isin(wanted).to_numpy(dtype=bool),
            ("service type " + members["service_type"].map(repr) + " is excluded").to_numpy(dtype=object),
        )
    if rules.property_ids:
        props = members["property_id"].map(
            lambda p: None if p is None or (isinstance(p, float) and np.isnan(p)) else str(p)
        )
        mark(
            props.isin(rules.property_ids).to_numpy(dtype=bool),
            ("property " + props.astype(str) + " is excluded").to_numpy(dtype=object),
        )
    if rules.job_ids:
        ids = set(rules.job_ids)
        milestone_hit = members["is_milestone"].to_numpy(dtype=bool) & members["member_id"].isin(ids).to_numpy()
        mark(milestone_hit, ("milestone " + members["member_id"].astype(str) + " is excluded").to_numpy(dtype=object))
        table = candidates.table
        job_hit = in_subset & table["job_id"].isin(ids).to_numpy()
        reason[job_hit] = ("job " + table["job_id"].astype(str) + " is excluded").to_numpy(dtype=object)[job_hit]
    if rules.manual:
        manual = candidates.table["propay_id"].map(rules.manual)
        hit = in_subset & manual.notna().to_numpy()
        reason[hit] = ("excluded manually: " + manual.fillna("")).to_numpy(dtype=object)[hit]
    return reason


# --- Compatibility ------------------------------------------------------------------------------------


def select_opportunities(
    jobs: pd.DataFrame, settings: CompanySettings | None = None, task_lines: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ProPays of a company under one settings version, sorted by propay_id (excluded ones
    included, with the reason known from the jobs alone).

    Columns: propay_id, job_id, milestone_id, name, job_name, milestone_name, budget_type,
    budget_hours (hours types), budget_amount ($ types) as stated (before the budget modification),
    source_status, exclusion_reason.
    """
    settings = settings or CompanySettings()
    candidates = build_candidates(jobs)
    everyone = np.arange(len(candidates.table))
    budgets = candidate_budgets(candidates, settings, task_lines, everyone)
    reasons = exclusion_reasons(candidates, settings, everyone)
    is_propay = budgets.reason == None  # noqa: E711
    is_propay &= np.array([b is not None for b in budgets.budget], dtype=bool)
    hours_type = np.isin(budgets.budget_type.astype(str), HOURS_TYPES)
    value = np.array([float(b) if b is not None else np.nan for b in budgets.budget])
    table = candidates.table.assign(
        budget_type=budgets.budget_type,
        budget_hours=np.where(hours_type, value, np.nan),
        budget_amount=np.where(~hours_type, value, np.nan),
        exclusion_reason=reasons,
    )[is_propay]
    columns = [
        "propay_id",
        "job_id",
        "milestone_id",
        "name",
        "job_name",
        "milestone_name",
        "budget_type",
        "budget_hours",
        "budget_amount",
        "source_status",
        "exclusion_reason",
    ]
    return table[columns].reset_index(drop=True)


def assign_attendance(attendance: pd.DataFrame, opportunities: pd.DataFrame) -> pd.Series:
    """The propay_id each attendance row counts towards (NA when none): its milestone's ProPay, else its job's."""
    by_milestone = opportunities.dropna(subset=["milestone_id"]).set_index("milestone_id")["propay_id"]
    by_job = opportunities[opportunities["milestone_id"].isna()].set_index("job_id")["propay_id"]
    via_milestone = attendance["milestone_id"].map(by_milestone)
    return via_milestone.where(via_milestone.notna(), attendance["job_id"].map(by_job))
