"""Each finding of the outside check of the engine against the rules (issue "ProPay money you can
audit to the cent"), pinned: every test here failed on the engine before rules §9 were implemented."""

from datetime import date, timedelta

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings, SettingsHistory, SettingsVersion
from protiv_dagster.propay import compute_propays
from tests.propay.builders import MONDAY, assigned, entry, frames, job, lines, wage_history

SEVENTY_TWENTY_TEN = {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1}


def by_id(result):
    return result.opportunities.set_index("propay_id")


def bonuses(result, propay_id=None):
    rows = result.worker_bonuses
    if propay_id is not None:
        rows = rows[rows["propay_id"] == propay_id]
    return rows.set_index("worker_id")["bonus"].to_dict()


def without(result):
    """{(job_id, milestone_id or None): reason} of jobs_without_propay."""
    rows = result.jobs_without_propay
    return {
        (j, m if isinstance(m, str) else None): r
        for j, m, r in zip(rows["job_id"], rows["milestone_id"], rows["reason"])
    }


# --- Launch date ------------------------------------------------------------------------------------


def test_any_work_before_the_launch_date_excludes_the_propay():
    # 80 h before the launch date and 30 h after, budget 100 h: counting only the 30 h paid a $875 pool.
    launch = MONDAY + timedelta(days=1)
    inputs = frames([job("F", budget=100)], [entry("w1", "F", 80), entry("w1", "F", 30, day=launch)], {"w1": 25.0})
    result = compute_propays(*inputs, CompanySettings(launch_date=launch), "acme")
    row = by_id(result).loc["F"]
    assert row.exclusion_reason == "work before the launch date 2026-11-03"
    assert (row.bonus_pool, row.pay_state, row.no_bonus_reason) == (0, "none", "excluded")
    assert row.actual_hours == 110  # the truth is reported, it just pays nothing
    assert without(result) == {("F", None): "work before the launch date 2026-11-03"}


# --- One ProPay per non-recurring job -------------------------------------------------------------------


def test_a_job_with_its_own_budget_and_a_budgeted_milestone_is_one_propay():
    jobs = [job("J", "Patio", budget=40), job("J1", "Pour", parent="J", budget=10)]
    inputs = frames(jobs, [entry("w1", "J", 5), entry("w1", "J", 6, milestone="J1")], {"w1": 20.0})
    result = by_id(compute_propays(*inputs, CompanySettings(), "acme"))
    assert result.index.tolist() == ["J"]
    assert (result.loc["J", "budget_hours"], result.loc["J", "actual_hours"]) == (
        40,
        11,
    )  # the job's budget; all its time


def test_a_job_without_a_budget_adds_up_its_milestones_budgets():
    jobs = [
        job("J", "Patio"),
        job("J1", "Pour", parent="J", budget=10),
        job("J2", "Seal", parent="J", budget=2.5),
        job("J3", "Clean up", parent="J"),
    ]
    inputs = frames(jobs, [entry("w1", "J", 5, milestone="J1"), entry("w1", "J", 1, milestone="J3")], {"w1": 20.0})
    result = by_id(compute_propays(*inputs, CompanySettings(), "acme"))
    assert result.index.tolist() == ["J"]
    assert (result.loc["J", "budget_hours"], result.loc["J", "actual_hours"], result.loc["J", "milestone_id"]) == (
        12.5,
        6,
        None,
    )


def test_milestone_budgets_of_different_types_do_not_add_up():
    jobs = [
        job("J"),
        job("J1", parent="J", budget=10),
        job("J2", parent="J", budget_type="amount", budget_amount=500.0),
    ]
    result = compute_propays(*frames(jobs, [entry("w1", "J", 5)], {"w1": 20.0}), CompanySettings(), "acme")
    assert result.opportunities.empty
    assert without(result)[("J", None)] == "its milestones' budgets are of different types (amount, hours)"
    assert without(result)[("J", "J1")].startswith("counted in job J, which has no ProPay")


