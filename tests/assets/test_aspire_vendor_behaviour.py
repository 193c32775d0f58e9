"""Four ways Aspire really behaves, synced through Dagster over real HTTP from the Aspire emulator
(found by an outside check with an independently written Aspire server): distributed ticket time
inside the clock time, the ticket's status on a "Won" opportunity, a recurring opportunity with one
ticket, and a running ticket time whose ``Hours`` is still null."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pandas as pd
import pytest

from protiv_dagster.vendors.aspire.mapping import CLOCK_ENTRY_PREFIX, MILESTONE_PREFIX
from protiv_emulators.aspire import IMPLICIT_TICKET_BASE
from tests.assets.conftest import AS_OF, COMPANY, PULL_DATE

pytestmark = pytest.mark.parametrize("provider", ["aspire"])


def one_ticket_jobs(data, *, recurring: bool = False) -> list:
    """Open generated jobs without milestones (one implicit ticket in Aspire) with time since the pull date."""
    with_time = {s.job_id for s in data.shifts if not s.is_drive and s.local_date >= PULL_DATE}
    return [
        j
        for j in data.jobs
        if not j.is_drive
        and not data.milestones_of(j.id)
        and j.status == "open"
        and j.recurring == recurring
        and j.id in with_time
    ]


def propays(pipeline) -> pd.DataFrame:
    return pipeline.warehouse.read_table("propay_opportunities", where={"company_id": COMPANY}).set_index("propay_id")


def test_aspire_distributed_ticket_hours_stay_inside_the_days_clock_time(pipeline, provider):
    vendor, data = pipeline.harness.vendor, pipeline.harness.data
    job = one_ticket_jobs(data)[0]
    ticket = IMPLICIT_TICKET_BASE + job.id
    # A worker and a day since the pull date on which they have no time at all.
    day = PULL_DATE + timedelta(days=1)
    while True:
        busy = {
            t["ContactID"] for t in vendor.records("WorkTicketTimes") if t["WorkTicketTimeDate"][:10] == day.isoformat()
        }
        busy |= {c["ContactID"] for c in vendor.records("ClockTimes") if c["ClockStart"][:10] == day.isoformat()}
        free = [w for w in data.workers if w.active and w.id not in busy]
        if free:
            break
        day += timedelta(days=1)
    worker = free[0].id
    # 07:00-17:30 on the clock (10.5 h); 07:30-12:30 on the ticket (5.0 h) and 4.0 h distributed onto it.
    vendor.add_clock_time(ContactID=worker, ClockStart=f"{day}T07:00:00", ClockEnd=f"{day}T17:30:00")
    timed = vendor.add_work_ticket_time(
        ContactID=worker, WorkTicketID=ticket, StartTime=f"{day}T07:30:00", EndTime=f"{day}T12:30:00"
    )
    distributed = vendor.add_distributed_time(
        ContactID=worker, WorkTicketID=ticket, WorkTicketTimeDate=str(day), Hours=4.0
    )
    assert distributed["StartTime"] is None and distributed["EndTime"] is None and distributed["DistributedTime"]
    pipeline.sync()
    attendance = pipeline.attendance()
    day_rows = attendance[(attendance["worker_id"] == str(worker)) & (attendance["work_date"] == day)].set_index(
        "entry_id"
    )
    clock_id = next(
        c["ClockTimeID"]
        for c in vendor.records("ClockTimes")
        if c["ContactID"] == worker and c["ClockStart"][:10] == day.isoformat()
    )
    drive = 10.5 - 5.0 - 4.0  # the clock time not on a ticket: 1.5 h, not 5.5 h (a day of 14.5 h)
    assert day_rows["hours"].astype(float).to_dict() == {
        str(timed["WorkTicketTimeID"]): 5.0,
        str(distributed["WorkTicketTimeID"]): 4.0,
        f"{CLOCK_ENTRY_PREFIX}{clock_id}": drive,
    }
    assert day_rows["hours"].astype(float).sum() == 10.5
    assert day_rows.loc[f"{CLOCK_ENTRY_PREFIX}{clock_id}", "is_drive"]


def test_aspire_a_won_opportunitys_one_ticket_cancels_or_completes_its_propay(pipeline, provider):
    vendor, data = pipeline.harness.vendor, pipeline.harness.data
    # One-off opportunities ("Work Order") with one ticket: the generated contracts among them become one-off.
    single = one_ticket_jobs(data) + one_ticket_jobs(data, recurring=True)
    for job in single:
        if job.recurring:
            vendor.edit_opportunity(job.id, OpportunityType="Work Order")
    pipeline.sync()
    before = propays(pipeline)
    paying = [j for j in single if str(j.id) in before.index and float(before.loc[str(j.id), "bonus_pool"]) > 0]
    assert paying, "the company needs a one-ticket job that pays"
    cancelled = paying[0]
    completed = next(j for j in single if j is not cancelled and str(j.id) in before.index)
    assert before.loc[[str(cancelled.id), str(completed.id)], "status"].tolist() == ["started", "started"]
    vendor.edit_work_ticket(IMPLICIT_TICKET_BASE + cancelled.id, WorkTicketStatusName="Cancelled")
    vendor.edit_work_ticket(
        IMPLICIT_TICKET_BASE + completed.id,
        WorkTicketStatusName="Complete",
        CompleteDate=(AS_OF - timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds"),
    )
    # The opportunities still say "Won" and "In Progress": the tickets carry the news.
    opportunities = {o["OpportunityID"]: o for o in vendor.records("Opportunities")}
    assert {opportunities[j.id]["OpportunityStatusName"] for j in (cancelled, completed)} == {"Won"}
    pipeline.sync()
    after = propays(pipeline)
    jobs = pipeline.warehouse.read_table("jobs", where={"company_id": COMPANY}).set_index("job_id")
    assert jobs.loc[[str(cancelled.id), str(completed.id)], "status"].tolist() == ["canceled", "completed"]
    assert after.loc[str(cancelled.id), "status"] == "canceled"
    assert float(after.loc[str(cancelled.id), "bonus_pool"]) == 0.0  # canceled pays nothing (it had a pool before)
    assert after.loc[str(completed.id), "status"] == "completed"
    # Completing changes no figure: the same hours, budget and pool, now final.
    for column in ("actual_hours", "budget_hours", "bonus_pool"):
        assert float(after.loc[str(completed.id), column]) == float(before.loc[str(completed.id), column]), column


def test_aspire_a_recurring_opportunity_with_one_ticket_gets_one_propay_for_it(pipeline, provider):
    vendor, data = pipeline.harness.vendor, pipeline.harness.data
    job = one_ticket_jobs(data)[0]
    ticket = IMPLICIT_TICKET_BASE + job.id
    vendor.edit_opportunity(job.id, OpportunityType="Contract")  # a maintenance contract
    vendor.edit_work_ticket(ticket, HoursEst=200.0)
    pipeline.sync()
    propay_id = MILESTONE_PREFIX + str(ticket)
    table = propays(pipeline)
    assert propay_id in table.index, "the recurring job's only ticket is its ProPay"
    row = table.loc[propay_id]
    assert (row["job_id"], row["milestone_id"]) == (str(job.id), propay_id)
    # Its figures from the vendor's rows: every ticket time since the pull date, and the budget of
    # 200 h scaled by the company's budget modification of 150 %.
    hours = sum(
        Fraction(str(t["Hours"]))
        for t in vendor.records("WorkTicketTimes")
        if t["WorkTicketID"] == ticket
        and t["WorkTicketTimeDate"][:10] >= PULL_DATE.isoformat()
        and t["Hours"] is not None
    )
    assert float(row["actual_hours"]) == pytest.approx(float(hours), abs=1e-4)
    assert float(row["budget_hours"]) == 300.0
    # Every job and milestone without a ProPay says why; the job itself is placed (its unit pays).
    without = pipeline.warehouse.read_table("jobs_without_propay", where={"company_id": COMPANY})
    assert without["reason"].notna().all() and (without["reason"].str.len() > 0).all()
    assert str(job.id) not in set(without["item_id"])
    jobs = pipeline.warehouse.read_table("jobs", where={"company_id": COMPANY})
    named = set(table.index) | set(without["item_id"])
    for unit in jobs.loc[jobs["recurring"].astype(bool) & (jobs["level"] == "milestone"), "job_id"]:
        assert unit in named, f"recurring milestone {unit} has neither a ProPay nor a reason"


def test_aspire_a_running_ticket_time_is_on_the_clock_up_to_the_vendors_clock(pipeline, provider):
    vendor, data = pipeline.harness.vendor, pipeline.harness.data
    running = [t for t in vendor.records("WorkTicketTimes") if t["StartTime"] and not t["EndTime"]]
    assert running and all(t["Hours"] is None for t in running)  # Aspire fills Hours at clock-out
    pipeline.sync()
    attendance = pipeline.attendance().set_index("entry_id")
    rejected = pipeline.warehouse.read_table("rejected_rows")
    assert not rejected["record_id"].astype(str).isin([str(t["WorkTicketTimeID"]) for t in running]).any()
    for time in running:
        row = attendance.loc[str(time["WorkTicketTimeID"])]
        start = datetime.fromisoformat(time["StartTime"]).replace(tzinfo=data.zone).astimezone(UTC)
        # Counted up to the vendor's clock (the answer's Date: the emulator's as_of), breaks excluded.
        expected = (AS_OF - start).total_seconds() / 3600 - time["BreakTime"]
        assert bool(row["on_the_clock"]) and pd.isna(row["end_at"])
        assert float(row["hours"]) == pytest.approx(expected, abs=1e-6)
        assert expected > 0
