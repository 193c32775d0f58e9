"""The engine's rules beyond the published examples: switches, exclusions, launch date, penalty,
disqualifier, budget modification, statuses, the empty-bucket rule, manual and wage distribution,
overtime allocation across weeks and the daily threshold. Where rules §9 changed an expectation, the
test's docstring says so (the findings themselves are pinned in ``test_regressions``)."""

from datetime import date, timedelta

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.propay import OPPORTUNITY_OUTPUT_COLUMNS, WORKER_BONUS_COLUMNS, compute_propays
from tests.propay.builders import MONDAY, entry, frames, job


def run(inputs, **settings):
    return compute_propays(*inputs, CompanySettings(**settings), "acme")


def by_id(result):
    return result.opportunities.set_index("propay_id")


def bonuses(result, propay_id=None):
    rows = result.worker_bonuses
    if propay_id is not None:
        rows = rows[rows["propay_id"] == propay_id]
    return rows.set_index("worker_id")["bonus"].to_dict()


def fence(budget=80, name="Fence", **job_extra):
    return frames(
        [job("F", name, budget=budget, **job_extra)],
        [entry("w1", "F", 30), entry("w2", "F", 30)],
        {"w1": 25.0, "w2": 25.0},
    )


def test_output_columns():
    result = run(fence())
    assert list(result.opportunities.columns) == OPPORTUNITY_OUTPUT_COLUMNS
    assert list(result.worker_bonuses.columns) == WORKER_BONUS_COLUMNS
    assert result.opportunities.iloc[0].first_work_date == MONDAY


def test_over_budget_pays_nothing_and_reports_the_overage_in_hours_and_dollars():
    row = by_id(run(fence(budget=50))).loc["F"]
    assert (row.saved_hours, row.overage_hours, row.overage_amount) == (-10, 10, 250.00)
    assert (row.saved_amount, row.bonus_pool, row.efficiency) == (0, 0, round(50 / 60, 6))


def test_amount_over_budget_and_derived_hours():
    inputs = frames([job("A", budget_type="amount", budget_amount=1000.0)], [entry("w1", "A", 50)], {"w1": 25.0})
    row = by_id(run(inputs)).loc["A"]
    assert (row.labor_cost, row.overage_amount, row.bonus_pool) == (1250.00, 250.00, 0)
    assert (row.budget_hours, row.saved_hours, row.overage_hours) == (40, -10, 10)  # at the blended $25/h


def test_contract_price_uses_the_labor_percent_of_the_job_or_of_the_company():
    jobs = [
        job("C1", budget_type="contract_price", contract_price=10_000.0, labor_budget_percent=30.0),
        job("C2", budget_type="contract_price", contract_price=10_000.0),
        job("C3", budget_type="contract_price", contract_price=10_000.0),
    ]
    inputs = frames(jobs, [entry("w1", "C1", 10)], {"w1": 20.0})
    assert by_id(run(inputs)).index.tolist() == ["C1"]  # no labor % anywhere: no valid budget, no ProPay
    result = by_id(run(inputs, labor_budget_percent=25.0))
    assert result["budget_amount"].to_dict() == {"C1": 3000.00, "C2": 2500.00, "C3": 2500.00}
    assert result.loc["C1", "saved_amount"] == 2800.00


def test_default_budget_type_and_unknown_type():
    """Rules §9 changed this: a job whose budget type is unknown is no ProPay (it was an excluded row
    of the ProPay table, with a budget type the table cannot hold); jobs_without_propay says why."""
    inputs = frames(
        [job("A", budget_amount=900.0), job("B", budget_type="per visit", budget_hours=3.0)],
        [entry("w1", "A", 10)],
        {"w1": 20.0},
    )
    result = run(inputs, default_budget_type="amount")
    assert by_id(result).index.tolist() == ["A"]
    assert by_id(result).loc["A", "budget_type"] == "amount" and by_id(result).loc["A", "saved_amount"] == 700.00
    assert result.jobs_without_propay.set_index("job_id").loc["B", "reason"] == "unknown budget type 'per visit'"


