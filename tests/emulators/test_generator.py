"""The seeded company generator: determinism, bounds, and every realism promise for small and large companies."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from statistics import median
from zoneinfo import ZoneInfo

import pytest

from protiv_emulators.generator import (
    DRIVE_JOB_NAME,
    TASK_NAMES,
    CompanyData,
    Shift,
    generate_company,
)

AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)

# Small companies are where a "at least one" promise is most likely to break.
COMPANY_SHAPES = [(5, 0), (5, 1), (6, 2), (12, 3), (25, 4), (60, 5)]


@pytest.fixture(scope="module", params=COMPANY_SHAPES, ids=[f"{w}workers-seed{s}" for w, s in COMPANY_SHAPES])
def company(request) -> CompanyData:
    workers, seed = request.param
    return generate_company(f"company-{seed}", seed=seed, workers=workers, days=14, as_of=AS_OF)


def _local(company: CompanyData, moment: datetime) -> datetime:
    return moment.astimezone(company.zone)


def _clocked(company: CompanyData) -> list[Shift]:
    return [s for s in company.shifts if not s.manual and not s.on_the_clock]


# -- determinism and arguments ---------------------------------------------------------------------
def test_same_arguments_give_identical_data():
    first = generate_company("acme", seed=7, workers=30, days=14, as_of=AS_OF)
    second = generate_company("acme", seed=7, workers=30, days=14, as_of=AS_OF)
    assert first == second
    assert repr(first) == repr(second)


def test_a_different_seed_or_company_gives_different_data():
    base = generate_company("acme", seed=7, workers=30, as_of=AS_OF)
    assert generate_company("acme", seed=8, workers=30, as_of=AS_OF).shifts != base.shifts
    assert generate_company("other", seed=7, workers=30, as_of=AS_OF).shifts != base.shifts


def test_naming_the_drawn_time_zone_changes_nothing():
    drawn = generate_company("acme", seed=3, workers=10, as_of=AS_OF)
    named = generate_company("acme", seed=3, workers=10, as_of=AS_OF, timezone=drawn.timezone)
    assert named == drawn


def test_default_as_of_is_todays_midnight_utc():
    company = generate_company("acme", workers=5)
    assert company.as_of == datetime.combine(date.today(), time(0), tzinfo=UTC)


@pytest.mark.parametrize("workers", [4, 501, 0, -3])
def test_worker_count_outside_5_to_500_is_refused(workers):
    with pytest.raises(ValueError, match="workers must be an integer from 5 to 500"):
        generate_company("acme", workers=workers, as_of=AS_OF)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"days": 3}, "days must be"),
        ({"as_of": datetime(2026, 11, 20)}, "timezone-aware UTC"),
        ({"as_of": datetime(2026, 11, 20, tzinfo=timezone(timedelta(hours=-5)))}, "timezone-aware UTC"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown IANA time zone"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(arguments, message):
    with pytest.raises(ValueError, match=message):
        generate_company("acme", **{"as_of": AS_OF, **arguments})


def test_500_workers_make_a_large_company():
    # How fast is for bench/ (a timed assertion here failed under load); what is made is checked here.
    company = generate_company("big", seed=1, workers=500, days=14, as_of=AS_OF)
    assert len(company.workers) == 500
    assert len(company.jobs) == 150 + 1
    assert len(company.shifts) > 10_000


# -- people --------------------------------------------------------------------------------------
def test_workers_have_roles_wages_and_employment_dates(company: CompanyData):
    workers = company.workers
    assert len(workers) == len({w.id for w in workers})
    assert all(1_000_000 <= w.id <= 9_999_999 for w in workers)
    roles = defaultdict(list)
    for worker in workers:
        roles[worker.role].append(worker)
    assert 1 <= len(roles["manager"]) <= 2
    assert roles["crew_lead"] and roles["crew"]
    assert len(roles["crew"]) >= len(roles["crew_lead"]) * 2
    for worker in workers:
        assert Decimal("16.00") <= worker.hourly_wage <= Decimal("48.00")
        assert worker.hourly_wage == worker.hourly_wage.quantize(Decimal("0.01"))
        assert worker.created_at <= worker.modified_at <= company.as_of
        assert worker.hire_date < company.first_local_date
        if worker.pay_interval == "year":
            assert worker.annual_salary == worker.hourly_wage * 2080
        else:
            assert worker.pay_interval == "hour" and worker.annual_salary is None
        assert worker.active == (worker.term_date is None)
    assert any(w.pay_interval == "year" for w in workers)
    # Leads and managers earn more than the crew on average.
    average = lambda ws: sum(w.hourly_wage for w in ws) / len(ws)  # noqa: E731
    assert average(roles["crew_lead"] + roles["manager"]) > average(roles["crew"])


def test_an_inactive_worker_has_no_time_after_the_termination_date(company: CompanyData):
    terminated = [w for w in company.workers if not w.active]
    assert terminated, "every company has at least one terminated worker"
    in_window = [w for w in terminated if w.term_date >= company.first_local_date]
    assert in_window, "one worker leaves inside the window, so the rule is really exercised"
    for worker in terminated:
        entries = [s for s in company.shifts + company.deleted_shifts if s.worker_id == worker.id]
        assert all(s.local_date <= worker.term_date for s in entries)
    assert any(s.worker_id == in_window[0].id for s in company.shifts), "worked before leaving"


# -- jobs ---------------------------------------------------------------------------------------
def test_jobs_milestones_and_budgets(company: CompanyData):
    customer_jobs = [j for j in company.jobs if not j.is_drive]
    assert len(customer_jobs) == min(150, max(3, len(company.workers) // 3))
    drive = [j for j in company.jobs if j.is_drive]
    assert len(drive) == 1 and drive[0].name == DRIVE_JOB_NAME == company.drive_job.name
    assert drive[0].budget_hours is None and not company.milestones_of(drive[0].id)

    ids = [j.id for j in company.jobs] + [m.id for m in company.milestones]
    assert len(ids) == len(set(ids)), "jobs and milestones share one id space"
    assert len({j.name for j in company.jobs}) == len(company.jobs)

    with_milestones = [j for j in customer_jobs if company.milestones_of(j.id)]
    without = [j for j in customer_jobs if not company.milestones_of(j.id)]
    assert with_milestones and without
    for job in with_milestones:
        assert 2 <= len(company.milestones_of(job.id)) <= 5
        assert job.budget_hours is None, "the budget lives on the milestones"
    assert any(j.budget_hours is not None for j in without)
    budgets = [j.budget_hours for j in without] + [m.budget_hours for m in company.milestones]
    for budget in filter(None, budgets):
        assert budget > 0 and round(budget, 2) == budget
    assert {j.status for j in customer_jobs} >= {"open", "completed"}
    assert sum(j.status == "open" for j in customer_jobs) > len(customer_jobs) / 2
    for record in company.jobs + company.milestones:
        assert record.created_at <= record.modified_at <= company.as_of
        assert record.status in ("open", "completed", "canceled")
    assert all(" – " in j.name for j in customer_jobs)


def test_budgets_are_sensible_next_to_the_hours_worked():
    company = generate_company("budgets", seed=11, workers=120, as_of=AS_OF)
    worked = defaultdict(float)
    for shift in company.shifts:
        worked[shift.milestone_id or shift.job_id] += shift.duration_seconds / 3600
    ratios = [m.budget_hours / worked[m.id] for m in company.milestones if m.budget_hours and worked[m.id] > 8]
    ratios += [j.budget_hours / worked[j.id] for j in company.jobs if j.budget_hours and worked[j.id] > 8]
    assert ratios
    assert all(0.7 <= r <= 1.4 for r in ratios)
    assert any(r > 1 for r in ratios) and any(r < 1 for r in ratios), "some crews beat the budget, some do not"


# -- time entries ---------------------------------------------------------------------------------
def test_time_entries_stay_inside_the_window_and_before_as_of(company: CompanyData):
    everything = company.shifts + company.deleted_shifts
    ids = [s.id for s in everything]
    assert len(ids) == len(set(ids))
    for shift in everything:
        assert company.first_local_date <= shift.local_date <= company.last_local_date
        moments = [shift.created_at, shift.modified_at, shift.start, shift.end, shift.deleted_at]
        moments += [moment for pair in shift.breaks for moment in pair]
        assert all(m <= company.as_of for m in moments if m is not None), shift
        assert shift.created_at <= shift.modified_at
        if shift.start is not None:
            assert _local(company, shift.start).date() == shift.local_date
            assert shift.created_at == shift.start or shift.deleted_at
        assert shift.worker_id in {w.id for w in company.workers}
        if shift.milestone_id is not None:
            assert company.milestone_by_id(shift.milestone_id).job_id == shift.job_id
        else:
            assert not company.milestones_of(shift.job_id), "time on a job with milestones names one"


def test_worked_seconds_exclude_unpaid_breaks(company: CompanyData):
    with_breaks = [s for s in _clocked(company) if s.breaks]
    assert with_breaks
    for shift in _clocked(company):
        breaks = sum((end - start).total_seconds() for start, end in shift.breaks)
        assert shift.duration_seconds == int((shift.end - shift.start).total_seconds() - breaks)
        for start, end in shift.breaks:
            assert shift.start < start < end < shift.end


def test_a_worker_is_never_in_two_places_at_once(company: CompanyData):
    by_worker = defaultdict(list)
    for shift in company.shifts:
        if shift.start is not None:
            by_worker[shift.worker_id].append(shift)
    for shifts in by_worker.values():
        shifts.sort(key=lambda s: s.start)
        for earlier, later in zip(shifts, shifts[1:]):
            assert earlier.end is not None and earlier.end <= later.start


def _crew_days(company: CompanyData) -> list[list[Shift]]:
    """Each crew worker's entries per local date, leaving out the day of the sheet still running."""
    crew = {w.id for w in company.workers if w.role in ("crew", "crew_lead")}
    days = defaultdict(list)
    for shift in company.shifts:
        if shift.worker_id in crew:
            days[(shift.worker_id, shift.local_date)].append(shift)
    return [day for day in days.values() if not any(s.on_the_clock for s in day)]


