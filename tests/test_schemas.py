"""The pandera models of the cleaned tables and ``split_valid``: valid rows come back coerced to the
model, every other row comes back set aside with all of its reasons, and a malformed frame raises."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.propay import compute_propays
from protiv_dagster.schemas import (
    Attendance,
    Job,
    PropayOpportunity,
    PropayOvertimeWeek,
    PropayWorkerBonus,
    Worker,
    no_rejects,
    split_valid,
)

UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def attendance_row(**changes: Any) -> dict[str, Any]:
    row = {
        "company_id": "acme",
        "entry_id": "1",
        "worker_id": "7",
        "job_id": "10",
        "milestone_id": None,
        "task_id": None,
        "work_date": date(2026, 11, 1),
        "start_at": pd.Timestamp("2026-11-01T07:00:00Z"),
        "end_at": pd.Timestamp("2026-11-01T10:00:00Z"),
        "hours": 3.0,
        "is_drive": False,
        "on_the_clock": False,
        "entry_type": "regular",
        "source_modified_at": pd.Timestamp("2026-11-02T00:00:00Z"),
    }
    row.update(changes)
    return row


def worker_row(**changes: Any) -> dict[str, Any]:
    row = {
        "company_id": "acme",
        "worker_id": "7",
        "first_name": "Ana",
        "last_name": "Ruiz",
        "active": True,
        "hourly_wage": 25.0,
        "pay_interval": "hour",
        "hire_date": date(2020, 1, 1),
        "term_date": None,
        "source_modified_at": pd.Timestamp("2026-11-02T00:00:00Z"),
    }
    row.update(changes)
    return row


def job_row(**changes: Any) -> dict[str, Any]:
    row = {
        "company_id": "acme",
        "job_id": "10",
        "parent_job_id": None,
        "level": "job",
        "name": "Smith patio",
        "short_code": None,
        "budget_hours": 40.0,
        "status": "open",
        "recurring": False,
        "is_drive": False,
        "active": True,
        "budget_type": None,
        "budget_amount": None,
        "contract_price": None,
        "labor_budget_percent": None,
        "rate": None,
        "quantity": None,
        "service_type": None,
        "property_id": None,
        "created_date": None,
        "source_modified_at": pd.Timestamp("2026-11-02T00:00:00Z"),
    }
    row.update(changes)
    return row


def test_valid_rows_come_back_coerced_to_the_model() -> None:
    frame = pd.DataFrame(
        [
            attendance_row(
                entry_id=1,
                worker_id=7,
                job_id=10,
                hours=3,
                is_drive=0,
                start_at="2026-11-01T01:00:00-06:00",
                end_at="2026-11-01T03:00:00-07:00",
                extra="not in the model",
            ),
            attendance_row(
                entry_id=2,
                worker_id=7,
                job_id=10,
                milestone_id="11",
                hours="1.5",
                is_drive=1,
                start_at=None,
                end_at=None,
                entry_type="manual",
                extra="not in the model",
            ),
        ],
        index=[40, 41],
    )
    assert frame["entry_id"].dtype != object and frame["hours"].dtype == object

    valid, rejected = split_valid(frame, Attendance, "entry_id")

    assert rejected.empty and list(rejected.columns) == ["record_id", "reason", "record"]
    assert "extra" not in valid.columns  # strict="filter": columns the model does not name are dropped
    assert list(valid.index) == [0, 1]
    assert list(valid["entry_id"]) == ["1", "2"] and list(valid["job_id"]) == ["10", "10"]
    assert list(valid["milestone_id"].isna()) == [True, False] and valid["milestone_id"].iloc[1] == "11"
    assert valid["hours"].dtype == "float64" and list(valid["hours"]) == [3.0, 1.5]
    assert valid["is_drive"].dtype == bool and list(valid["is_drive"]) == [False, True]
    for column in ("start_at", "end_at", "source_modified_at"):
        assert valid[column].dtype == UTC_NS, column
    assert valid["start_at"].iloc[0] == pd.Timestamp("2026-11-01T07:00:00Z")
    assert valid["end_at"].iloc[0] - valid["start_at"].iloc[0] == pd.Timedelta(hours=3)  # across fall back
    assert list(valid["work_date"]) == [date(2026, 11, 1)] * 2


def test_coercion_of_the_other_models() -> None:
    workers, rejected = split_valid(
        pd.DataFrame(
            [worker_row(worker_id=7, hourly_wage="25.5", active=1), worker_row(worker_id=8, hourly_wage=None)]
        ),
        Worker,
        "worker_id",
    )
    assert rejected.empty
    assert list(workers["worker_id"]) == ["7", "8"]
    assert workers["hourly_wage"].dtype == "float64" and workers["hourly_wage"].iloc[0] == 25.5
    assert pd.isna(workers["hourly_wage"].iloc[1]) and workers["active"].dtype == bool
    assert workers["source_modified_at"].dtype == UTC_NS

    jobs, rejected = split_valid(
        pd.DataFrame(
            [job_row(job_id=10, budget_hours="40"), job_row(job_id=11, parent_job_id="10", level="milestone")]
        ),
        Job,
        "job_id",
    )
    assert rejected.empty
    assert list(jobs["job_id"]) == ["10", "11"] and jobs["parent_job_id"].iloc[1] == "10"
    assert jobs["budget_hours"].dtype == "float64" and jobs["budget_hours"].iloc[0] == 40.0


@pytest.mark.parametrize(
    ("work_dates", "kept", "set_aside"),
    [
        # Already dates (the mappings' output): checked on the whole column and kept as they are.
        ([date(2026, 11, 2), date(2026, 11, 3)], [date(2026, 11, 2), date(2026, 11, 3)], []),
        (
            [date(1677, 9, 22), date(2262, 4, 11)],
            [date(1677, 9, 22), date(2262, 4, 11)],
            [],
        ),  # the ends datetime64[ns] holds
        # Anything else goes through pandera's own coercion and check, value by value.
        ([date(2026, 11, 2), datetime(2026, 11, 3, 15, 30)], [date(2026, 11, 2), date(2026, 11, 3)], []),
        ([date(2026, 11, 2), "2026-11-04"], [date(2026, 11, 2), date(2026, 11, 4)], []),
        ([date(2026, 11, 2), pd.Timestamp("2026-11-05")], [date(2026, 11, 2), date(2026, 11, 5)], []),
        ([date(2026, 11, 2), None], [date(2026, 11, 2)], [("1", "work_date: not_nullable")]),
        ([date(2026, 11, 2), float("nan")], [date(2026, 11, 2)], [("1", "work_date: not_nullable")]),
    ],
)
def test_date_columns(work_dates: list[Any], kept: list[date], set_aside: list[tuple[str, str]]) -> None:
    frame = pd.DataFrame([attendance_row(entry_id=str(i), work_date=day) for i, day in enumerate(work_dates)])

    valid, rejected = split_valid(frame, Attendance, "entry_id")

    assert list(valid["work_date"]) == kept and {type(day) for day in valid["work_date"]} == {date}
    assert list(zip(rejected["record_id"], rejected["reason"])) == set_aside


def test_rows_of_missing_values_and_repeated_ids_are_set_aside_with_every_reason() -> None:
    # The uniqueness check passes a row only when every one of its values is missing, as pandera's
    # ignore_na would; flags coerced to False make such rows duplicates like any other.
    empty = {name: None for name in attendance_row()}
    no_company = attendance_row(company_id=None)
    frame = pd.DataFrame([attendance_row(entry_id="7"), empty, empty, no_company, no_company])

    valid, rejected = split_valid(frame, Attendance, "entry_id")

    assert list(valid["entry_id"]) == ["7"]
    missing = "; ".join(
        f"{name}: not_nullable"
        for name in ("company_id", "entry_id", "entry_type", "hours", "job_id", "source_modified_at")
    )
    duplicate = "unique_entry (entry id is unique within the company)"
    assert (
        rejected["reason"].tolist()
        == [
            f"{missing}; {duplicate}; work_date: not_nullable; worker_id: not_nullable",
        ]
        * 2
        + [f"company_id: not_nullable; {duplicate}"] * 2
    )


@pytest.mark.parametrize(
    ("entry_ids", "kept", "duplicated"),
    [
        (["a", "b", "c"], ["a", "b", "c"], []),
        (["1", "1", "2"], ["2"], ["1", "1"]),
        ([1, "1", 1.0], ["1.0"], ["1", "1"]),  # ids are compared as the text they are coerced to
        ([None, float("nan"), "3"], ["3"], ["", ""]),  # two missing ids are the same id too
    ],
)
def test_entry_ids_repeated_in_any_form_are_set_aside(
    entry_ids: list[Any], kept: list[str], duplicated: list[str]
) -> None:
    frame = pd.DataFrame([attendance_row(entry_id=entry_id) for entry_id in entry_ids])

    valid, rejected = split_valid(frame, Attendance, "entry_id")

    assert list(valid["entry_id"]) == kept
    assert list(rejected["record_id"]) == duplicated
    assert all("unique_entry (entry id is unique within the company)" in reason for reason in rejected["reason"])


def test_a_date_beyond_datetime64_ns_fails_coercion_for_the_whole_column() -> None:
    frame = pd.DataFrame([attendance_row(entry_id="1"), attendance_row(entry_id="2", work_date=date(1677, 9, 21))])
    with pytest.raises(ValueError, match=r"work_date coerce_dtype\('date'\)"):
        split_valid(frame, Attendance, "entry_id")


def test_a_nullable_date_column_keeps_null_as_nat() -> None:
    frame = pd.DataFrame(
        [worker_row(worker_id="7", term_date=date(2026, 11, 2)), worker_row(worker_id="8", term_date=None)]
    )

    workers, rejected = split_valid(frame, Worker, "worker_id")

    assert (
        rejected.empty and workers["term_date"].iloc[0] == date(2026, 11, 2) and workers["term_date"].iloc[1] is pd.NaT
    )


@pytest.mark.parametrize(
    ("model", "row", "record_id", "missing"),
    [
        (Attendance, attendance_row(), "entry_id", "hours"),
        (Attendance, attendance_row(), "entry_id", "work_date"),
        (Worker, worker_row(), "worker_id", "active"),
        (Job, job_row(), "job_id", "level"),
    ],
)
def test_a_missing_column_raises_naming_it(model: Any, row: dict[str, Any], record_id: str, missing: str) -> None:
    frame = pd.DataFrame([row, row | {record_id: "2"}]).drop(columns=[missing])
    with pytest.raises(
        ValueError, match=rf"{model.__name__}: the frame itself is malformed: .*column '{missing}' is missing"
    ):
        split_valid(frame, model, record_id)


def test_a_missing_column_raises_even_when_rows_are_bad_too() -> None:
    frame = pd.DataFrame([attendance_row(hours=-1.0)]).drop(columns=["entry_type"])
    with pytest.raises(ValueError, match="column 'entry_type' is missing"):
        split_valid(frame, Attendance, "entry_id")


def test_reasons_aggregate_every_failure_of_a_row() -> None:
    bad = attendance_row(
        entry_id="2",
        worker_id="",
        hours=-1.0,
        entry_type="weird",
        end_at=pd.Timestamp("2026-11-01T06:00:00Z"),  # before start
    )
    frame = pd.DataFrame([attendance_row(entry_id="1"), bad, attendance_row(entry_id="3", hours=25.0)], index=[7, 8, 9])

    valid, rejected = split_valid(frame, Attendance, "entry_id")

    assert list(valid["entry_id"]) == ["1"] and list(valid.index) == [0]
    assert list(rejected.index) == [0, 1]
    assert list(rejected["record_id"]) == ["2", "3"]
    # Every failed check once, sorted, column checks named by column, frame checks by name and description.
    assert rejected["reason"].iloc[0] == (
        "end_after_start (end is not before start); "
        "entry_type: isin(['regular', 'manual']); "
        "hours: greater_than_or_equal_to(0); "
        "worker_id: str_length(1, None)"
    )
    assert rejected["reason"].iloc[1] == "hours: less_than_or_equal_to(24)"
    record = json.loads(rejected["record"].iloc[0])
    assert record["entry_id"] == "2" and record["entry_type"] == "weird" and record["milestone_id"] is None
    assert len(valid) + len(rejected) == len(frame)


def test_duplicated_ids_set_both_copies_aside() -> None:
    frame = pd.DataFrame(
        [attendance_row(entry_id="1"), attendance_row(entry_id="2"), attendance_row(entry_id="1", hours=2.0)]
    )
    valid, rejected = split_valid(frame, Attendance, "entry_id")
    assert list(valid["entry_id"]) == ["2"]
    assert list(rejected["record_id"]) == ["1", "1"]
    assert set(rejected["reason"]) == {"unique_entry (entry id is unique within the company)"}

    # The same id in two companies is no duplicate.
    other = pd.DataFrame([attendance_row(entry_id="1"), attendance_row(entry_id="1", company_id="globex")])
    valid, rejected = split_valid(other, Attendance, "entry_id")
    assert len(valid) == 2 and rejected.empty


def test_worker_and_job_rules() -> None:
    valid, rejected = split_valid(
        pd.DataFrame([worker_row(), worker_row(worker_id="8", hourly_wage=-1.0), worker_row()]), Worker, "worker_id"
    )
    assert valid.empty
    assert list(rejected["reason"]) == [
        "unique_worker (worker id is unique within the company)",
        "hourly_wage: greater_than_or_equal_to(0)",
        "unique_worker (worker id is unique within the company)",
    ]

    valid, rejected = split_valid(
        pd.DataFrame(
            [
                job_row(),
                job_row(job_id="11", level="milestone"),  # a milestone without its job
                job_row(job_id="12", parent_job_id="10"),  # a job with a parent
                job_row(job_id="13", status="paused", budget_hours=-2.0),
            ]
        ),
        Job,
        "job_id",
    )
    assert list(valid["job_id"]) == ["10"]
    assert list(rejected["record_id"]) == ["11", "12", "13"]
    assert (
        list(rejected["reason"][:2]) == ["parent_matches_level (a milestone names its job and a job has no parent)"] * 2
    )
    assert (
        rejected["reason"].iloc[2]
        == "budget_hours: greater_than_or_equal_to(0); status: isin(['open', 'completed', 'canceled'])"
    )


def test_job_optional_budget_columns_are_kept_and_coerced() -> None:
    jobs, rejected = split_valid(
        pd.DataFrame(
            [
                job_row(budget_type="amount", budget_amount="5000", budget_hours=None),
                job_row(
                    job_id="11",
                    budget_type="contract_price",
                    contract_price=12000,
                    labor_budget_percent="35",
                    service_type="Install",
                    property_id="44",
                ),
                job_row(job_id="12", labor_budget_percent=135.0),
            ]
        ),
        Job,
        "job_id",
    )
    assert list(jobs["job_id"]) == ["10", "11"]
    assert jobs["budget_amount"].iloc[0] == 5000.0 and jobs["labor_budget_percent"].iloc[1] == 35.0
    assert jobs["property_id"].iloc[1] == "44" and pd.isna(jobs["property_id"].iloc[0])
    assert rejected["reason"].iloc[0] == "labor_budget_percent: less_than_or_equal_to(100)"


def test_propay_opportunity_model() -> None:
    row = {
        "company_id": "acme",
        "propay_id": "10",
        "job_id": "10",
        "milestone_id": None,
        "name": "Smith patio",
        "budget_type": "hours",
        "budget_hours": 40.0,
        "budget_amount": 1000.0,
        "actual_hours": 30.0,
        "labor_cost": 750.0,
        "blended_wage": 25.0,
        "saved_hours": 10.0,
        "saved_amount": 250.0,
        "overage_hours": 0.0,
        "overage_amount": 0.0,
        "efficiency": 40 / 30,
        "pool_before_penalty": 125.0,
        "penalty_amount": 0.0,
        "bonus_pool": 125.0,
        "crew_bucket": 125.0,
        "crew_lead_bucket": 0.0,
        "manager_bucket": 0.0,
        "other_bucket": 0.0,
        "company_bucket": 0.0,
        "unclaimed_amount": 0.0,
        "paid_to_workers": 125.0,
        "kept_by_company": 0.0,
        "overtime_adjustment": 0.0,
        "disqualified": False,
        "disqualification_reason": None,
        "status": "completed",
        "worker_count": 3,
        "first_work_date": date(2026, 11, 1),
        "last_work_date": date(2026, 11, 3),
        "exclusion_reason": None,
        "settings_version": 1,
        "pay_state": "final",
        "no_bonus_reason": None,
        "began_before_pull_date": False,
        "actual_seconds": 108_000,
        "budget_unit": "hours",
        "budget_numerator": 40,
        "budget_denominator": 1,
        "labor_cost_numerator": 750,
        "labor_cost_denominator": 1,
    }
    over = row | {"propay_id": "11", "saved_hours": -5.0, "saved_amount": -1.0, "status": "done"}
    amount = row | {
        "propay_id": "12",
        "budget_type": "amount",
        "budget_hours": None,
        "saved_hours": None,
        "overage_hours": None,
        "efficiency": None,
    }
    valid, rejected = split_valid(pd.DataFrame([row, over, amount]), PropayOpportunity, "propay_id")
    assert list(valid["propay_id"]) == ["10", "12"] and valid["worker_count"].dtype == "int64"
    assert valid["disqualified"].dtype == bool and valid["budget_numerator"].tolist() == [40, 40]
    assert rejected["reason"].iloc[0] == (
        "saved_amount: greater_than_or_equal_to(0); status: isin(['pending', 'started', 'completed', 'canceled'])"
    )


def test_the_models_accept_the_engines_output_for_every_budget_type() -> None:
    jobs = pd.DataFrame(
        [
            job_row(job_id="1", name="Fence", budget_hours=80.0, status="completed"),
            job_row(job_id="2", name="HVAC", budget_type="amount", budget_amount=5000.0, budget_hours=None),
            job_row(job_id="3", name="Floor", budget_type="rate", rate=2.5, quantity=1200.0, budget_hours=None),
            job_row(
                job_id="4",
                name="Deck",
                budget_type="contract_price",
                contract_price=10000.0,
                labor_budget_percent=30.0,
                budget_hours=None,
            ),
            job_row(job_id="5", name="TEST job", budget_hours=10.0),
            job_row(job_id="6", name="Paint", budget_type="task_hours", budget_hours=None),
            job_row(job_id="7", name="Trim", budget_type="task_amount", budget_hours=None),
            job_row(job_id="8", name="Not started", budget_hours=5.0),
        ]
    )
    days = [date(2026, 11, 2) + pd.Timedelta(days=d) for d in range(6)]
    attendance = pd.DataFrame(
        [
            attendance_row(
                entry_id=f"{job}-{worker}-{day}",
                worker_id=worker,
                job_id=job,
                work_date=day,
                hours=9.0,
                start_at=None,
                end_at=None,
            )
            for job in ("1", "2", "3", "4", "5", "6", "7")
            for worker in ("7", "8")
            for day in days
        ]
    )
    workers = pd.DataFrame([worker_row(worker_id="7", hourly_wage=25.0), worker_row(worker_id="8", hourly_wage=20.0)])
    tasks = pd.DataFrame(
        {
            "propay_id": ["6", "6", "7"],
            "task": ["a", "b", "c"],
            "budget_hours": [60.0, 60.0, None],
            "budget_amount": [None, None, 3000.0],
        }
    )
    settings = CompanySettings(
        role_buckets={"crew": 0.7, "crew_lead": 0.2, "manager": 0.1},
        worker_roles={"8": "crew_lead"},
        exclusions={"name_patterns": ["TEST*"]},
        penalties={"2": 10.0},
        disqualifications={"3": "safety incident"},
    )
    result = compute_propays(jobs, attendance, workers, settings, "acme", task_budgets=tasks)
    opportunities, rejected = split_valid(result.opportunities, PropayOpportunity, "propay_id")
    assert rejected.empty and len(opportunities) == 8
    assert set(opportunities["budget_type"]) == {
        "hours",
        "amount",
        "rate",
        "contract_price",
        "task_hours",
        "task_amount",
    }
    assert opportunities.set_index("propay_id").loc["5", "exclusion_reason"].startswith("name matches")
    assert opportunities.set_index("propay_id").loc["3", "disqualified"]
    bonuses, rejected = split_valid(result.worker_bonuses, PropayWorkerBonus, "propay_id")
    assert rejected.empty and len(bonuses) == 14
    paid = bonuses.groupby("propay_id")["bonus"].sum().round(2)
    expected = opportunities.set_index("propay_id")["paid_to_workers"].loc[paid.index]
    assert (paid == expected).all()
    weeks, rejected = split_valid(result.overtime_weeks, PropayOvertimeWeek, "worker_id")
    assert rejected.empty and len(weeks) > 0 and (weeks["overtime_adjustment"] > 0).any()


def test_no_rejects_is_an_empty_set_aside_frame() -> None:
    empty = no_rejects()
    assert empty.empty and list(empty.columns) == ["record_id", "reason", "record"]
    valid, rejected = split_valid(pd.DataFrame([worker_row()]), Worker, "worker_id")
    assert len(valid) == 1 and list(rejected.columns) == list(empty.columns) and rejected.empty


def test_the_data_dictionary_is_current_and_describes_every_column() -> None:
    from pathlib import Path

    from protiv_dagster.data_dictionary import PAGE, dictionary_page
    from protiv_dagster.tables import ALL_TABLES
    from protiv_dagster.views import ALL_VIEWS

    root = Path(__file__).resolve().parents[1]
    assert (root / PAGE).read_text(encoding="utf-8") == dictionary_page(), (
        "docs/data-dictionary.md is stale: run `.venv/bin/python -m protiv_dagster.data_dictionary`"
    )
    for declared in (*ALL_TABLES, *ALL_VIEWS):
        assert declared.description and f"### {declared.name}\n" in dictionary_page()
        for column in declared.columns:
            # A description is a sentence: it becomes a column comment and the UI's column schema.
            assert column.description.endswith(".") and len(column.description.split()) >= 2, (
                declared.name,
                column.name,
            )