def test_a_recurring_job_gets_one_per_milestone_and_its_only_milestone_gets_one():
    jobs = [
        job("R", "Mowing", budget=100, recurring=True),
        job("R1", "Week 1", parent="R", budget=10),
        job("R2", "Week 2", parent="R", budget=12),
        job("S", "Snow", budget=30, recurring=True),
        job("S1", "Season", parent="S"),
    ]
    inputs = frames(
        jobs,
        [
            entry("w1", "R", 3, milestone="R2"),
            entry("w1", "R", 9),
            entry("w1", "S", 4, milestone="S1"),
            entry("w1", "S", 2),
        ],
        {"w1": 20.0},
    )
    result = compute_propays(*inputs, CompanySettings(), "acme")
    table = by_id(result)
    assert table.index.tolist() == ["R1", "R2", "S1"]
    assert table.loc["R2", "actual_hours"] == 3  # time on the recurring job itself counts nowhere
    # The only work unit of S: its own ProPay, with the job's budget (it has none) and the job's time too.
    assert (table.loc["S1", "budget_hours"], table.loc["S1", "actual_hours"]) == (30, 6)
    assert without(result)[("R", None)] == "recurring job: each of its milestones is its own ProPay"


# --- Role buckets add up -----------------------------------------------------------------------------


def fence():
    return frames(
        [job("F", "Fence", budget=80)], [entry("w1", "F", 30), entry("w2", "F", 30)], {"w1": 25.0, "w2": 25.0}
    )


def test_a_crew_lead_who_worked_gets_a_crew_share_and_the_lead_bucket():
    # Was: the lead $50 (lead bucket only), the other crew member $200.
    result = compute_propays(
        *fence(), CompanySettings(role_buckets=SEVENTY_TWENTY_TEN, worker_roles={"w1": "crew_lead"}), "acme"
    )
    # Crew $175 + the manager bucket nobody holds ($25) = $200, $100 each; the lead adds the $50 lead bucket.
    assert bonuses(result) == {"w1": 150.00, "w2": 100.00}
    lead = result.worker_bonuses.set_index("worker_id").loc["w1"]
    assert (lead.crew_share, lead.role_bucket_share, lead.bucket, lead.role_buckets_held) == (
        100.00,
        50.00,
        "crew_lead",
        "crew_lead",
    )


def test_a_manager_with_hours_shares_the_crew_bucket():
    # Was: a manager with 30 h on the job got $0 under the default buckets (crew 100 %).
    result = compute_propays(*fence(), CompanySettings(worker_roles={"w2": "manager"}), "acme")
    assert bonuses(result) == {"w1": 125.00, "w2": 125.00}


def test_the_sources_assignees_hold_the_buckets_before_the_role_settings():
    # w1 is a crew lead by the role settings, but the source assigns "lead" to the job: lead holds it.
    result = compute_propays(
        *fence(),
        CompanySettings(role_buckets=SEVENTY_TWENTY_TEN, worker_roles={"w1": "crew_lead"}),
        "acme",
        assignments=assigned(("F", "lead", "crew_lead"), ("F", "m1", "manager"), ("F", "m2", "manager")),
    )
    # Two managers split $25 equally: $12.50 each.
    assert bonuses(result) == {"lead": 50.00, "m1": 12.50, "m2": 12.50, "w1": 87.50, "w2": 87.50}


# --- Missing wages --------------------------------------------------------------------------------------


def test_a_worker_without_a_wage_excludes_the_propay_naming_the_worker():
    # Was: labor $500 (the worker without a wage cost $0) and a $250 pool.
    inputs = frames(
        [job("A", budget_type="amount", budget_amount=1000.0)],
        [entry("w1", "A", 20), entry("ghost", "A", 20)],
        {"w1": 25.0, "ghost": None},
    )
    result = compute_propays(*inputs, CompanySettings(), "acme")
    row = by_id(result).loc["A"]
    assert row.exclusion_reason == "no wage for worker ghost"
    assert (row.bonus_pool, row.no_bonus_reason) == (0, "excluded")
    assert pd.isna(row.labor_cost) and pd.isna(row.saved_amount) and pd.isna(row.labor_cost_numerator)
    assert without(result) == {("A", None): "no wage for worker ghost"}


def test_the_wage_in_force_on_the_work_date():
    # History: $20 from Oct 1, $30 from Nov 3, $99 from Dec 1 (not yet in force); w2 has no history: today's wage.
    days = [MONDAY, MONDAY + timedelta(days=1)]
    inputs = frames(
        [job("A", budget_type="amount", budget_amount=1000.0)],
        [entry("w1", "A", 10, day=d) for d in days] + [entry("w2", "A", 1)],
        {"w1": 99.0, "w2": 15.0},
    )
    history = wage_history(
        ("w1", date(2026, 10, 1), 20.0), ("w1", date(2026, 11, 3), 30.0), ("w1", date(2026, 12, 1), 99.0)
    )
    result = compute_propays(*inputs, CompanySettings(), "acme", wages=history)
    assert by_id(result).loc["A", "labor_cost"] == 200.00 + 300.00 + 15.00
    w1 = result.worker_bonuses.set_index("worker_id").loc["w1"]
    assert (w1.wage_count, w1.wage, w1.labor_cost) == (2, 25.0, 500.00)