def test_budget_modification_scales_every_budget():
    half = by_id(run(fence(), budget_modification_percent=50)).loc["F"]
    assert (half.budget_hours, half.saved_amount, half.overage_amount) == (40, 0, 500.00)
    double = by_id(run(fence(), budget_modification_percent=200)).loc["F"]
    assert (double.budget_hours, double.saved_amount) == (160, 2500.00)
    amount = frames([job("A", budget_type="amount", budget_amount=1000.0)], [entry("w1", "A", 10)], {"w1": 20.0})
    assert by_id(run(amount, budget_modification_percent=150)).loc["A", "budget_amount"] == 1500.00


def test_drive_time_is_left_out_unless_the_company_includes_it():
    inputs = frames([job("F", budget=10)], [entry("w1", "F", 4), entry("w1", "F", 2, drive=True)], {"w1": 20.0})
    assert by_id(run(inputs)).loc["F", "actual_hours"] == 4
    assert by_id(run(inputs, include_drive_time=True)).loc["F", "actual_hours"] == 6


def test_burden_counts_only_when_budgets_include_it():
    inputs = frames([job("A", budget_type="amount", budget_amount=1000.0)], [entry("w1", "A", 10)], {"w1": 20.0})
    assert by_id(run(inputs, burden_percent=25)).loc["A", "labor_cost"] == 200.00
    burdened = run(inputs, budgets_include_burden=True, burden_percent=25)
    assert by_id(burdened).loc["A", "labor_cost"] == 250.00
    assert burdened.worker_bonuses.iloc[0].wage == 25.0


def test_penalty_is_deducted_from_the_pool_and_never_below_zero():
    row = by_id(run(fence(), penalties={"F": 100.0})).loc["F"]
    assert (row.pool_before_penalty, row.penalty_amount, row.bonus_pool) == (250.00, 100.00, 150.00)
    row = by_id(run(fence(), penalties={"F": 400.0})).loc["F"]
    assert (row.penalty_amount, row.bonus_pool, row.crew_bucket) == (250.00, 0, 0)


def test_disqualifier_voids_the_bonus_and_keeps_the_reason():
    result = run(fence(), disqualifications={"F": "safety incident"})
    row = by_id(result).loc["F"]
    assert (row.disqualified, row.disqualification_reason, row.bonus_pool) == (True, "safety incident", 0)
    assert row.saved_amount == 500.00  # the savings are still reported
    assert set(bonuses(result).values()) == {0}


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({"service_types": ["warranty"]}, "service type 'Warranty' is excluded"),
        ({"name_patterns": ["TEST*"]}, "name matches excluded pattern 'TEST*'"),
        ({"job_ids": ["F"]}, "job F is excluded"),
        ({"property_ids": ["P9"]}, "property P9 is excluded"),
        ({"manual": {"F": "owner's own house"}}, "excluded manually: owner's own house"),
    ],
)
def test_each_exclusion_rule_keeps_the_row_with_its_reason_and_no_bonus(rules, reason):
    inputs = fence(service_type="Warranty", property_id="P9", name="test fence")
    result = run(inputs, exclusions=rules)
    row = by_id(result).loc["F"]
    assert row.exclusion_reason == reason
    assert (row.saved_amount, row.bonus_pool, row.paid_to_workers) == (500.00, 0, 0)
    assert set(bonuses(result).values()) == {0}
    assert pd.isna(by_id(run(inputs)).loc["F", "exclusion_reason"])


