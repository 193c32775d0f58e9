"""BusyBusy as it really behaves, synced through Dagster over real HTTP against the emulator.

- Projects nest up to 7 levels: time on any descendant belongs to the top-level project (the job)
  and counts to its ancestor at the company's milestone depth (2 by default).
- Labor is costed at the wage in force on each work date, from the wage histories (rules §9), with
  effective dates in the company's time zone.

The cases are set up through the emulator's control API; every expected figure is worked out by
hand below. The company is in America/Denver: UTC-7 in November, so 08:00 local is 15:00Z.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pandas as pd
import pytest
import requests

from protiv_emulators.generator import PAY_SALARIED
from tests.assets.conftest import COMPANY, SETTINGS

pytestmark = pytest.mark.parametrize("provider", ["busybusy"])


def control(pipeline, path: str, body: dict) -> dict:
    response = requests.post(f"{pipeline.emulator.control_url}/{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def add_entry(pipeline, member: str, project: str, start: str, end: str, breaks: list | None = None) -> str:
    body = {"memberId": member, "projectId": project, "startTime": start, "endTime": end, "breaks": breaks or []}
    return control(pipeline, "timeEntries", body)["id"]


def steady_worker(pipeline) -> str:
    """An hourly worker whose generated wage history changes nothing after 2026-11-08 (so the two
    changes the test adds are the only ones in force in the window)."""
    data = pipeline.harness.data
    worker = min(
        (
            w
            for w in data.workers
            if w.active
            and w.pay_interval != PAY_SALARIED
            and all(c.effective_date < date(2026, 11, 9) for c in w.wage_history)
        ),
        key=lambda w: w.id,
    )
    return pipeline.harness.vendor.member_id(worker.id)


def test_busybusy_time_on_sub_projects_down_to_depth_7_counts_to_the_job_and_its_depth_2_milestone(pipeline):
    member = steady_worker(pipeline)
    deck = control(pipeline, "projects", {"title": "Deck rebuild", "number": "D-7"})
    chain = [deck]
    for level, title in enumerate(("Framing", "Joists", "Hangers", "Bolts", "Washers", "Torque"), start=2):
        chain.append(control(pipeline, "projects", {"title": title, "parentProjectId": chain[-1]["id"]}))
        assert chain[-1]["depth"] == level
    framing, joists, torque = chain[1]["id"], chain[2]["id"], chain[6]["id"]
    stairs = control(pipeline, "projects", {"title": "Stairs", "parentProjectId": deck["id"]})["id"]
    control(pipeline, "budgets", {"projectId": framing, "hours": 20})
    entries = {
        # 2026-11-16 13:00-14:30 local on the milestone itself: 1.5 h
        "framing": add_entry(pipeline, member, framing, "2026-11-16T20:00:00Z", "2026-11-16T21:30:00Z"),
        # 2026-11-17 08:00-12:30 local with a 30-minute break, on the depth-7 project: 4 h
        "torque": add_entry(
            pipeline,
            member,
            torque,
            "2026-11-17T15:00:00Z",
            "2026-11-17T19:30:00Z",
            [{"startTime": "2026-11-17T17:00:00Z", "endTime": "2026-11-17T17:30:00Z"}],
        ),
        # 2026-11-18 08:00-11:30 local on the depth-3 project: 3.5 h
        "joists": add_entry(pipeline, member, joists, "2026-11-18T15:00:00Z", "2026-11-18T18:30:00Z"),
        # 2026-11-18 13:00-13:45 local on the top-level project: 0.75 h, no milestone
        "deck": add_entry(pipeline, member, deck["id"], "2026-11-18T20:00:00Z", "2026-11-18T20:45:00Z"),
    }

    pipeline.sync()

    jobs = pipeline.warehouse.read_table("jobs", where={"company_id": COMPANY}).set_index("job_id")
    # The job and its depth-2 milestones have rows; the depth-3..7 projects have none (not set aside).
    assert jobs.loc[deck["id"], "level"] == "job"
    assert jobs.loc[[framing, stairs], "level"].tolist() == ["milestone", "milestone"]
    assert jobs.loc[[framing, stairs], "parent_job_id"].tolist() == [deck["id"], deck["id"]]
    assert not set(p["id"] for p in chain[2:]) & set(jobs.index)
    rows = pipeline.attendance().set_index("entry_id").loc[list(entries.values())]
    rows.index = list(entries)
    assert (rows["job_id"] == deck["id"]).all()
    assert rows.loc[["framing", "torque", "joists"], "milestone_id"].tolist() == [framing] * 3
    assert pd.isna(rows.loc["deck", "milestone_id"])
    assert rows["hours"].to_dict() == {"framing": 1.5, "torque": 4.0, "joists": 3.5, "deck": 0.75}
    assert rows["work_date"].astype(str).tolist() == ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-18"]
    # Framing: 1.5 + 4 + 3.5 = 9 hours; the job: 9.75. The job (never recurring on BusyBusy) gets the
    # one ProPay, its budget the milestone's 20 h x the company's 150 % = 30 h.
    propays = pipeline.warehouse.read_table("propay_opportunities", where={"company_id": COMPANY}).set_index(
        "propay_id"
    )
    propay = propays.loc[deck["id"]]
    assert propay["budget_hours"] == 30.0
    assert propay["actual_hours"] == 9.75


def test_busybusy_labor_is_costed_at_the_wage_in_force_on_each_local_work_date(pipeline):
    member = steady_worker(pipeline)
    # $30 from 2026-11-09; the raise to $36 five days before the sync (2026-11-20): from 2026-11-15,
    # both effective at local midnight (07:00Z).
    control(pipeline, f"members/{member}/wages", {"wage": 30, "changeDate": "2026-11-09T07:00:00Z"})
    control(pipeline, f"members/{member}/wages", {"wage": 36, "changeDate": "2026-11-15T07:00:00Z"})
    fence = control(pipeline, "projects", {"title": "Fence at the school", "number": "F-1"})["id"]
    control(pipeline, "budgets", {"projectId": fence, "hours": 20})
    # 2026-11-13 08:00-15:45 local, 30-minute lunch: 7 h 15 min = 26,100 s at $30 = $217.50
    add_entry(
        pipeline,
        member,
        fence,
        "2026-11-13T15:00:00Z",
        "2026-11-13T22:45:00Z",
        [{"startTime": "2026-11-13T19:00:00Z", "endTime": "2026-11-13T19:30:00Z"}],
    )
    # 2026-11-14 17:00-18:00 local, i.e. already 2026-11-15 in UTC: still the 14th, 3,600 s at $30 = $30.00
    add_entry(pipeline, member, fence, "2026-11-15T00:00:00Z", "2026-11-15T01:00:00Z")
    # 2026-11-15 08:00-09:00 local, the raise's first day: 3,600 s at $36 = $36.00
    add_entry(pipeline, member, fence, "2026-11-15T15:00:00Z", "2026-11-15T16:00:00Z")
    # 2026-11-17 07:00:00-10:20:20 local: 12,020 s at $36 = $120.20
    add_entry(pipeline, member, fence, "2026-11-17T14:00:00Z", "2026-11-17T17:20:20Z")
    # Total 26,100 + 3,600 + 3,600 + 12,020 = 45,320 s; 217.50 + 30 + 36 + 120.20 = $403.70 exactly.

    pipeline.sync()

    wages = pipeline.warehouse.read_table("worker_wages", where={"company_id": COMPANY, "worker_id": member})
    by_day = dict(zip(wages["effective_date"].astype(str), wages["hourly_wage"].astype(float)))
    assert by_day["2026-11-09"] == 30.0 and by_day["2026-11-15"] == 36.0
    assert not [day for day in by_day if day > "2026-11-09" and day != "2026-11-15"]
    bonuses = pipeline.warehouse.read_table("propay_worker_bonuses", where={"company_id": COMPANY, "propay_id": fence})
    assert bonuses["worker_id"].tolist() == [member]
    row = bonuses.iloc[0]
    assert int(row["seconds"]) == 45_320
    assert int(row["wage_count"]) == 2  # two wages in force over the entries: $30 and $36
    assert Fraction(int(row["labor_cost_numerator"]), int(row["labor_cost_denominator"])) == Fraction(4037, 10)
    assert float(row["labor_cost"]) == 403.70
    # At today's $36 for every hour it would be 45,320 / 3,600 x 36 = $453.20: $49.50 too much.
    propay = pipeline.warehouse.read_table(
        "propay_opportunities", where={"company_id": COMPANY, "propay_id": fence}
    ).iloc[0]
    assert float(propay["labor_cost"]) == 403.70
    assert Fraction(int(propay["labor_cost_numerator"]), int(propay["labor_cost_denominator"])) == Fraction(4037, 10)
    assert SETTINGS["budget_modification_percent"] == 150 and float(propay["budget_hours"]) == 30.0