# --- Exact arithmetic ----------------------------------------------------------------------------------------


def test_a_worker_share_of_0_33335_is_not_truncated():
    # $1,000 saved at a 33.335 % worker share is $333.35 (was $333.30: the share cut to basis points).
    inputs = frames([job("A", budget_type="amount", budget_amount=1200.0)], [entry("w1", "A", 10)], {"w1": 20.0})
    assert (
        by_id(compute_propays(*inputs, CompanySettings(worker_share=0.33335), "acme")).loc["A", "bonus_pool"] == 333.35
    )


def test_wage_weights_use_the_exact_labor_cost():
    # Labor $10.005 and $30.015 (1:3 exactly; cent-rounded 10.01:30.02 gave $120.02 / $359.97).
    # Pool: ($1,000 - $40.02) x 50 % = $479.99; 1:3 is 119.9975 / 359.9925, the left-over cent to the
    # larger remainder (a).
    inputs = frames(
        [job("A", budget_type="amount", budget_amount=1000.0)],
        [entry("a", "A", 1), entry("b", "A", 1)],
        {"a": 10.005, "b": 30.015},
    )
    result = compute_propays(*inputs, CompanySettings(distribution_method="wage"), "acme")
    assert by_id(result).loc["A", "bonus_pool"] == 479.99
    assert bonuses(result) == {"a": 120.00, "b": 359.99}


def test_largest_remainder_on_a_large_pool_ties_to_the_smaller_worker_id():
    # Pool $18,074.16 over 0.10 / 0.05 / 0.05 / 7.45 / 0.75 / 0.70 h (9.10 h), by hours, worked out by hand:
    #   w1 0.10 h: 1,807,416 x 10/910 = 19,861 + 65/91   (.714285...)
    #   w2 0.05 h:                       9,930 + 78/91   (.857142...)
    #   w3 0.05 h:                       9,930 + 78/91
    #   w4 7.45 h:                   1,479,697 + 65/91   (.714285...)
    #   w5 0.75 h:                     148,962 + 78/91
    #   w6 0.70 h:                     139,032           (exact)
    # The floors add up to 1,807,412: 4 cents left, one each to w2, w3, w5 (the largest remainders),
    # and the fourth to the tie between w1 and w4: the smaller worker id, w1.
    hours = {"w1": 0.10, "w2": 0.05, "w3": 0.05, "w4": 7.45, "w5": 0.75, "w6": 0.70}
    inputs = frames(
        [job("A", budget_type="amount", budget_amount=18_165.16)],
        [entry(w, "A", h) for w, h in hours.items()],
        {w: 10.0 for w in hours},
    )  # labor $91.00
    result = compute_propays(*inputs, CompanySettings(worker_share=1.0), "acme")
    assert by_id(result).loc["A", "bonus_pool"] == 18_074.16
    assert bonuses(result) == {"w1": 198.62, "w2": 99.31, "w3": 99.31, "w4": 14_796.97, "w5": 1_489.63, "w6": 1_390.32}


def test_hours_are_whole_seconds_summed_not_rounded_per_entry():
    # 229 four-minute entries are 54,960 s = 15.2666... h exactly (per-entry micro-hours added 76 uh):
    # (16 h - 15.2666... h) x $80 = $58.666... -> $58.67 (was $58.66).
    inputs = frames([job("P", budget=16.0)], [entry("w1", "P", 4 / 60)] * 229, {"w1": 80.0})
    row = by_id(compute_propays(*inputs, CompanySettings(worker_share=1.0), "acme")).loc["P"]
    assert row.bonus_pool == 58.67
    assert row.actual_seconds == 54_960


def test_budget_modification_and_burden_are_exact():
    # 33.33 % of 300 h is 99.99 h; burden 18.5 % on $20 is $23.70 an hour: saved (99.99 - 90) h x $23.70 = $236.763.
    inputs = frames([job("P", budget=300)], [entry("w1", "P", 90)], {"w1": 20.0})
    settings = CompanySettings(
        worker_share=1.0, budget_modification_percent=33.33, budgets_include_burden=True, burden_percent=18.5
    )
    row = by_id(compute_propays(*inputs, settings, "acme")).loc["P"]
    assert (row.labor_cost, row.bonus_pool) == (2133.00, 236.76)
    assert (row.budget_numerator, row.budget_denominator) == (9999, 100)