def test_crews_work_days_of_6_to_10_hours_split_over_1_to_3_jobs(company: CompanyData):
    days = _crew_days(company)
    # as_of may fall in the middle of the last work day: its entries so far are a partial day.
    totals = [
        sum(s.duration_seconds for s in day) / 3600 for day in days if day[0].local_date < company.last_local_date
    ]
    assert 6 <= median(totals) <= 10.25, "6-10 h, give or take each worker's clock seconds"
    assert sum(5.5 <= t <= 10.5 for t in totals) >= 0.9 * len(totals)
    job_entries = [sum(not s.is_drive for s in day) for day in days]
    assert all(1 <= n <= 3 for n in job_entries)
    assert any(n >= 2 for n in job_entries), "some days are split across jobs"
    first_starts = [_local(company, min(s.start for s in day)).time() for day in days if all(s.start for s in day)]
    night_starts = [t for t in first_starts if t >= time(19)]
    assert 1 <= len(night_starts) <= 3, "one night shift for one to three people"
    assert all(time(6) <= t <= time(8, 30) for t in first_starts if t < time(19)), "day crews clock in around 07:00"


def test_crews_work_monday_to_saturday():
    company = generate_company("week", seed=2, workers=200, days=28, as_of=AS_OF)
    worker_days = {(s.worker_id, s.local_date) for s in company.shifts}
    by_weekday = [sum(day.weekday() == weekday for _, day in worker_days) / len(worker_days) for weekday in range(7)]
    assert sum(by_weekday[:5]) > 0.8
    assert 0.04 < by_weekday[5] < 0.15, "Saturdays for about half the crews"
    assert by_weekday[6] < 0.02, "Sundays rarely"


