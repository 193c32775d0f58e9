"""The engine against the plain reference implementation (``reference.py``) on random companies, and
the invariants every paycheck must keep.

Each hypothesis example is a whole company (up to a dozen would-be ProPays of every shape and budget
type, wage histories, source assignments, up to two settings versions), so a run compares thousands
of ProPays. ``PROPAY_EXAMPLES`` raises the number of examples for a deeper run.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from fractions import Fraction

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protiv_dagster.company_settings import (
    ROLE_BUCKETS,
    WORKER_ROLES,
    CompanySettings,
    SettingsHistory,
    SettingsVersion,
    exact,
)
from protiv_dagster.propay import compute_propays
from tests.propay.reference import half_up, reference

EXAMPLES = int(os.environ.get("PROPAY_EXAMPLES", "50"))
WORKERS = [f"w{i}" for i in range(6)]
START = date(2026, 11, 2)
SHARES = [0.5, 0.33335, 1.0, 0.1, 0.0, 0.7, 0.123456]


@st.composite
def money(draw, low=0, high=500_000):
    return draw(st.integers(low, high)) / 100


@st.composite
def settings_of(draw, plain=False):
    """Settings; ``plain`` ones exclude nothing and disqualify nothing (so that many ProPays pay)."""
    rare = (lambda: False) if plain else (lambda: draw(st.integers(0, 3)) == 0)
    shares = draw(st.lists(st.integers(0, 10), min_size=5, max_size=5).filter(lambda s: sum(s[:4]) > 0))
    method = draw(st.sampled_from(["hours", "wage", "crew_lead_weighted", "equal", "manual"]))
    return CompanySettings(
        worker_share=draw(st.sampled_from(SHARES)),
        role_buckets={role: share / sum(shares) for role, share in zip(ROLE_BUCKETS, shares) if share},
        distribution_method=method,
        lead_multiplier=draw(st.sampled_from([1.5, 2.0, 1.25])),
        worker_roles={w: draw(st.sampled_from(WORKER_ROLES)) for w in WORKERS if draw(st.booleans())},
        manual_distribution={w: draw(st.integers(1, 100)) / draw(st.sampled_from([1, 3, 10])) for w in WORKERS[:4]},
        include_drive_time=draw(st.booleans()),
        penalties={"P0": draw(money(0, 5_000))} if draw(st.booleans()) else {},
        disqualifications={"P1": "safety"} if rare() else {},
        launch_date=START + timedelta(days=draw(st.integers(-6, 3))) if rare() else None,
        budget_modification_percent=draw(st.sampled_from([100.0, 100.0, 90.0, 33.33, 150.0, 1.0])),
        budgets_include_burden=draw(st.booleans()),
        burden_percent=draw(st.sampled_from([0.0, 18.0, 12.5, 33.3])),
        labor_budget_percent=draw(st.sampled_from([None, 35.0, 27.5])),
        default_budget_type=draw(st.sampled_from(["hours", "amount"])),
        overtime_daily_hours=draw(st.sampled_from([None, 8.0, 7.5])),
        overtime_weekly_hours=draw(st.sampled_from([40.0, 10.0, 20.25])),
        workweek_start=draw(st.sampled_from(["monday", "wednesday", "sunday"])),
        count_jobs_before_pull_date=draw(st.booleans()),
        exclusions={"name_patterns": ["TEST*"]} if rare() else {},
    )


def budget_fields(draw, kind):
    if kind == "hours":
        return {"budget_type": draw(st.sampled_from(["hours", None])), "budget_hours": draw(st.integers(0, 400)) / 4}
    if kind == "amount":
        return {"budget_type": "amount", "budget_amount": draw(money())}
    if kind == "contract_price":
        return {
            "budget_type": "contract_price",
            "contract_price": draw(money(0, 2_000_000)),
            "labor_budget_percent": draw(st.sampled_from([None, 30.0, 33.3])),
        }
    if kind == "rate":
        return {
            "budget_type": "rate",
            "rate": draw(st.sampled_from([2.5, 0.35, 1.0])),
            "quantity": float(draw(st.integers(0, 3000))),
        }
    if kind in ("task_hours", "task_amount"):
        return {"budget_type": kind}
    if kind == "none":
        return {}
    return {"budget_type": "per visit"}


KINDS = ["hours", "hours", "amount", "contract_price", "rate", "task_hours", "task_amount", "none", "unknown"]


@st.composite
def companies(draw):
    """A company; half of them ``plain`` (no launch or pull date, exclusions, disqualifications,
    canceled jobs or missing wages), so that many of their ProPays pay."""
    jobs, task_lines = [], []
    plain = draw(st.booleans())
    rare = (lambda: False) if plain else (lambda: draw(st.integers(0, 3)) == 0)
    statuses = ["open", "completed"] if plain else ["open", "open", "open", "completed", "completed", "canceled"]

    def row(job_id, parent=None, **extra):
        kind = draw(st.sampled_from(KINDS))
        fields = budget_fields(draw, kind)
        if kind in ("task_hours", "task_amount"):
            column = "budget_hours" if kind == "task_hours" else "budget_amount"
            for t in range(draw(st.integers(0, 3))):
                task_lines.append(
                    {
                        "job_id": job_id,
                        "task_id": f"t{t}",
                        "name": f"t{t}",
                        column: draw(st.one_of(st.none(), st.integers(0, 4000).map(lambda x: x / 4))),
                    }
                )
        created = START + timedelta(days=draw(st.integers(-5, 3))) if rare() else None
        return {
            "job_id": job_id,
            "parent_job_id": parent,
            "level": "milestone" if parent else "job",
            "name": draw(st.sampled_from(["Fence", "TEST pit", "Deck", "Mow"])) + f" {job_id}",
            "status": draw(st.sampled_from(statuses)),
            "recurring": False,
            "is_drive": False,
            "service_type": None,
            "property_id": None,
            "created_date": created,
            **fields,
            **extra,
        }

    for i in range(draw(st.integers(1, 5))):
        job_id = f"P{i}"
        recurring = draw(st.booleans())
        jobs.append(row(job_id, recurring=recurring, is_drive=draw(st.integers(0, 9)) == 0))
        for k in range(draw(st.integers(0, 3))):
            jobs.append(row(f"P{i}M{k}", parent=job_id, is_drive=draw(st.integers(0, 12)) == 0))
    jobs.append(row("OTHER"))
    targets = [(j["parent_job_id"] or j["job_id"], j["job_id"] if j["parent_job_id"] else None) for j in jobs]
    targets.append(("P0", "UNKNOWN-M"))
    entries = []
    for _ in range(draw(st.integers(0, 40))):
        job_id, milestone = draw(st.sampled_from(targets))
        seconds = draw(st.sampled_from([0, 30, 60, 240, 900, 3600, 5400, 7200, 36_000]))
        entries.append(
            {
                "worker_id": draw(st.sampled_from(WORKERS)),
                "job_id": job_id,
                "milestone_id": milestone,
                "hours": seconds / 3600,
                "work_date": START + timedelta(days=draw(st.integers(-4, 16))),
                "is_drive": draw(st.integers(0, 5)) == 0,
                "task_id": draw(st.sampled_from([None, "t0", "t1", "t9"])),
            }
        )
    wages = {
        w: (
            None
            if not plain and draw(st.integers(0, 20)) == 0
            else draw(st.integers(1500, 4500)) / draw(st.sampled_from([100, 100, 100, 1000]))
        )
        for w in WORKERS
    }
    history = [
        {
            "worker_id": draw(st.sampled_from(WORKERS)),
            "effective_date": START + timedelta(days=draw(st.integers(-2, 12))),
            "hourly_wage": draw(st.integers(1500, 4500)) / 100,
        }
        for _ in range(draw(st.integers(0, 4)))
    ]
    ids = [j["job_id"] for j in jobs]
    assignments = [
        {
            "job_id": draw(st.sampled_from(ids)),
            "worker_id": draw(st.sampled_from(WORKERS + ["boss"])),
            "role": draw(st.sampled_from(["crew_lead", "manager"])),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    first = draw(settings_of(plain))
    if draw(st.booleans()):
        history_of_settings = SettingsHistory(
            versions=(
                SettingsVersion(version=1, effective_from=None, settings=first),
                SettingsVersion(
                    version=3,
                    effective_from=START + timedelta(days=draw(st.integers(-2, 10))),
                    settings=draw(settings_of(plain)),
                ),
            )
        )
    else:
        history_of_settings = first
    pull_date = START + timedelta(days=draw(st.integers(-6, 2))) if rare() else None
    return {
        "jobs": jobs,
        "entries": entries,
        "wages": wages,
        "history": history,
        "assignments": assignments,
        "task_lines": task_lines,
        "settings": history_of_settings,
        "pull_date": pull_date,
    }


def run_engine(company):
    jobs = pd.DataFrame(company["jobs"])
    attendance = pd.DataFrame(
        company["entries"], columns=["worker_id", "job_id", "milestone_id", "hours", "work_date", "is_drive", "task_id"]
    )
    workers = pd.DataFrame({"worker_id": list(company["wages"]), "hourly_wage": list(company["wages"].values())})
    return compute_propays(
        jobs,
        attendance,
        workers,
        company["settings"],
        "acme",
        task_lines=pd.DataFrame(
            company["task_lines"], columns=["job_id", "task_id", "name", "budget_hours", "budget_amount"]
        ),
        wages=pd.DataFrame(company["history"], columns=["worker_id", "effective_date", "hourly_wage"]),
        assignments=pd.DataFrame(company["assignments"], columns=["job_id", "worker_id", "role"]),
        pull_date=company["pull_date"],
    )


def run_reference(company):
    return reference(
        company["jobs"],
        company["entries"],
        company["wages"],
        company["settings"],
        task_lines=company["task_lines"],
        wage_history=company["history"],
        assignments=company["assignments"],
        pull_date=company["pull_date"],
    )


def cents(value) -> int:
    return round(float(value) * 100)


def exact_or_none(numerator, denominator):
    return None if pd.isna(numerator) else Fraction(int(numerator), int(denominator))


# Each example runs the engine (about 50 ms on a small company); tests that run it twice take half as many.
CHECK = settings(deadline=None, max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
CHECK_TWICE = settings(deadline=None, max_examples=max(EXAMPLES // 2, 1), suppress_health_check=[HealthCheck.too_slow])


@CHECK
@given(companies())
def test_the_engine_pays_what_the_reference_pays(company):
    result, expected = run_engine(company), run_reference(company)
    opportunities = result.opportunities.set_index("propay_id")
    assert sorted(opportunities.index) == sorted(expected.propays)
    for propay_id, want in expected.propays.items():
        got = opportunities.loc[propay_id]
        assert got.settings_version == want["settings_version"], propay_id
        assert (got.budget_type, got.status, got.actual_seconds) == (
            want["budget_type"],
            want["status"],
            want["actual_seconds"],
        )
        assert Fraction(int(got.budget_numerator), int(got.budget_denominator)) == want["budget"]
        assert exact_or_none(got.labor_cost_numerator, got.labor_cost_denominator) == want["labor"]
        assert (pd.notna(got.exclusion_reason), bool(got.disqualified)) == (want["excluded"], want["disqualified"]), (
            propay_id
        )
        assert bool(got.began_before_pull_date) == want["began_before_pull_date"]
        assert cents(got.pool_before_penalty) == want["pool_before_penalty"]
        assert cents(got.bonus_pool) == want["pool"], propay_id
        assert [cents(got[f"{r}_bucket"]) for r in ROLE_BUCKETS] == [want["buckets"][r] for r in ROLE_BUCKETS]
        assert (cents(got.paid_to_workers), cents(got.kept_by_company)) == (want["paid"], want["kept"])
        assert got.pay_state == want["pay_state"]
        if want["labor"] is not None and want["actual_seconds"] > 0:
            assert cents(got.saved_amount) == half_up(max(want["saved"], Fraction(0)) * 100)
    workers = result.worker_bonuses.set_index(["propay_id", "worker_id"])
    assert sorted(workers.index) == sorted(expected.workers)
    for key, want in expected.workers.items():
        got = workers.loc[key]
        assert got.seconds == want["seconds"], key
        assert (cents(got.crew_share), cents(got.role_bucket_share), cents(got.bonus)) == (
            want["crew_share"],
            want["role_share"],
            want["bonus"],
        ), key
        assert exact_or_none(got.labor_cost_numerator, got.labor_cost_denominator) == want["labor"]
        assert cents(got.overtime_adjustment) == want["overtime_cents"], key
    weeks = result.overtime_weeks.set_index(["worker_id", "week_start"])
    assert sorted(weeks.index) == sorted(expected.weeks)
    for key, want in expected.weeks.items():
        got = weeks.loc[key]
        assert (got.seconds_worked, got.overtime_seconds) == (want["seconds_worked"], want["overtime_seconds"]), key
        assert (cents(got.bonus_in_week), cents(got.overtime_adjustment)) == (
            want["bonus_cents"],
            want["owed_cents"],
        ), key


@CHECK
@given(companies())
def test_money_adds_up_and_nothing_is_paid_that_should_not_be(company):
    result = run_engine(company)
    bonuses = result.worker_bonuses
    assert (bonuses["bonus"] >= 0).all() and (bonuses["overtime_adjustment"] >= 0).all()
    for row in result.opportunities.itertuples():
        mine = bonuses[bonuses["propay_id"] == row.propay_id]
        pool = cents(row.bonus_pool)
        assert sum(cents(getattr(row, f"{r}_bucket")) for r in ROLE_BUCKETS) == pool
        assert sum(cents(b) for b in mine["bonus"]) == cents(row.paid_to_workers)
        assert cents(row.paid_to_workers) + cents(row.kept_by_company) == pool
        assert all(
            cents(c) + cents(r) == cents(b)
            for c, r, b in zip(mine["crew_share"], mine["role_bucket_share"], mine["bonus"])
        )
        assert cents(row.overtime_adjustment) == sum(cents(a) for a in mine["overtime_adjustment"])
        # Every money figure is whole cents.
        for value in (row.bonus_pool, row.paid_to_workers, row.saved_amount, row.labor_cost):
            assert pd.isna(value) or round(value * 100) / 100 == value
        if (
            pd.notna(row.exclusion_reason)
            or row.disqualified
            or row.status in ("canceled", "pending")
            or row.actual_seconds == 0
        ):
            assert pool == 0 and row.pay_state == "none" and row.no_bonus_reason is not None
        if pd.notna(row.overage_amount) and row.overage_amount > 0:
            assert pool == 0 and row.no_bonus_reason in (
                "over budget",
                "excluded",
                "disqualified",
                "canceled",
                "pending",
                "no hours",
            )
        assert (pool > 0) == (row.pay_state in ("final", "provisional"))
        assert row.pay_state != "final" or row.status == "completed"


@CHECK
@given(companies())
def test_a_paycheck_is_recomputable_from_the_output_columns(company):
    """pool = half up(max(saved, 0) x worker share) - penalty, saved from the exact columns alone (the share from
    the version that prices the ProPay, the penalty from the newest)."""
    result = run_engine(company)
    history = SettingsHistory.of(company["settings"])
    by_number = {v.version: v.settings for v in history.versions}
    for row in result.opportunities.itertuples():
        if row.pay_state == "none":
            continue
        s = by_number[row.settings_version]
        budget = Fraction(int(row.budget_numerator), int(row.budget_denominator))
        labor = Fraction(int(row.labor_cost_numerator), int(row.labor_cost_denominator))
        hours = Fraction(int(row.actual_seconds), 3600)
        saved = (budget - hours) * labor / hours if row.budget_unit == "hours" else budget - labor
        gross = half_up(max(saved, 0) * exact(s.worker_share) * 100)
        assert cents(row.pool_before_penalty) == gross
        assert gross <= max(saved, 0) * exact(s.worker_share) * 100 + Fraction(1, 2)
        # A penalty is a decision about one ProPay: the newest version holds it (rules §9, engine docstring).
        penalty = half_up(exact(history.latest.settings.penalties.get(row.propay_id, 0)) * 100)
        assert cents(row.bonus_pool) == gross - min(gross, penalty)


@CHECK_TWICE
@given(companies(), st.randoms(use_true_random=False))
def test_input_row_order_changes_nothing(company, random):
    base = run_engine(company)
    shuffled = dict(company)
    for key in ("jobs", "entries", "history", "assignments", "task_lines"):
        rows = list(company[key])
        random.shuffle(rows)
        shuffled[key] = rows
    wages = list(company["wages"].items())
    random.shuffle(wages)
    shuffled["wages"] = dict(wages)
    other = run_engine(shuffled)
    for name in ("opportunities", "worker_bonuses", "overtime_weeks", "jobs_without_propay"):
        pd.testing.assert_frame_equal(getattr(other, name), getattr(base, name))


@CHECK_TWICE
@given(companies(), st.data())
def test_adding_hours_never_raises_a_pool(company, data):
    """More hours on a ProPay that is already under way, at no more than the lowest wage of anyone
    (so the blended wage cannot rise), on a day after its work began: its pool never grows. (With a
    dearer worker the blended wage can rise enough to raise the saved $ of an hours budget: the
    published formula, not a bug.)"""
    base = run_engine(company).opportunities.set_index("propay_id")
    under_way = base[(base["status"].isin(["started", "completed"])) & base["first_work_date"].notna()]
    if under_way.empty:
        return
    propay_id = data.draw(st.sampled_from(sorted(under_way.index)))
    row = under_way.loc[propay_id]
    known = [w for w in company["wages"].values() if w is not None] + [h["hourly_wage"] for h in company["history"]]
    cheapest = min(known) if known else 1.0
    extra = dict(company)
    extra["wages"] = {**company["wages"], "newcomer": min(cheapest, 15.0)}
    milestone = row.milestone_id if isinstance(row.milestone_id, str) else None
    day = row.first_work_date + timedelta(days=data.draw(st.integers(0, 3)))
    extra["entries"] = company["entries"] + [
        {
            "worker_id": "newcomer",
            "job_id": row.job_id,
            "milestone_id": milestone,
            "hours": data.draw(st.integers(1, 40)) / 4,
            "work_date": day,
            "is_drive": False,
            "task_id": None,
        }
    ]
    after = run_engine(extra).opportunities.set_index("propay_id")
    assert after.loc[propay_id, "bonus_pool"] <= row.bonus_pool