# --- Task lines -----------------------------------------------------------------------------------------------


def test_task_lines_net_and_time_on_no_budgeted_line_counts_against_them():
    tasks = lines(("T", "a", 100.0), ("T", "b", 100.0), amounts=True)
    inputs = frames(
        [job("T", budget_type="task_amount")],
        [entry("w1", "T", 2, task_id="a"), entry("w1", "T", 6, task_id="b"), entry("w1", "T", 1)],
        {"w1": 20.0},
    )
    row = by_id(compute_propays(*inputs, CompanySettings(), "acme", task_lines=tasks)).loc["T"]
    # a: 100 - 40 = +60; b: 100 - 120 = -20; no line: 0 - 20 = -20; net +20.
    assert (row.budget_amount, row.labor_cost, row.saved_amount) == (200.00, 180.00, 20.00)


def test_task_lines_of_the_milestones_of_a_job_without_lines_of_its_own():
    tasks = lines(("J1", "drywall", 8.0), ("J2", "paint", 12.0))
    inputs = frames(
        [
            job("J", budget_type="task_hours"),
            job("J1", parent="J"),
            job("J2", parent="J"),
            job("K", budget_type="task_hours"),
        ],
        [entry("w1", "J", 15, milestone="J1")],
        {"w1": 20.0},
    )
    result = compute_propays(*inputs, CompanySettings(), "acme", task_lines=tasks)
    assert by_id(result).loc["J", "budget_hours"] == 20
    assert without(result)[("K", None)] == "no budget (task_hours budget type)"


def test_the_earlier_task_budgets_argument_still_works():
    tasks = pd.DataFrame({"propay_id": ["T"], "task": ["a"], "budget_hours": [10.0]})
    inputs = frames([job("T", budget_type="task_hours")], [entry("w1", "T", 8)], {"w1": 20.0})
    assert by_id(compute_propays(*inputs, CompanySettings(), "acme", task_budgets=tasks)).loc["T", "saved_hours"] == 2


# --- Canceled and empty ProPays ---------------------------------------------------------------------------------


def test_a_canceled_propay_pays_nothing():
    # Was: 5 h of a 100 h budget showed a $950 pool.
    inputs = frames([job("X", budget=100, status="canceled")], [entry("w1", "X", 5)], {"w1": 20.0})
    row = by_id(compute_propays(*inputs, CompanySettings(), "acme")).loc["X"]
    assert (row.status, row.bonus_pool, row.pool_before_penalty) == ("canceled", 0, 0)
    assert (row.pay_state, row.no_bonus_reason) == ("none", "canceled")


@pytest.mark.parametrize("status", ["open", "completed"])
def test_no_hours_no_bonus_and_saved_hours_are_not_the_whole_budget(status):
    inputs = frames(
        [job("A", budget_type="amount", budget_amount=1000.0, status=status), job("H", budget=40, status=status)],
        [],
        {"w1": 20.0},
    )
    table = by_id(compute_propays(*inputs, CompanySettings(), "acme"))
    reason = "pending" if status == "open" else "no hours"
    for propay_id in ("A", "H"):
        row = table.loc[propay_id]
        assert (row.bonus_pool, row.saved_amount) == (0, 0) and pd.isna(row.saved_hours) and pd.isna(row.efficiency)
        assert (row.pay_state, row.no_bonus_reason) == ("none", reason)


def test_started_is_provisional_and_completed_is_final():
    inputs = frames(
        [job("S", budget=40), job("C", budget=40, status="completed")],
        [entry("w1", "S", 10), entry("w1", "C", 10)],
        {"w1": 20.0},
    )
    table = by_id(compute_propays(*inputs, CompanySettings(), "acme"))
    assert table["pay_state"].to_dict() == {"C": "final", "S": "provisional"}


# --- Pull date -------------------------------------------------------------------------------------------------