def test_manual_exclusion_wins_and_milestones_inherit_their_job():
    """Rules §9 changed this: the non-recurring job J is one ProPay with its milestone J1 (J1 had its own),
    and a rule matching any milestone of a ProPay excludes it (J1's id now excludes J's ProPay)."""
    jobs = [
        job("R", "TEST mowing", recurring=True, property_id="P1"),
        job("R1", "Week 1", parent="R", budget=5),
        job("J", "Patio", budget=10),
        job("J1", "Pour", parent="J", budget=4),
    ]
    inputs = frames(jobs, [entry("w1", "R", 1, milestone="R1")], {"w1": 20.0})
    result = by_id(
        run(
            inputs,
            exclusions={
                "name_patterns": ["test*"],
                "property_ids": ["P1"],
                "job_ids": ["J"],
                "manual": {"R1": "trial"},
            },
        )
    )
    assert result["exclusion_reason"].to_dict() == {"J": "job J is excluded", "R1": "excluded manually: trial"}
    result = by_id(run(inputs, exclusions={"name_patterns": ["test*"], "job_ids": ["J1"]}))
    assert result.loc["R1", "exclusion_reason"] == "name matches excluded pattern 'test*'"
    assert result.loc["J", "exclusion_reason"] == "milestone J1 is excluded"
    result = by_id(run(inputs, exclusions={"property_ids": ["P1"]}))
    assert result.loc["R1", "exclusion_reason"] == "property P1 is excluded" and pd.isna(
        result.loc["J", "exclusion_reason"]
    )


def test_launch_date_any_time_before_it_excludes():
    """Rules §9 changed this: a ProPay with any time before the launch date is excluded (it was counted
    with its later hours only); time on the launch date itself is fine."""
    launch = MONDAY + timedelta(days=1)
    inputs = frames(
        [job("F", budget=80), job("OLD", budget=10), job("NEW", budget=40)],
        [
            entry("w1", "F", 30),
            entry("w1", "F", 20, day=launch),
            entry("w1", "OLD", 5),
            entry("w1", "NEW", 20, day=launch),
        ],
        {"w1": 25.0},
    )
    result = by_id(run(inputs, launch_date=launch))
    reason = f"work before the launch date {launch.isoformat()}"
    assert result["exclusion_reason"].dropna().to_dict() == {"F": reason, "OLD": reason}
    assert (result.loc["F", "actual_hours"], result.loc["F", "first_work_date"], result.loc["F", "bonus_pool"]) == (
        50,
        MONDAY,
        0,
    )
    assert result.loc["NEW", "bonus_pool"] == 250.00


def test_drive_time_before_the_launch_date_counts_as_work_before_it():
    launch = MONDAY + timedelta(days=1)
    inputs = frames(
        [job("F", budget=80)], [entry("w1", "F", 1, drive=True), entry("w1", "F", 20, day=launch)], {"w1": 25.0}
    )
    assert (
        by_id(run(inputs, launch_date=launch)).loc["F", "exclusion_reason"]
        == f"work before the launch date {launch.isoformat()}"
    )


def test_statuses_come_from_the_source_and_the_time_clocked():
    jobs = [
        job("P", budget=5),
        job("S", budget=5),
        job("M", budget=5),
        job("C", budget=5, status="completed"),
        job("X", budget=5, status="canceled"),
    ]
    inputs = frames(jobs, [entry("w1", "S", 1 / 60), entry("w1", "M", 1 / 120), entry("w1", "X", 1)], {"w1": 20.0})
    assert by_id(run(inputs))["status"].to_dict() == {
        "C": "completed",
        "M": "pending",
        "P": "pending",
        "S": "started",
        "X": "canceled",
    }


def test_one_propay_per_milestone_of_a_recurring_job_and_one_per_plain_job():
    jobs = [
        job("R", "Mowing HOA", budget=100, recurring=True),
        job("R1", "Week 1", parent="R", budget=10),
        job("R2", "Week 2", parent="R", budget=12, status="completed"),
        job("J", "Patio", budget=40),
        job("J1", "Pour", parent="J"),
        job("D", "Drive Time", drive=True),
        job("N", "No budget"),
    ]
    inputs = frames(
        jobs,
        [entry("w1", "J", 5, milestone="J1"), entry("w1", "R", 3, milestone="R2"), entry("w1", "N", 8)],
        {"w1": 20.0},
    )
    result = by_id(run(inputs))
    assert result.index.tolist() == ["J", "R1", "R2"]
    assert result.loc["J", "actual_hours"] == 5 and result.loc["R2", "actual_hours"] == 3
    assert result.loc["R1", "name"] == "Mowing HOA / Week 1" and result.loc["R1", "milestone_id"] == "R1"