def test_drive_entries_last_15_to_45_minutes_on_the_drive_job(company: CompanyData):
    drives = [s for s in company.shifts if s.is_drive]
    assert drives
    for shift in drives:
        assert shift.job_id == company.drive_job.id and shift.milestone_id is None
        assert 15 * 60 <= shift.duration_seconds <= 45 * 60
    assert all(not s.is_drive for s in company.shifts if s.job_id != company.drive_job.id)


def test_some_entries_are_manual(company: CompanyData):
    manual = [s for s in company.shifts if s.manual]
    assert manual
    assert len(manual) <= 0.12 * len(company.shifts) or len(manual) <= 3
    for shift in manual:
        assert shift.start is None and shift.end is None and not shift.breaks
        assert shift.duration_seconds > 0 and shift.duration_seconds % 900 == 0
        assert shift.created_at.astimezone(company.zone).date() > shift.local_date


def test_a_night_shift_crosses_local_midnight(company: CompanyData):
    crossing = [s for s in _clocked(company) if _local(company, s.start).date() != _local(company, s.end).date()]
    assert crossing
    assert all(s.local_date == _local(company, s.start).date() for s in crossing)


def test_exactly_one_entry_is_still_on_the_clock(company: CompanyData):
    running = [s for s in company.shifts if s.on_the_clock]
    assert len(running) == 1
    shift = running[0]
    assert shift is company.on_the_clock_shift
    assert shift.end is None and shift.start is not None and not shift.manual
    assert timedelta(hours=1) <= company.as_of - shift.start <= timedelta(hours=5)
    assert shift.duration_seconds == int((company.as_of - shift.start).total_seconds())
    assert company.first_local_date <= shift.local_date <= company.last_local_date
    assert company.worker_by_id(shift.worker_id).active
    assert all(s.end is not None or s.manual for s in company.shifts if s is not shift)