def test_a_job_created_before_the_pull_date_is_excluded_unless_counted_and_then_flagged():
    pull = MONDAY
    jobs = [
        job("OLD", budget=40, created_date=pull - timedelta(days=3)),
        job("NEW", budget=40, created_date=pull),
        job("UNKNOWN", budget=40),
    ]
    inputs = frames(jobs, [entry("w1", j, 10) for j in ("OLD", "NEW", "UNKNOWN")], {"w1": 20.0})
    result = compute_propays(*inputs, CompanySettings(), "acme", pull_date=pull)
    table = by_id(result)
    assert table.loc["OLD", "exclusion_reason"] == "began before the attendance pull date"
    assert table["began_before_pull_date"].to_dict() == {"NEW": False, "OLD": True, "UNKNOWN": False}
    assert pd.isna(table.loc["NEW", "exclusion_reason"]) and pd.isna(table.loc["UNKNOWN", "exclusion_reason"])
    assert without(result) == {("OLD", None): "began before the attendance pull date"}
    counted = by_id(compute_propays(*inputs, CompanySettings(count_jobs_before_pull_date=True), "acme", pull_date=pull))
    assert pd.isna(counted.loc["OLD", "exclusion_reason"]) and counted.loc["OLD", "began_before_pull_date"]
    assert counted.loc["OLD", "bonus_pool"] == 300.00


def test_time_before_the_pull_date_is_never_counted_and_marks_the_job():
    pull = MONDAY + timedelta(days=2)
    inputs = frames([job("P", budget=40)], [entry("w1", "P", 5), entry("w1", "P", 10, day=pull)], {"w1": 20.0})
    row = by_id(
        compute_propays(*inputs, CompanySettings(count_jobs_before_pull_date=True), "acme", pull_date=pull)
    ).loc["P"]
    assert (row.actual_hours, row.began_before_pull_date, row.first_work_date) == (10, True, pull)


# --- Why no ProPay --------------------------------------------------------------------------------------------


def test_every_job_without_a_propay_has_a_row_saying_why():
    jobs = [
        job("NB", "No budget"),
        job("DR", "Drive Time", drive=True),
        job("UT", "Odd", budget_type="per visit", budget_hours=3.0),
        job("EX", "TEST job", budget=5),
        job("LA", "Launch", budget=5),
        job("PD", "Pulled", budget=5, created_date=date(2026, 10, 1)),
        job("MW", "Wage", budget=5),
        job("R", "Mowing", recurring=True),
        job("R1", "Week 1", parent="R"),
        job("R2", "Week 2", parent="R", budget=3),
        job("OK", "Fine", budget=50),
    ]
    entries = [
        entry("w1", "LA", 1, day=MONDAY - timedelta(days=1)),
        entry("w1", "LA", 1),
        entry("nowage", "MW", 2),
        entry("w1", "OK", 10),
    ]
    settings = CompanySettings(launch_date=MONDAY, exclusions={"name_patterns": ["TEST*"]})
    result = compute_propays(*frames(jobs, entries, {"w1": 20.0}), settings, "acme", pull_date=date(2026, 10, 15))
    assert without(result) == {
        ("DR", None): "drive job",
        ("EX", None): "name matches excluded pattern 'TEST*'",
        ("LA", None): "work before the launch date 2026-11-02",
        ("MW", None): "no wage for worker nowage",
        ("NB", None): "no budget (hours budget type)",
        ("PD", None): "began before the attendance pull date",
        ("R", None): "recurring job: each of its milestones is its own ProPay",
        ("R", "R1"): "no budget (hours budget type)",
        ("UT", None): "unknown budget type 'per visit'",
    }
    assert list(result.jobs_without_propay.columns) == ["company_id", "job_id", "milestone_id", "name", "reason"]
    assert sorted(by_id(result).index) == ["EX", "LA", "MW", "OK", "PD", "R2"]  # excluded ProPays keep their row


# --- Settings with history -------------------------------------------------------------------------------------


def two_versions(change_on):
    return SettingsHistory(
        versions=(
            SettingsVersion(version=1, settings=CompanySettings(worker_share=0.5)),
            SettingsVersion(version=2, effective_from=change_on, settings=CompanySettings(worker_share=1.0)),
        )
    )


def test_a_settings_change_never_rewrites_a_propay_already_under_way():
    change = MONDAY + timedelta(days=3)
    entries = [entry("w1", "EARLY", 10), entry("w1", "EARLY", 10, day=change), entry("w1", "LATE", 10, day=change)]
    inputs = frames([job("EARLY", budget=40), job("LATE", budget=40), job("IDLE", budget=40)], entries, {"w1": 20.0})
    table = by_id(compute_propays(*inputs, two_versions(change), "acme"))
    assert table["settings_version"].to_dict() == {"EARLY": 1, "IDLE": 2, "LATE": 2}  # no work yet: the latest
    assert (table.loc["EARLY", "bonus_pool"], table.loc["LATE", "bonus_pool"]) == (200.00, 600.00)