class TestEmptyBuckets:
    """Rules §9 changed these: everyone with hours shares the crew bucket; a role bucket nobody holds
    goes into the crew bucket; the company keeps only its own bucket and a crew bucket nobody can share."""

    def test_lead_and_manager_buckets_without_people_go_to_the_crew(self):
        result = run(fence(), role_buckets={"crew": 0.7, "crew_lead": 0.2, "manager": 0.1})
        row = by_id(result).loc["F"]
        assert (row.crew_bucket, row.unclaimed_amount, row.paid_to_workers, row.kept_by_company) == (
            175.00,
            75.00,
            250.00,
            0,
        )
        assert bonuses(result) == {"w1": 125.00, "w2": 125.00}

    def test_a_lead_and_a_manager_with_hours_share_the_crew_bucket_and_hold_theirs(self):
        settings = {
            "role_buckets": {"crew": 0.6, "crew_lead": 0.2, "manager": 0.1, "company": 0.1},
            "worker_roles": {"w1": "crew_lead", "w2": "manager"},
        }
        result = run(fence(), **settings)
        row = by_id(result).loc["F"]
        assert (row.crew_bucket, row.crew_lead_bucket, row.manager_bucket, row.company_bucket) == (
            150.00,
            50.00,
            25.00,
            25.00,
        )
        assert bonuses(result) == {"w1": 125.00, "w2": 100.00}  # $75 each from the crew bucket
        assert (row.unclaimed_amount, row.paid_to_workers, row.kept_by_company) == (0, 225.00, 25.00)

    def test_nobody_with_time_pays_nothing(self):
        inputs = frames([job("A", budget_type="amount", budget_amount=1000.0)], [], {"w1": 20.0})
        row = by_id(run(inputs)).loc["A"]
        assert (row.status, row.saved_amount, row.bonus_pool, row.no_bonus_reason) == ("pending", 0, 0, "pending")

    def test_nobody_to_share_the_crew_bucket_leaves_it_with_the_company(self):
        result = run(fence(), distribution_method="manual", manual_distribution={"someone else": 100.0})
        row = by_id(result).loc["F"]
        assert (row.bonus_pool, row.unclaimed_amount, row.paid_to_workers, row.kept_by_company) == (
            250.00,
            250.00,
            0,
            250.00,
        )

    def test_a_manager_with_hours_and_no_manager_bucket_shares_the_crew_bucket(self):
        result = run(fence(), worker_roles={"w2": "manager"})
        assert bonuses(result) == {"w1": 125.00, "w2": 125.00}


def test_wage_distribution_weights_hours_by_wage():
    inputs = frames([job("P", budget=40)], [entry("a", "P", 10), entry("b", "P", 10)], {"a": 10.0, "b": 30.0})
    # saved 20 h x blended $20 = $400; pool $200 split 100:300.
    assert bonuses(run(inputs, distribution_method="wage")) == {"a": 50.00, "b": 150.00}


def test_manual_distribution_rescales_over_the_workers_present():
    inputs = frames(
        [job("P", budget=40)],
        [entry("a", "P", 10), entry("b", "P", 10), entry("c", "P", 1)],
        {"a": 20.0, "b": 20.0, "c": 20.0},
    )
    result = run(
        inputs,
        worker_share=1.0,
        distribution_method="manual",
        manual_distribution={"a": 30.0, "b": 10.0, "absent": 60.0},
    )
    assert bonuses(result) == {"a": 285.00, "b": 95.00, "c": 0}  # saved 19 h x $20 = $380, 3:1