def test_some_entries_were_edited_days_later_with_a_changed_duration(company: CompanyData):
    edited = [s for s in company.shifts if s.original_duration_seconds is not None]
    assert len(edited) >= 2
    for shift in edited:
        assert shift.original_duration_seconds != shift.duration_seconds
        assert _local(company, shift.modified_at).date() >= shift.local_date + timedelta(days=1)
        assert shift.notes


def test_some_entries_were_deleted_days_later(company: CompanyData):
    deleted = company.deleted_shifts
    assert len(deleted) >= 3
    live_ids = {s.id for s in company.shifts}
    for shift in deleted:
        assert shift.deleted_at is not None and shift.id not in live_ids
        assert _local(company, shift.deleted_at).date() >= shift.local_date + timedelta(days=1)
    assert all(s.deleted_at is None for s in company.shifts)


def test_local_wall_clock_times_follow_the_end_of_daylight_saving_time():
    """Denver leaves MDT (UTC-6) for MST (UTC-7) on Sunday 1 November 2026 at 02:00."""
    company = generate_company(
        "dst", seed=5, workers=40, days=7, as_of=datetime(2026, 11, 3, 0, 0, tzinfo=UTC), timezone="America/Denver"
    )
    denver = ZoneInfo("America/Denver")
    friday, monday = date(2026, 10, 30), date(2026, 11, 2)
    offsets: dict[date, set[float]] = defaultdict(set)
    first_utc_hours: dict[date, list[int]] = defaultdict(list)
    day_entries = defaultdict(list)
    for shift in _clocked(company):
        offsets[shift.local_date].add(shift.start.astimezone(denver).utcoffset().total_seconds() / 3600)
        day_entries[(shift.worker_id, shift.local_date)].append(shift)
    for (_, day), entries in day_entries.items():
        first = min(s.start for s in entries)
        if time(6) <= first.astimezone(denver).time() <= time(8, 30):
            first_utc_hours[day].append(first.astimezone(UTC).hour - first.astimezone(denver).hour)
    assert offsets[friday] == {-6.0} and offsets[monday] == {-7.0}
    # The same 06:30-08:00 wall-clock start is an hour later in UTC after the change.
    assert set(first_utc_hours[friday]) == {6} and set(first_utc_hours[monday]) == {7}
    for shift in _clocked(company):
        assert shift.start.tzinfo is UTC and shift.end.tzinfo is UTC


# -- wage histories, creation dates, line items and crew leads ---------------------------------------------
def _fingerprint(company: CompanyData) -> str:
    """What the generator drew before wage histories, creation dates, line items and crew leads were
    added (their values included, so any change to the first random stream shows)."""
    parts = [
        repr(
            [
                (
                    w.id,
                    w.first_name,
                    w.last_name,
                    w.role,
                    str(w.hourly_wage),
                    w.hire_date,
                    w.term_date,
                    w.created_at,
                    w.modified_at,
                )
                for w in company.workers
            ]
        ),
        repr(
            [
                (
                    s.id,
                    s.worker_id,
                    s.job_id,
                    s.milestone_id,
                    s.local_date,
                    s.start,
                    s.end,
                    s.duration_seconds,
                    s.breaks,
                    s.manual,
                    s.notes,
                    s.created_at,
                    s.modified_at,
                    s.deleted_at,
                )
                for s in company.shifts + company.deleted_shifts
            ]
        ),
        repr([(j.id, j.name, j.budget_hours, j.status, j.recurring) for j in company.jobs]),
        repr([(m.id, m.job_id, m.name, m.budget_hours, m.status) for m in company.milestones]),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("arguments", "fingerprint"),
    [
        (("acme", 7, 30), "699620cd3c04e11d"),
        (("company-0", 0, 5), "e93445947693e3f4"),
        (("budgets", 11, 120), "1ba38524507fac2e"),
    ],
)
def test_the_additions_leave_what_was_generated_before_them_unchanged(arguments, fingerprint):
    company_id, seed, workers = arguments
    assert _fingerprint(generate_company(company_id, seed=seed, workers=workers, days=14, as_of=AS_OF)) == fingerprint