def test_decisions_about_a_propay_under_way_come_from_the_newest_version():
    # Priced by version 1 (its work began before version 2), yet the admin's later decisions hold.
    change = MONDAY + timedelta(days=3)
    later = CompanySettings(
        worker_share=1.0,
        disqualifications={"D": "safety incident"},
        penalties={"P": 50.0},
        exclusions={"manual": {"X": "warranty work"}},
    )
    history = SettingsHistory(
        versions=(
            SettingsVersion(version=1, settings=CompanySettings(worker_share=0.5)),
            SettingsVersion(version=2, effective_from=change, settings=later),
        )
    )
    jobs = [job(name, budget=40) for name in ("D", "P", "X", "K")]
    inputs = frames(jobs, [entry("w1", name, 10) for name in ("D", "P", "X", "K")], {"w1": 20.0})
    table = by_id(compute_propays(*inputs, history, "acme"))
    assert table["settings_version"].to_dict() == {"D": 1, "K": 1, "P": 1, "X": 1}
    assert table.loc["K", "bonus_pool"] == 300.00  # version 1's worker share: 50 % of (40 - 10) h x $20 / h
    assert table.loc["D", "disqualified"] and table.loc["D", "bonus_pool"] == 0
    assert (table.loc["P", "penalty_amount"], table.loc["P", "bonus_pool"]) == (50.00, 250.00)
    assert table.loc["X", "exclusion_reason"] == "excluded manually: warranty work"


def test_overtime_uses_the_version_in_force_on_the_week_start():
    second = MONDAY + timedelta(days=7)
    history = SettingsHistory(
        versions=(
            SettingsVersion(version=1, settings=CompanySettings(worker_share=1.0)),
            SettingsVersion(
                version=2, effective_from=second, settings=CompanySettings(worker_share=1.0, overtime_weekly_hours=8.0)
            ),
        )
    )
    inputs = frames([job("P", budget=40)], [entry("w1", "P", 10), entry("w1", "P", 10, day=second)], {"w1": 20.0})
    weeks = compute_propays(*inputs, history, "acme").overtime_weeks.set_index("week_start")
    assert weeks["settings_version"].to_dict() == {MONDAY: 1, second: 2}
    assert weeks["overtime_hours"].to_dict() == {MONDAY: 0, second: 2}


# --- Overtime -------------------------------------------------------------------------------------------------


def test_daily_and_weekly_overtime_together():
    # 5 days of 10 h at an 8 h daily threshold: 10 h of overtime (daily overtime is not counted again by
    # the weekly rule: 50 - 10 = 40 straight hours). Bonus $200: $200 / 50 h x 0.5 x 10 h = $20.00.
    week = [MONDAY + timedelta(days=d) for d in range(5)]
    inputs = frames([job("P", budget=60)], [entry("w1", "P", 10, day=d) for d in week], {"w1": 20.0})
    result = compute_propays(*inputs, CompanySettings(worker_share=1.0, overtime_daily_hours=8), "acme")
    assert bonuses(result) == {"w1": 200.00}
    week_row = result.overtime_weeks.iloc[0]
    assert (week_row.overtime_hours, week_row.overtime_adjustment) == (10, 20.00)
    assert result.worker_bonuses.iloc[0].overtime_adjustment == 20.00


def test_overtime_money_is_rounded_once():
    # $100 over 3 weeks of 7 h each on the ProPay (33.333... a week) and 45 h worked each week:
    # 33.333.. / 45 x 0.5 x 5 = 1.85185... a week, 5.5555... in all -> $5.56 (rounding each week first: $5.55).
    weeks = [MONDAY + timedelta(days=7 * k) for k in range(3)]
    entries = [entry("w1", "P", 7, day=d) for d in weeks] + [
        entry("w1", "O", 38, day=d + timedelta(days=1)) for d in weeks
    ]
    inputs = frames([job("P", budget=21 + 5), job("O")], entries, {"w1": 20.0})
    result = compute_propays(*inputs, CompanySettings(worker_share=1.0), "acme")
    assert bonuses(result, "P") == {"w1": 100.00}
    assert result.worker_bonuses.iloc[0].overtime_adjustment == 5.56
    assert result.overtime_weeks["overtime_adjustment"].tolist() == [1.85, 1.85, 1.85]