def test_overtime_bonus_spread_over_weeks_by_hours_and_workweek_start():
    # 10 h on the ProPay in each of two Monday-weeks; the second week has 50 h in all (10 h overtime).
    second = MONDAY + timedelta(days=7)
    entries = [entry("w1", "P", 10), entry("w1", "P", 10, day=second)] + [
        entry("w1", "Other", 8, day=second + timedelta(days=d)) for d in range(5)
    ]
    inputs = frames([job("P", budget=40), job("Other")], entries, {"w1": 20.0})
    result = run(inputs, worker_share=1.0)  # saved 20 h x $20 = $400, $200 per week
    assert result.worker_bonuses.iloc[0].overtime_adjustment == 20.00  # 200 / 50 x 0.5 x 10
    assert result.overtime_weeks["overtime_hours"].tolist() == [0, 10]
    # With a Wednesday workweek each Monday belongs to the week that started five days earlier.
    shifted = run(inputs, worker_share=1.0, workweek_start="wednesday")
    assert shifted.overtime_weeks["week_start"].iloc[0] == MONDAY - timedelta(days=5)
    assert shifted.overtime_weeks["week_start"].iloc[1] == second - timedelta(days=5)
    assert shifted.worker_bonuses.iloc[0].overtime_adjustment == 0  # 26 h and 24 h: no overtime


def test_daily_overtime_threshold():
    inputs = frames(
        [job("P", budget=30)], [entry("w1", "P", 10, day=MONDAY + timedelta(days=d)) for d in range(2)], {"w1": 20.0}
    )
    result = run(inputs, worker_share=1.0)  # saved 10 h x $20 = $200; 20 h in the week: no weekly overtime
    assert result.worker_bonuses.iloc[0].overtime_adjustment == 0
    daily = run(inputs, worker_share=1.0, overtime_daily_hours=8)  # 2 h over 8 each day = 4 h overtime
    assert daily.overtime_weeks.iloc[0].overtime_hours == 4
    assert daily.worker_bonuses.iloc[0].overtime_adjustment == 20.00  # 200 / 20 x 0.5 x 4


def test_workers_missing_from_the_workers_table_exclude_the_propay():
    """Rules §9 changed this: a worker without a wage made the labor cost $0; now the labor cost is
    unknown and the ProPay is excluded, the reason naming the worker."""
    inputs = frames([job("P", budget=40)], [entry("a", "P", 10), entry("ghost", "P", 10)], {"a": 20.0})
    result = run(inputs)
    row = by_id(result).loc["P"]
    assert (row.exclusion_reason, row.bonus_pool) == ("no wage for worker ghost", 0)
    assert pd.isna(row.labor_cost) and pd.isna(row.blended_wage)
    assert bonuses(result) == {"a": 0, "ghost": 0}


def test_dates_as_strings_or_timestamps_give_the_same_result():
    base = run(fence())
    jobs, attendance, workers = fence()
    for dates in (attendance["work_date"].astype(str), pd.to_datetime(attendance["work_date"])):
        other = compute_propays(jobs, attendance.assign(work_date=dates), workers, CompanySettings(), "acme")
        pd.testing.assert_frame_equal(other.opportunities, base.opportunities)
    assert base.opportunities.iloc[0].last_work_date == date(2026, 11, 2)


def test_a_week_that_starts_before_the_first_work_date_stays_with_its_worker():
    # b's only day is a Thursday: its workweek starts three days before the earliest date of the
    # company's attendance. Its hours must not land in another worker's week (they did, in a's).
    thursday = MONDAY - timedelta(days=4)
    entries = [
        entry("a", "P", 10),
        entry("a", "P", 2, day=MONDAY + timedelta(days=2)),
        entry("b", "O", 2, day=thursday),
    ]
    weeks = run(
        frames([job("P", budget=20), job("O")], entries, {"a": 20.0, "b": 20.0}), worker_share=1.0
    ).overtime_weeks
    assert weeks.set_index("worker_id")["hours_worked"].to_dict() == {"a": 12}