def test_wage_histories_start_at_hire_and_some_workers_got_a_raise_days_ago(company: CompanyData):
    raised = [w for w in company.workers if len(w.wage_history) == 2]
    assert raised, "at least one raise"
    for worker in company.workers:
        first, *later = worker.wage_history
        assert first.effective_date == worker.hire_date
        assert worker.wage_history[-1].hourly_wage == worker.hourly_wage
        assert worker.wage_on(company.last_local_date) == worker.hourly_wage
    for worker in raised:
        old, new = worker.wage_history
        assert worker.active and worker.pay_interval == "hour"
        assert timedelta(days=2) <= company.last_local_date - new.effective_date <= timedelta(days=6)
        assert Decimal("1.00") <= new.hourly_wage - old.hourly_wage <= Decimal("4.00")
        assert worker.wage_on(new.effective_date - timedelta(days=1)) == old.hourly_wage
        assert worker.wage_on(new.effective_date) == new.hourly_wage


def test_most_jobs_were_created_in_the_window_before_their_first_time(company: CompanyData):
    pull_date = company.first_local_date
    customer = [j for j in company.jobs if not j.is_drive]
    created = {j.id: j.created_at.astimezone(company.zone).date() for j in customer}
    before = [j for j in customer if created[j.id] < pull_date]
    assert before and len(before) < len(customer), "some jobs began before a typical pull date, most after"
    assert sum(created[j.id] >= pull_date for j in customer) >= len(customer) / 2
    for shift in company.shifts + company.deleted_shifts:
        job = company.job_by_id(shift.job_id)
        unit = company.milestone_by_id(shift.milestone_id) if shift.milestone_id else job
        moment = shift.start or datetime.combine(shift.local_date, time(6), tzinfo=company.zone)
        assert job.created_at <= unit.created_at <= moment, shift
    for milestone in company.milestones:
        assert (
            company.job_by_id(milestone.job_id).created_at
            < milestone.created_at
            <= milestone.modified_at
            <= company.as_of
        )


def test_line_items_group_a_jobs_milestones_and_book_their_time(company: CompanyData):
    assert company.task_lines, "the first non-recurring job with milestones has line items"
    assert len({t.id for t in company.task_lines}) == len(company.task_lines)
    booked = set()
    for line in company.task_lines:
        milestones = company.milestones_of(line.job_id)
        assert line.milestone_ids and set(line.milestone_ids) <= {m.id for m in milestones}
        assert line.name in TASK_NAMES and line.budget_hours > 0
        assert all(company.milestone_by_id(m).task_id == line.id for m in line.milestone_ids)
        booked |= set(line.milestone_ids)
    for job_id in {line.job_id for line in company.task_lines}:
        assert {m.id for m in company.milestones_of(job_id)} <= booked, "every milestone of such a job is on one line"
        assert len({line.name for line in company.task_lines_of(job_id)}) == len(company.task_lines_of(job_id))
    for shift in company.shifts + company.deleted_shifts:
        assert shift.task_id == (company.milestone_by_id(shift.milestone_id).task_id if shift.milestone_id else None)
    assert any(s.task_id is not None for s in company.shifts)


def test_work_units_name_the_lead_of_the_crew_doing_them(company: CompanyData):
    leads = {crew[0] for crew in company.crews}
    assert all(company.worker_by_id(lead).role == "crew_lead" for lead in leads)
    crew_members = {w for crew in company.crews for w in crew}
    assert all(company.worker_by_id(w).role in ("crew", "crew_lead") for w in crew_members)
    for milestone in company.milestones:
        assert milestone.crew_lead_id in leads and milestone.crew_lead_id in company.crew_leads_of(milestone.id)
    for job in company.jobs:
        if job.is_drive or company.milestones_of(job.id):
            assert job.crew_lead_id is None
        else:
            assert job.crew_lead_id in leads
    for worker in company.workers:
        lead = company.crew_lead_of(worker.id)
        assert (lead is None) == (worker.id not in crew_members)
