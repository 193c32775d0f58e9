"""Seeded, vendor-neutral companies for the sandbox: crews, jobs with budgets, and their time entries.

Every vendor emulator (QuickBooks Time today; Aspire and BusyBusy later) renders the *same*
``CompanyData`` in its own protocol, so nothing here knows any vendor's field names or quirks.

Determinism: all randomness comes from one ``random.Random`` seeded with the company id and the
seed, and no set or dict of strings is iterated, so the same arguments give identical data in every
process. The default ``as_of`` is today's midnight UTC: two runs on the same day agree, and no
generated timestamp ever lies in the future.

What a generated company looks like (each point holds for every company, because tests rely on it):

- 1-2 managers; crews of one lead and mostly 5-8 members (the last crew takes whoever is left, so
  a tiny company has one crew of 3-4); a few workers terminated before the window
  (from 50 workers on) and exactly one crew member terminated in the middle of the window, with no
  time after the termination date. About 5 % are salaried (``pay_interval == "year"``).
- ``max(3, workers // 3)`` jobs (at most 150) plus one drive job named ``Drive Time``. About half the
  jobs have 2-5 milestones carrying the hours budgets; the others carry the budget themselves.
  Budgets are drawn around the hours the window really received, so some jobs finish under budget.
- Crews work Monday to Saturday (Saturdays for about half the crews, Sundays rarely): one 6-10 h day
  of 1-3 entries on different jobs or milestones, drive entries of 15-45 min between them, and an
  unpaid lunch break inside the longest entry. Local wall-clock times are converted to UTC with
  ``zoneinfo``, so daylight saving changes are honoured.
- One night shift crosses local midnight; exactly one entry is still on the clock at ``as_of``;
  about 5 % of entries are manual (duration only); some entries were edited days later (their
  duration changed, ``original_duration_seconds`` keeps the value before the edit); some duplicate
  entries were deleted days later (``deleted_shifts``).

Drawn after all of the above from a second random stream (``<company>|<seed>|extras``), so that
everything listed so far is the same as before these were added:

- Wage histories: every worker's ``wage_history`` starts at the hire date; about a quarter of the
  active hourly workers (at least one) got a raise of $1-$4 effective 2-6 days before ``as_of``'s
  local date, so time before it was paid at the old wage. ``hourly_wage`` is today's wage.
- Creation dates: about a quarter of the customer jobs (at least one, when there are two) were
  created months before the window; the others on a local date from the window's first day (a
  typical attendance pull date) until their first time entry, and before it. Milestones are
  created a few seconds (or minutes, for the old jobs) after their job.
- Task lines: line items of a job's labor budget, each holding one or more of the job's milestones
  (whose time is booked to it: ``Milestone.task_id``, ``Shift.task_id``). One job with milestones
  has them (one with time, non-recurring when there is such a job), and about a third of the other
  jobs with milestones; names come from
  ``TASK_NAMES``, the same for every job, like a vendor's cost code list.
- Crew leads: every milestone (and every job without milestones) names the lead of the crew that
  works on it (``crew_lead_id``); ``crews`` lists each crew, lead first.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIN_WORKERS, MAX_WORKERS = 5, 500
MIN_DAYS, MAX_DAYS = 7, 731
MAX_JOBS = 150
DRIVE_JOB_NAME = "Drive Time"
DEFAULT_TIMEZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
)
HOURS_PER_WORK_YEAR = 2080

ROLE_CREW, ROLE_CREW_LEAD, ROLE_MANAGER = "crew", "crew_lead", "manager"
# Names of a job's line items by how many it has: one organization-wide list (BusyBusy cost codes).
TASK_NAMES = ("Site prep", "Installation", "Finish & cleanup")
_TASK_NAMES_BY_COUNT = {1: ("Installation",), 2: ("Site prep", "Installation"), 3: TASK_NAMES}
STATUS_OPEN, STATUS_COMPLETED, STATUS_CANCELED = "open", "completed", "canceled"
PAY_HOURLY, PAY_SALARIED = "hour", "year"

_CENT = Decimal("0.01")


# -- the data model ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WageChange:
    """An hourly wage in force from ``effective_date`` (company-local) until the worker's next change."""

    effective_date: date
    hourly_wage: Decimal


@dataclass(frozen=True)
class Worker:
    """A person who can clock time. ``hourly_wage`` is also set for salaried staff (salary / 2080)."""

    id: int
    first_name: str
    last_name: str
    email: str
    employee_number: int
    role: str  # "crew" | "crew_lead" | "manager"
    hourly_wage: Decimal
    pay_interval: str  # "hour" | "year"
    annual_salary: Decimal | None  # set when pay_interval == "year": hourly_wage * 2080 exactly
    active: bool
    hire_date: date
    term_date: date | None
    created_at: datetime
    modified_at: datetime
    # Oldest first, the first at the hire date; the last one's wage is ``hourly_wage``.
    wage_history: tuple[WageChange, ...] = ()

    def wage_on(self, day: date) -> Decimal:
        """The hourly wage in force on ``day`` (the first one before the first change)."""
        wage = self.wage_history[0].hourly_wage if self.wage_history else self.hourly_wage
        for change in self.wage_history:
            if change.effective_date <= day:
                wage = change.hourly_wage
        return wage


@dataclass(frozen=True)
class Job:
    """A top-level job. Jobs with milestones keep their budget on the milestones (``budget_hours`` None)."""

    id: int
    name: str
    short_code: str
    customer: str
    budget_hours: float | None
    status: str  # "open" | "completed" | "canceled"
    recurring: bool
    is_drive: bool
    created_at: datetime
    modified_at: datetime
    crew_lead_id: int | None = None  # a job without milestones: the lead of the crew doing it


@dataclass(frozen=True)
class Milestone:
    """A phase of a job with its own hours budget. Ids share one number space with job ids."""

    id: int
    job_id: int
    name: str
    budget_hours: float | None
    status: str
    created_at: datetime
    modified_at: datetime
    crew_lead_id: int | None = None  # the lead of the crew doing it
    task_id: int | None = None  # the line item (TaskLine) its time is booked to


@dataclass(frozen=True)
class TaskLine:
    """A line item of a job's labor budget (a BusyBusy cost code budget, an Aspire opportunity
    service), holding one or more of the job's milestones. Ids are a number space of their own."""

    id: int
    job_id: int
    name: str
    budget_hours: float
    milestone_ids: tuple[int, ...]


@dataclass(frozen=True)
class Shift:
    """One time entry. ``duration_seconds`` is worked time: end - start - unpaid breaks.

    Manual entries have no start, end or breaks. The entry still on the clock has no end and a
    duration counted up to the company's ``as_of``. ``local_date`` is the company-local date of the
    start (of the work day for manual entries).
    """

    id: int
    worker_id: int
    job_id: int
    milestone_id: int | None
    local_date: date
    start: datetime | None
    end: datetime | None
    duration_seconds: int
    breaks: tuple[tuple[datetime, datetime], ...]
    manual: bool
    on_the_clock: bool
    is_drive: bool
    notes: str
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime | None
    original_duration_seconds: int | None  # before an after-the-fact edit; None when never edited
    task_id: int | None = None  # the line item of its milestone, when the milestone has one


@dataclass(frozen=True)
class CompanyData:
    """One generated company. Treat the lists as read-only: the lookups below are built once."""

    company_id: str
    seed: int
    name: str
    timezone: str
    as_of: datetime
    days: int
    created_at: datetime
    workers: list[Worker]
    jobs: list[Job]
    milestones: list[Milestone]
    shifts: list[Shift]
    deleted_shifts: list[Shift]
    task_lines: list[TaskLine] = field(default_factory=list)
    crews: list[tuple[int, ...]] = field(default_factory=list)  # worker ids of each crew, lead first
    _workers_by_id: dict[int, Worker] = field(init=False, repr=False, compare=False)
    _jobs_by_id: dict[int, Job] = field(init=False, repr=False, compare=False)
    _milestones_by_id: dict[int, Milestone] = field(init=False, repr=False, compare=False)
    _lead_of_worker: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_workers_by_id", {w.id: w for w in self.workers})
        object.__setattr__(self, "_jobs_by_id", {j.id: j for j in self.jobs})
        object.__setattr__(self, "_milestones_by_id", {m.id: m for m in self.milestones})
        object.__setattr__(self, "_lead_of_worker", {w: crew[0] for crew in self.crews for w in crew})

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def last_local_date(self) -> date:
        """The company-local date of ``as_of``: the last day that can hold time entries."""
        return self.as_of.astimezone(self.zone).date()

    @property
    def first_local_date(self) -> date:
        return self.last_local_date - timedelta(days=self.days - 1)

    @property
    def drive_job(self) -> Job:
        return next(job for job in self.jobs if job.is_drive)

    @property
    def on_the_clock_shift(self) -> Shift:
        return next(shift for shift in self.shifts if shift.on_the_clock)

    def worker_by_id(self, worker_id: int) -> Worker:
        return self._workers_by_id[worker_id]

    def job_by_id(self, job_id: int) -> Job:
        return self._jobs_by_id[job_id]

    def milestone_by_id(self, milestone_id: int) -> Milestone:
        return self._milestones_by_id[milestone_id]

    def milestones_of(self, job_id: int) -> list[Milestone]:
        return [m for m in self.milestones if m.job_id == job_id]

    def task_lines_of(self, job_id: int) -> list[TaskLine]:
        return [t for t in self.task_lines if t.job_id == job_id]

    def crew_lead_of(self, worker_id: int) -> int | None:
        """The lead of the worker's crew (a lead is their own); None for managers and for workers
        who left before the window."""
        return self._lead_of_worker.get(worker_id)

    def crew_leads_of(self, unit_id: int) -> set[int]:
        """The crew leads of a work unit (a milestone, or a job without milestones): the one it names,
        and the leads of the crews whose members clocked live time on it."""
        record = self._milestones_by_id.get(unit_id) or self._jobs_by_id.get(unit_id)
        leads = {record.crew_lead_id} if record is not None and record.crew_lead_id is not None else set()
        for shift in self.shifts:
            if (shift.milestone_id or shift.job_id) == unit_id and not shift.is_drive:
                lead = self.crew_lead_of(shift.worker_id)
                if lead is not None:
                    leads.add(lead)
        return leads


# -- vocabulary -------------------------------------------------------------------------------------
_FIRST_NAMES = (
    "James",
    "Maria",
    "Jose",
    "Michael",
    "David",
    "Luis",
    "Carlos",
    "Daniel",
    "Juan",
    "Robert",
    "Chris",
    "Miguel",
    "Anthony",
    "Jorge",
    "Kevin",
    "Brian",
    "Jesus",
    "Eric",
    "Alejandro",
    "Tyler",
    "Ryan",
    "Francisco",
    "Jason",
    "Marcus",
    "Andre",
    "Victor",
    "Sergio",
    "Kyle",
    "Brandon",
    "Cody",
    "Justin",
    "Ana",
    "Sarah",
    "Jessica",
    "Emily",
    "Ashley",
    "Rosa",
    "Laura",
    "Megan",
    "Tanya",
    "Hector",
    "Raul",
    "Ramon",
    "Oscar",
    "Pedro",
    "Manuel",
    "Eduardo",
    "Ricardo",
    "Angel",
    "Dustin",
    "Travis",
    "Logan",
    "Austin",
    "Derek",
    "Trevor",
    "Mason",
    "Caleb",
    "Noah",
    "Ethan",
    "Wyatt",
)
_LAST_NAMES = (
    "Garcia",
    "Martinez",
    "Rodriguez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Perez",
    "Sanchez",
    "Ramirez",
    "Torres",
    "Flores",
    "Rivera",
    "Gomez",
    "Diaz",
    "Reyes",
    "Morales",
    "Cruz",
    "Ortiz",
    "Gutierrez",
    "Chavez",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Allen",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
    "Parker",
    "Collins",
    "Edwards",
    "Stewart",
    "Murphy",
    "Cook",
    "Rogers",
    "O'Brien",
)
_COMPANY_WORDS = (
    "Oak",
    "Stone",
    "Cedar",
    "Maple",
    "Summit",
    "River",
    "Evergreen",
    "Granite",
    "Prairie",
    "Canyon",
    "Aspen",
    "Willow",
    "Blue Ridge",
    "Pine",
    "Meadow",
    "Red Rock",
    "Timber",
    "Clearwater",
)
_COMPANY_FORMS = (
    "{a} & {b} Landscaping",
    "{a} Outdoor Services",
    "{a} Lawn & Irrigation",
    "{a} Landscape & Fence",
    "{a} Hardscapes",
    "{a} Grounds Management",
)
_STREETS = (
    "Oak St",
    "Maple Ave",
    "Pine Rd",
    "Cedar Ln",
    "Elm St",
    "Birch Ct",
    "Walnut Dr",
    "Hickory Way",
    "Lakeview Dr",
    "Sunset Blvd",
    "Ridge Rd",
    "Mill St",
    "Church St",
    "Park Ave",
    "Spruce Ct",
    "Highland Ave",
    "Meadow Ln",
    "Valley View Rd",
    "Orchard St",
    "Juniper Trl",
)
_PROPERTIES = (
    "Maple HOA",
    "Willow Creek HOA",
    "Riverside Office Park",
    "First Baptist Church",
    "Cedar Ridge Apartments",
    "Lincoln Elementary",
    "Oakwood Commons",
    "Sunrise Senior Living",
    "Heritage Golf Club",
    "Northgate Plaza",
    "Pinecrest Townhomes",
    "City Hall Annex",
)
_PERSON_CUSTOMERS = ("Miller", "Johnson", "Nguyen", "Patel", "Schmidt", "O'Connor", "Kowalski", "Rossi")

# (service name, short-code prefix, milestone names or None, recurring)
_MILESTONE_SERVICES: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    (
        "Fence install",
        "FNC",
        ("Locate utilities", "Install posts", "Set panels", "Hang gates", "Final walkthrough"),
        False,
    ),
    ("Paver patio", "PAV", ("Excavate base", "Compact gravel base", "Lay pavers", "Sand & seal joints"), False),
    ("Retaining wall", "RTW", ("Excavate footing", "Set base course", "Build wall", "Backfill & drainage"), False),
    ("Irrigation install", "IRI", ("Trenching", "Lay pipe", "Install heads", "Controller setup"), False),
    ("Landscape lighting", "LTG", ("Run wire", "Set fixtures", "Program timer"), False),
    ("Sod install", "SOD", ("Grade soil", "Lay sod", "First watering"), False),
    (
        "Weekly mowing",
        "MOW",
        ("Week 1 mowing", "Week 2 mowing", "Week 3 mowing", "Week 4 mowing", "Week 5 mowing"),
        True,
    ),
)
_SINGLE_SERVICES: tuple[tuple[str, str, bool], ...] = (
    ("Spring cleanup", "CLN", False),
    ("Irrigation repair", "IRR", False),
    ("Tree removal", "TRE", False),
    ("Mulch & bed refresh", "MUL", False),
    ("Drainage fix", "DRN", False),
    ("Hedge trimming", "HDG", False),
    ("Monthly bed maintenance", "MNT", True),
)
_MANUAL_NOTES = ("Phone died, entered by crew lead", "Forgot to clock in", "Entered from paper timesheet")
_EDIT_NOTES_LONGER = "Forgot to clock out; end corrected by manager"
_EDIT_NOTES_SHORTER = "Clocked in late on site; start corrected by manager"


# -- generation -------------------------------------------------------------------------------------
@dataclass
class _Draft:
    """A time entry while the company is being built; becomes a frozen ``Shift`` at the end."""

    worker_id: int
    job_id: int
    milestone_id: int | None
    local_date: date
    start: datetime | None
    end: datetime | None
    breaks: tuple[tuple[datetime, datetime], ...]
    is_drive: bool
    created_at: datetime
    modified_at: datetime
    notes: str = ""
    duration_seconds: int = 0
    manual: bool = False
    on_the_clock: bool = False
    deleted_at: datetime | None = None
    original_duration_seconds: int | None = None

    @property
    def closed_end(self) -> datetime:
        """The end of an entry that has one: every entry but the running one and the manual ones."""
        assert self.end is not None, "a running or manual entry has no end"
        return self.end

    def worked_seconds(self) -> int:
        assert self.start is not None and self.end is not None, "a manual entry has only a duration"
        paid = (self.end - self.start).total_seconds() - sum((e - s).total_seconds() for s, e in self.breaks)
        return int(paid)


@dataclass
class _JobPlan:
    id: int
    name: str
    short_code: str
    customer: str
    status: str
    recurring: bool
    created_at: datetime
    milestones: list[_MilestonePlan]
    budget_required: bool = False  # set on one job so every company has a job-level budget


@dataclass
class _MilestonePlan:
    id: int
    name: str
    status: str
    created_at: datetime


@dataclass
class _Segment:
    """One entry of a crew's day plan, in minutes after midnight local time (may exceed 24 h)."""

    job_id: int
    milestone_id: int | None
    is_drive: bool
    start_minute: int
    end_minute: int
    break_start_minute: int | None = None
    break_minutes: int = 0


def generate_company(
    company_id: str,
    seed: int = 0,
    workers: int = 25,
    days: int = 14,
    as_of: datetime | None = None,
    timezone: str | None = None,
) -> CompanyData:
    """Build one company: the same arguments always give identical data.

    ``as_of`` (timezone-aware UTC, default today's midnight UTC) is the moment the data is seen:
    nothing is later. Time entries cover the ``days`` company-local dates ending on the local date
    of ``as_of``. ``timezone`` is an IANA name; by default one of five US zones is drawn from the seed.
    """
    if not isinstance(workers, int) or not MIN_WORKERS <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be an integer from {MIN_WORKERS} to {MAX_WORKERS}, got {workers!r}")
    if not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer from {MIN_DAYS} to {MAX_DAYS}, got {days!r}")
    if as_of is None:
        as_of = datetime.combine(date.today(), time(0), tzinfo=UTC)
    if as_of.tzinfo is None or as_of.utcoffset() != timedelta(0):
        raise ValueError(f"as_of must be a timezone-aware UTC datetime, got {as_of!r}")
    as_of = as_of.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(f"{company_id}|{seed}")
    # Drawn even when a zone is given, so naming the default zone explicitly changes nothing else.
    drawn_zone = rng.choice(DEFAULT_TIMEZONES)
    zone_name = timezone or drawn_zone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {zone_name!r}") from None
    return _CompanyBuilder(rng, company_id, seed, workers, days, as_of, zone_name, zone).build()


class _CompanyBuilder:
    def __init__(
        self,
        rng: random.Random,
        company_id: str,
        seed: int,
        worker_count: int,
        days: int,
        as_of: datetime,
        zone_name: str,
        zone: ZoneInfo,
    ):
        self.rng = rng
        self.company_id = company_id
        self.seed = seed
        self.worker_count = worker_count
        self.days = days
        self.as_of = as_of
        self.zone_name = zone_name
        self.zone = zone
        self.last_date = as_of.astimezone(zone).date()
        self.first_date = self.last_date - timedelta(days=days - 1)
        self.dates = [self.first_date + timedelta(days=i) for i in range(days)]

    # -- helpers ------------------------------------------------------------------------------
    def local(self, day: date, minute: int, second: int = 0) -> datetime:
        """UTC instant of a local wall-clock time: ``minute`` minutes after local midnight of ``day``.

        Minutes past 24 h land on the next day's wall clock, so a night shift's end is DST-correct too.
        """
        wall = datetime.combine(day, time(0)) + timedelta(minutes=minute, seconds=second)
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def office_time(self, day: date) -> datetime:
        """A moment during office hours (08:00-17:00 local) of ``day``."""
        return self.local(day, self.rng.randint(8 * 60, 17 * 60 - 1), self.rng.randint(0, 59))

    def past_moment(self, earliest: datetime) -> datetime:
        """A whole-second moment between ``earliest`` and ``as_of``."""
        span = int((self.as_of - earliest).total_seconds())
        return earliest + timedelta(seconds=self.rng.randint(0, max(span, 0)))

    # -- the company --------------------------------------------------------------------------
    def build(self) -> CompanyData:
        rng = self.rng
        a, b = rng.sample(_COMPANY_WORDS, 2)
        name = rng.choice(_COMPANY_FORMS).format(a=a, b=b)
        self.domain = "".join(ch for ch in name.lower() if ch.isalnum())[:24] + ".com"
        opened = self.last_date - timedelta(days=rng.randint(2 * 365, 12 * 365))
        self.created_at = self.office_time(opened)

        workers, crews = self._workers()
        jobs = self._jobs()
        drafts = self._crew_days(crews, jobs)
        self._night_shift(crews, jobs, drafts)
        self._on_the_clock(crews, drafts)
        self._manual_entries(drafts)
        self._edits_after_the_fact(drafts)
        deleted = self._deleted_duplicates(drafts)
        shifts, deleted_shifts = self._assign_shift_ids(drafts, deleted)
        job_records, milestone_records = self._finish_jobs(jobs, shifts)

        # Drawn from a stream of their own, so that everything above stays as it was before them.
        extras = random.Random(f"{self.company_id}|{self.seed}|extras")
        workers = self._wage_histories(extras, workers)
        job_records, milestone_records = self._crew_leads(extras, crews, job_records, milestone_records)
        job_records, milestone_records = self._creation_dates(
            extras, job_records, milestone_records, shifts + deleted_shifts
        )
        task_lines, milestone_records, shifts, deleted_shifts = self._task_lines(
            extras, job_records, milestone_records, shifts, deleted_shifts
        )
        return CompanyData(
            company_id=self.company_id,
            seed=self.seed,
            name=name,
            timezone=self.zone_name,
            as_of=self.as_of,
            days=self.days,
            created_at=self.created_at,
            workers=workers,
            jobs=job_records,
            milestones=milestone_records,
            shifts=shifts,
            deleted_shifts=deleted_shifts,
            task_lines=task_lines,
            crews=[tuple(w.id for w in crew) for crew in crews],
        )

    # -- people -------------------------------------------------------------------------------
    def _workers(self) -> tuple[list[Worker], list[list[Worker]]]:
        """All workers, and the crews (lead first) of those who work in the window."""
        rng = self.rng
        managers = 1 if self.worker_count < 40 else 2
        left_before_window = self.worker_count // 50
        field_count = self.worker_count - managers - left_before_window
        crew_sizes: list[int] = []
        remaining = field_count
        while remaining > 0:
            size = rng.randint(6, 9)
            if remaining - size < 3:
                # Too few people would be left for a crew of their own: this crew takes them all.
                crew_sizes.append(remaining)
                break
            crew_sizes.append(size)
            remaining -= size

        names = self._unique_names(self.worker_count)
        ids = self._increasing_ids(self.worker_count, 1_000_000, 9_000_000, max_step=60)
        hire_days = sorted((rng.randint(self.days + 30, 12 * 365) for _ in range(self.worker_count)), reverse=True)
        roles = [ROLE_MANAGER] * managers
        for size in crew_sizes:
            roles += [ROLE_CREW_LEAD] + [ROLE_CREW] * (size - 1)
        roles += [ROLE_CREW] * left_before_window
        # Shuffle who was hired when, so ids (in hiring order) do not reveal the role.
        order = list(range(self.worker_count))
        rng.shuffle(order)
        # One crew member (never a lead) leaves in the middle of the window.
        leaving_in_window = next(i for i, role in enumerate(roles) if role == ROLE_CREW)
        term_in_window = self.first_date + timedelta(days=self.days // 2)

        workers_by_slot: list[Worker] = []
        for slot, role in enumerate(roles):
            hire_rank = order[slot]
            first, last = names[hire_rank]
            hire_date = self.last_date - timedelta(days=hire_days[hire_rank])
            term_date = None
            if slot == leaving_in_window:
                term_date = term_in_window
            elif slot >= len(roles) - left_before_window:
                term_date = self.first_date - timedelta(days=rng.randint(1, 120))
                hire_date = min(hire_date, term_date - timedelta(days=rng.randint(30, 900)))
            workers_by_slot.append(
                self._worker(
                    ids[hire_rank],
                    first,
                    last,
                    100 + hire_rank,
                    role,
                    hire_date,
                    term_date,
                    salaried=(slot == 0) or (role == ROLE_CREW_LEAD and rng.random() < 0.35),
                )
            )
        workers = sorted(workers_by_slot, key=lambda w: w.id)
        crews: list[list[Worker]] = []
        slot = managers
        for size in crew_sizes:
            crews.append(workers_by_slot[slot : slot + size])
            slot += size
        self.managers = workers_by_slot[:managers]
        return workers, crews

    def _worker(
        self,
        worker_id: int,
        first: str,
        last: str,
        number: int,
        role: str,
        hire_date: date,
        term_date: date | None,
        *,
        salaried: bool,
    ) -> Worker:
        rng = self.rng
        cents = {ROLE_CREW: (1600, 2600), ROLE_CREW_LEAD: (2400, 3400), ROLE_MANAGER: (3200, 4800)}[role]
        wage = (Decimal(rng.randint(*cents)) / 100).quantize(_CENT)
        # Exact (cents allowed) so that salary / 2,080 is the same hourly wage every vendor shows.
        salary = wage * HOURS_PER_WORK_YEAR if salaried else None
        created_at = self.office_time(hire_date)
        if term_date is not None:
            # The office records a termination the next working day.
            modified_at = min(self.office_time(term_date + timedelta(days=1)), self.as_of)
        else:
            modified_at = self.past_moment(max(created_at, self.as_of - timedelta(days=200)))
        local_part = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
        return Worker(
            id=worker_id,
            first_name=first,
            last_name=last,
            email=f"{local_part}@{self.domain}",
            employee_number=number,
            role=role,
            hourly_wage=wage,
            pay_interval=PAY_SALARIED if salaried else PAY_HOURLY,
            annual_salary=salary,
            active=term_date is None,
            hire_date=hire_date,
            term_date=term_date,
            created_at=created_at,
            modified_at=max(modified_at, created_at),
        )

    def _unique_names(self, count: int) -> list[tuple[str, str]]:
        names: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        while len(names) < count:
            candidate = (self.rng.choice(_FIRST_NAMES), self.rng.choice(_LAST_NAMES))
            if candidate not in seen:
                seen.add(candidate)
                names.append(candidate)
        return names

    def _increasing_ids(self, count: int, low: int, high: int, max_step: int) -> list[int]:
        """Ascending ids with gaps, as a multi-tenant vendor hands them out."""
        current = self.rng.randint(low, high)
        ids = []
        for _ in range(count):
            current += self.rng.randint(1, max_step)
            ids.append(current)
        return ids

    # -- jobs -----------------------------------------------------------------------------------
    def _jobs(self) -> list[_JobPlan]:
        """The drive job first, then the customer jobs; ids ascend in creation order."""
        rng = self.rng
        count = min(MAX_JOBS, max(3, self.worker_count // 3))
        next_id = rng.randint(10_000_000, 60_000_000)
        plans = [_JobPlan(next_id, DRIVE_JOB_NAME, "DRIVE", "", STATUS_OPEN, False, self.created_at, [])]
        window_start = self.local(self.first_date, 0)
        creation_times = sorted(
            window_start - timedelta(seconds=rng.randint(86_400, 200 * 86_400)) for _ in range(count)
        )
        # Most jobs open, about a fifth completed (at least one), rarely one canceled. Jobs 0 and 1 are
        # open; job 0 always has milestones and job 1 never does, so both shapes exist everywhere.
        later = [STATUS_COMPLETED] * max(1, round(count * 0.22)) + [STATUS_CANCELED] * round(count * 0.04)
        later += [STATUS_OPEN] * (count - 2 - len(later))
        rng.shuffle(later)
        statuses = [STATUS_OPEN, STATUS_OPEN, *later]
        used_names: set[str] = set()
        for index, (created_at, status) in enumerate(zip(creation_times, statuses)):
            with_milestones = index == 0 or (index != 1 and rng.random() < 0.5)
            if with_milestones:
                service, prefix, phases, recurring = rng.choice(_MILESTONE_SERVICES)
                count_phases = rng.randint(2, min(5, len(phases)))
                phase_names = list(phases[:count_phases])
            else:
                service, prefix, recurring = rng.choice(_SINGLE_SERVICES)
                phase_names = []
            site, customer = self._site()
            while f"{service} – {site}" in used_names:  # names are unique among siblings in every vendor
                site, customer = self._site()
            name = f"{service} – {site}"
            used_names.add(name)
            next_id += rng.randint(1, 500)
            job = _JobPlan(
                next_id,
                name,
                f"{prefix}-{101 + index}",
                customer,
                status,
                recurring,
                created_at,
                [],
                budget_required=index == 1,
            )
            # Phases finish in order: an open job has its first few milestones completed.
            finished_phases = rng.randint(0, len(phase_names) - 1) if status == STATUS_OPEN and phase_names else 0
            for position, phase in enumerate(phase_names):
                next_id += rng.randint(1, 5)
                phase_status = status
                if status == STATUS_OPEN and position < finished_phases:
                    phase_status = STATUS_COMPLETED
                job.milestones.append(
                    _MilestonePlan(next_id, phase, phase_status, created_at + timedelta(minutes=position + 1))
                )
            plans.append(job)
        return plans

    def _site(self) -> tuple[str, str]:
        """Where a job is and whom it is for: a street address of a homeowner, or a named property."""
        rng = self.rng
        if rng.random() < 0.6:
            return f"{rng.randint(2, 9800)} {rng.choice(_STREETS)}", f"{rng.choice(_PERSON_CUSTOMERS)} residence"
        place = rng.choice(_PROPERTIES)
        return place, place

    # -- time -----------------------------------------------------------------------------------
    def _workable(self, jobs: list[_JobPlan]) -> list[_JobPlan]:
        return [j for j in jobs[1:] if j.status != STATUS_CANCELED]

    def _pick_work(self, job: _JobPlan) -> tuple[int, int | None]:
        if not job.milestones:
            return job.id, None
        return job.id, self.rng.choice(job.milestones).id

    def _crew_days(self, crews: list[list[Worker]], jobs: list[_JobPlan]) -> list[_Draft]:
        rng = self.rng
        workable = self._workable(jobs)
        drive_id = jobs[0].id
        drafts: list[_Draft] = []
        self.crew_pools: list[list[_JobPlan]] = []
        for index, crew in enumerate(crews):
            pool = rng.sample(workable, min(len(workable), rng.randint(2, 4)))
            self.crew_pools.append(pool)
            # The first crew's first working days show the whole pattern (several jobs, a lunch break),
            # so every company, however small, has such days.
            showcase_days_owed = 3 if index == 0 else 0
            for day in self.dates:
                weekday = day.weekday()
                works = rng.random() < (0.97 if weekday < 5 else 0.45 if weekday == 5 else 0.03)
                if not works:
                    continue
                plan = self._day_plan(pool, drive_id, showcase=showcase_days_owed > 0)
                showcase_days_owed -= 1
                for worker in crew:
                    if worker.term_date is not None and day > worker.term_date:
                        continue
                    if rng.random() < 0.05:  # sick, vacation, appointment
                        continue
                    drafts.extend(self._follow_plan(worker.id, day, plan))
        for manager in self.managers:
            for day in self.dates:
                if day.weekday() < 5 and rng.random() < 0.4:
                    job_id, milestone_id = self._pick_work(rng.choice(workable))
                    start = rng.randint(9 * 60, 11 * 60)
                    segment = _Segment(job_id, milestone_id, False, start, start + rng.randint(8, 20) * 15)
                    drafts.extend(self._follow_plan(manager.id, day, [segment]))
        # A crew's plan can run past as_of on the last day: those entries do not exist yet, and a
        # morning drive left alone is dropped too (nobody drives to a job they never reach).
        drafts = [d for d in drafts if d.closed_end <= self.as_of]
        days_with_work = {(d.worker_id, d.local_date) for d in drafts if not d.is_drive}
        return [d for d in drafts if (d.worker_id, d.local_date) in days_with_work]

    def _day_plan(self, pool: list[_JobPlan], drive_id: int, showcase: bool = False) -> list[_Segment]:
        """One crew day: 6-10 worked hours over 1-3 jobs, drives between, lunch in the longest entry.

        A showcase day has at least two jobs and always a lunch break.
        """
        rng = self.rng
        worked = rng.randint(24, 39) * 15  # 6-9.75 h planned; late clock-outs add a few minutes
        wanted = rng.choices((1, 2, 3), (35, 45, 20))[0]
        if showcase:
            wanted = max(wanted, 2)
        picks = [self._pick_work(job) for job in rng.sample(pool, min(wanted, len(pool)))]
        # 16-44 planned minutes: each worker's clock seconds move a drive by under a minute either way.
        drives = [rng.randint(16, 44) if (i > 0 or rng.random() < 0.6) else 0 for i in range(len(picks))]
        job_minutes = worked - sum(drives)
        weights = [rng.uniform(1, 3) for _ in picks]
        shares = [max(45, int(job_minutes * w / sum(weights))) for w in weights]
        longest = max(range(len(shares)), key=shares.__getitem__)
        lunch = 30 if showcase or (worked >= 390 and rng.random() < 0.8) else 0
        minute = rng.choice((390, 420, 420, 450, 480))
        segments: list[_Segment] = []
        for index, (job_id, milestone_id) in enumerate(picks):
            if drives[index]:
                segments.append(_Segment(drive_id, None, True, minute, minute + drives[index]))
                minute += drives[index]
            length = shares[index] + (lunch if index == longest else 0)
            segment = _Segment(job_id, milestone_id, False, minute, minute + length)
            if index == longest and lunch:
                segment.break_start_minute = minute + (shares[index] // 2)
                segment.break_minutes = lunch
            segments.append(segment)
            minute += length
        return segments

    def _follow_plan(self, worker_id: int, day: date, plan: list[_Segment]) -> list[_Draft]:
        """One worker's entries for a crew plan: same switches, each person's own clock seconds.

        The whole day moves with the worker's arrival (-2..+7 min); each switch gets +-30 s of its own
        and the last clock-out up to 10 min more. Seconds are added to UTC instants: real elapsed time.
        """
        rng = self.rng
        boundaries = [plan[0].start_minute] + [s.end_minute for s in plan]
        arrival = rng.randint(-120, 420)
        jitters = [0] + [rng.randint(-30, 30) for _ in plan[1:]] + [rng.randint(-60, 600)]
        moments = [
            self.local(day, minute) + timedelta(seconds=arrival + jitter) for minute, jitter in zip(boundaries, jitters)
        ]
        drafts = []
        for index, segment in enumerate(plan):
            start, end = moments[index], moments[index + 1]
            breaks: tuple[tuple[datetime, datetime], ...] = ()
            if segment.break_minutes:
                assert segment.break_start_minute is not None, "a break has its start with its length"
                break_start = self.local(day, segment.break_start_minute) + timedelta(
                    seconds=arrival + rng.randint(0, 300)
                )
                breaks = (
                    (break_start, break_start + timedelta(minutes=segment.break_minutes, seconds=rng.randint(0, 240))),
                )
            draft = _Draft(
                worker_id,
                segment.job_id,
                segment.milestone_id,
                day,
                start,
                end,
                breaks,
                segment.is_drive,
                created_at=start,
                modified_at=end,
            )
            draft.duration_seconds = draft.worked_seconds()
            drafts.append(draft)
        return drafts

    def _night_shift(self, crews: list[list[Worker]], jobs: list[_JobPlan], drafts: list[_Draft]) -> None:
        """A lead and up to two crew members do an emergency repair overnight: the entry crosses local midnight.

        The night is at least two days before as_of's local date, so the shift is over by as_of; the
        workers do not work that day or the day after.
        """
        rng = self.rng
        weeknights = [d for d in self.dates[:-2] if d.weekday() < 5] or self.dates[:-2]
        night = rng.choice(weeknights)
        crew_index = rng.randrange(len(crews))
        crew = [w for w in crews[crew_index] if w.term_date is None or w.term_date > night + timedelta(days=1)]
        # At most three, and never the whole crew: the others keep their day work.
        team = {w.id for w in crew[: rng.randint(1, max(1, min(3, len(crew) - 1)))]}
        drafts[:] = [
            d for d in drafts if not (d.worker_id in team and d.local_date in (night, night + timedelta(days=1)))
        ]
        job_id, milestone_id = self._pick_work(rng.choice(self.crew_pools[crew_index]))
        start_minute = rng.randint(19 * 60 + 30, 20 * 60 + 30)
        end_minute = 24 * 60 + rng.randint(3 * 60, 4 * 60)  # 03:00-04:00: never a skipped or repeated DST hour
        plan = [
            _Segment(jobs[0].id, None, True, start_minute, start_minute + 25),
            _Segment(job_id, milestone_id, False, start_minute + 25, end_minute),
        ]
        for worker_id in sorted(team):
            entries = self._follow_plan(worker_id, night, plan)
            entries[-1].notes = "Night work: emergency repair"
            drafts.extend(entries)

    def _on_the_clock(self, crews: list[list[Worker]], drafts: list[_Draft]) -> None:
        """Exactly one worker is still clocked in at as_of, started 1.5-4 hours earlier."""
        rng = self.rng
        crew_index = rng.randrange(len(crews))
        worker = rng.choice([w for w in crews[crew_index] if w.term_date is None])
        start = self.as_of - timedelta(seconds=rng.randint(90 * 60, 4 * 3600))
        # Whatever this worker did after the clock-in never happened: one person, one running clock.
        drafts[:] = [d for d in drafts if not (d.worker_id == worker.id and d.closed_end > start)]
        job_id, milestone_id = self._pick_work(rng.choice(self.crew_pools[crew_index]))
        running = _Draft(
            worker.id,
            job_id,
            milestone_id,
            start.astimezone(self.zone).date(),
            start,
            None,
            (),
            False,
            created_at=start,
            modified_at=start,
            on_the_clock=True,
        )
        running.duration_seconds = int((self.as_of - start).total_seconds())
        drafts.append(running)

    def _closed_entries(self, drafts: list[_Draft], latest_date: date) -> list[_Draft]:
        """Plain clocked job entries up to ``latest_date``: those without a story yet (no notes, so
        the night shift keeps its start and end)."""
        return [
            d
            for d in drafts
            if not d.on_the_clock and not d.manual and not d.is_drive and not d.notes and d.local_date <= latest_date
        ]

    def _manual_entries(self, drafts: list[_Draft]) -> None:
        """About 5 % of entries were typed in afterwards as a duration only (rounded to 15 minutes)."""
        rng = self.rng
        candidates = self._closed_entries(drafts, self.last_date - timedelta(days=1))
        chosen = [d for d in candidates if rng.random() < 0.05] or [rng.choice(candidates)]
        for draft in chosen:
            draft.manual = True
            draft.duration_seconds = max(900, round(draft.worked_seconds() / 900) * 900)
            draft.start = draft.end = None
            draft.breaks = ()
            draft.notes = rng.choice(_MANUAL_NOTES)
            next_morning = self.local(
                draft.local_date + timedelta(days=1), rng.randint(6 * 60 + 30, 9 * 60), rng.randint(0, 59)
            )
            draft.created_at = draft.modified_at = min(next_morning, self.as_of)

    def _edits_after_the_fact(self, drafts: list[_Draft]) -> None:
        """About 3 % of entries were corrected by a manager 1-4 days later; their duration changed."""
        rng = self.rng
        latest = self.last_date - timedelta(days=2)
        candidates = self._closed_entries(drafts, latest)
        chosen = [d for d in candidates if rng.random() < 0.03]
        while len(chosen) < min(2, len(candidates)):
            extra = rng.choice(candidates)
            if extra not in chosen:
                chosen.append(extra)
        for draft in chosen:
            forgot_clock_out = rng.random() < 0.7
            delta = rng.randint(10, 120) * 60
            draft.original_duration_seconds = draft.duration_seconds + (
                delta if forgot_clock_out else -min(delta, draft.duration_seconds // 2)
            )
            draft.notes = _EDIT_NOTES_LONGER if forgot_clock_out else _EDIT_NOTES_SHORTER
            # Edited on a later day that is over before as_of's local date begins.
            edit_day = draft.local_date + timedelta(
                days=rng.randint(1, min(4, (self.last_date - draft.local_date).days - 1))
            )
            draft.modified_at = self.office_time(edit_day)

    def _deleted_duplicates(self, drafts: list[_Draft]) -> list[_Draft]:
        """About 1 % of entries were clocked twice (two phones); the copy was deleted 1-4 days later."""
        rng = self.rng
        latest = self.last_date - timedelta(days=2)
        candidates = [d for d in self._closed_entries(drafts, latest) if d.original_duration_seconds is None]
        count = max(3, len(candidates) // 100)
        deleted = []
        for original in rng.sample(candidates, min(count, len(candidates))):
            lag = timedelta(seconds=rng.randint(5, 90))
            assert original.start is not None, "a closed entry has a start"
            copy = _Draft(
                original.worker_id,
                original.job_id,
                original.milestone_id,
                original.local_date,
                original.start + lag,
                original.end,
                original.breaks,
                original.is_drive,
                created_at=original.created_at + lag,
                modified_at=original.modified_at,
                notes="Duplicate clock-in from a second device",
            )
            copy.duration_seconds = copy.worked_seconds()
            delete_day = original.local_date + timedelta(
                days=rng.randint(1, min(4, (self.last_date - original.local_date).days - 1))
            )
            copy.deleted_at = self.office_time(delete_day)
            deleted.append(copy)
        return deleted

    def _assign_shift_ids(self, drafts: list[_Draft], deleted: list[_Draft]) -> tuple[list[Shift], list[Shift]]:
        """Ids ascend in creation order across live and deleted entries, as one vendor sequence would."""
        everything = sorted(drafts + deleted, key=lambda d: (d.created_at, d.worker_id, d.deleted_at is not None))
        ids = self._increasing_ids(len(everything), 100_000_000, 800_000_000, max_step=40)
        shifts: list[Shift] = []
        deleted_shifts: list[Shift] = []
        for shift_id, d in zip(ids, everything):
            shift = Shift(
                id=shift_id,
                worker_id=d.worker_id,
                job_id=d.job_id,
                milestone_id=d.milestone_id,
                local_date=d.local_date,
                start=d.start,
                end=d.end,
                duration_seconds=d.duration_seconds,
                breaks=d.breaks,
                manual=d.manual,
                on_the_clock=d.on_the_clock,
                is_drive=d.is_drive,
                notes=d.notes,
                created_at=d.created_at,
                modified_at=d.modified_at,
                deleted_at=d.deleted_at,
                original_duration_seconds=d.original_duration_seconds,
            )
            (deleted_shifts if d.deleted_at else shifts).append(shift)
        return shifts, deleted_shifts

    # -- budgets and final job records ------------------------------------------------------------
    def _budget(self, worked_seconds: int) -> float:
        """A budget near the hours really worked (80-130 %), in quarter hours; a guess when none were."""
        hours = worked_seconds / 3600
        if hours == 0:
            return self.rng.randint(8, 160) / 2
        return max(0.25, round(hours * self.rng.uniform(0.8, 1.3) * 4) / 4)

    def _finish_jobs(self, plans: list[_JobPlan], shifts: list[Shift]) -> tuple[list[Job], list[Milestone]]:
        rng = self.rng
        worked: dict[int, int] = defaultdict(int)
        last_end: dict[int, datetime] = {}
        for shift in shifts:
            for key in (shift.job_id, shift.milestone_id):
                if key is not None:
                    worked[key] += shift.duration_seconds
                    moment = shift.end or shift.created_at
                    last_end[key] = max(last_end.get(key, moment), moment)

        def modified(plan_id: int, status: str, created_at: datetime) -> datetime:
            if status == STATUS_COMPLETED and plan_id in last_end:
                # Marked completed a few hours after the last time entry on it.
                return min(last_end[plan_id] + timedelta(seconds=rng.randint(3600, 86_400)), self.as_of)
            return self.past_moment(created_at)

        jobs: list[Job] = []
        milestones: list[Milestone] = []
        for index, plan in enumerate(plans):
            is_drive = index == 0
            budget = None
            if not is_drive and not plan.milestones and (plan.budget_required or rng.random() >= 0.1):
                budget = self._budget(worked[plan.id])
            jobs.append(
                Job(
                    id=plan.id,
                    name=plan.name,
                    short_code=plan.short_code,
                    customer=plan.customer,
                    budget_hours=budget,
                    status=plan.status,
                    recurring=plan.recurring,
                    is_drive=is_drive,
                    created_at=plan.created_at,
                    modified_at=plan.created_at if is_drive else modified(plan.id, plan.status, plan.created_at),
                )
            )
            for phase in plan.milestones:
                milestones.append(
                    Milestone(
                        id=phase.id,
                        job_id=plan.id,
                        name=phase.name,
                        budget_hours=self._budget(worked[phase.id]) if rng.random() >= 0.08 else None,
                        status=phase.status,
                        created_at=phase.created_at,
                        modified_at=modified(phase.id, phase.status, phase.created_at),
                    )
                )
        return jobs, milestones

    # -- additions, drawn from their own random stream (see the module docstring) -----------------
    def _wage_histories(self, rng: random.Random, workers: list[Worker]) -> list[Worker]:
        """Every worker's wage since the hire date; some active hourly workers got a raise a few days ago."""
        eligible = [w for w in workers if w.pay_interval == PAY_HOURLY and w.active]
        raised = {w.id for w in eligible if rng.random() < 0.25}
        if not raised and eligible:
            raised.add(rng.choice(eligible).id)
        result = []
        for worker in workers:
            history: tuple[WageChange, ...] = (WageChange(worker.hire_date, worker.hourly_wage),)
            if worker.id in raised:
                effective = self.last_date - timedelta(days=rng.randint(2, 6))
                raise_by = Decimal(rng.randint(4, 16) * 25) / 100  # $1.00-$4.00
                history = (
                    WageChange(worker.hire_date, (worker.hourly_wage - raise_by).quantize(_CENT)),
                    WageChange(effective, worker.hourly_wage),
                )
            result.append(replace(worker, wage_history=history))
        return result

    def _crew_leads(
        self, rng: random.Random, crews: list[list[Worker]], jobs: list[Job], milestones: list[Milestone]
    ) -> tuple[list[Job], list[Milestone]]:
        """Each work unit (a milestone, or a job without milestones) names the lead of the first crew
        whose jobs include it; a job no crew works on gets a lead drawn at random."""
        lead_of_job: dict[int, int] = {}
        for crew, pool in zip(crews, self.crew_pools):
            for plan in pool:
                lead_of_job.setdefault(plan.id, crew[0].id)
        leads = [crew[0].id for crew in crews]
        for job in jobs:
            if not job.is_drive and job.id not in lead_of_job:
                lead_of_job[job.id] = rng.choice(leads)
        with_milestones = {m.job_id for m in milestones}
        jobs = [
            replace(j, crew_lead_id=lead_of_job[j.id]) if not j.is_drive and j.id not in with_milestones else j
            for j in jobs
        ]
        return jobs, [replace(m, crew_lead_id=lead_of_job[m.job_id]) for m in milestones]

    def _creation_dates(
        self, rng: random.Random, jobs: list[Job], milestones: list[Milestone], shifts: list[Shift]
    ) -> tuple[list[Job], list[Milestone]]:
        """Most customer jobs were created inside the window, before their first time entry; about a
        quarter (at least one of two or more) months before it, as planned."""
        first_work: dict[int, datetime] = {}
        for shift in shifts:
            # A manual entry has no start: 06:00 of its work date stands for it (day crews clock in
            # from 06:28; BusyBusy shows manual entries from 07:00).
            moment = shift.start if shift.start is not None else self.local(shift.local_date, 6 * 60)
            first_work[shift.job_id] = min(first_work.get(shift.job_id, moment), moment)
        customer = [j for j in jobs if not j.is_drive]
        before = {j.id for j in customer if rng.random() < 0.25}
        if len(customer) >= 2:
            if not before:
                before.add(rng.choice(customer).id)
            elif len(before) == len(customer):
                before.discard(rng.choice(customer).id)
        latest = self.as_of - timedelta(hours=2)  # a job without time: created before as_of, budgets an hour later
        created: dict[int, datetime] = {}
        for job in customer:
            if job.id in before:
                continue
            work = first_work.get(job.id)
            last_day = (work or latest).astimezone(self.zone).date()
            day = self.first_date + timedelta(days=rng.randint(0, max(0, (last_day - self.first_date).days)))
            midnight = self.local(day, 0)
            if work is not None and day == last_day:
                # The morning of the first work: ten minutes before it at the latest, so that the
                # milestones (seconds after the job) are created before their first time too.
                moment = midnight + timedelta(
                    seconds=rng.randint(0, max(0, int((work - midnight).total_seconds()) - 600))
                )
            else:
                moment = min(midnight + timedelta(seconds=rng.randint(8 * 3600, 17 * 3600)), latest)
            created[job.id] = moment
        jobs = [
            replace(j, created_at=created[j.id], modified_at=max(j.modified_at, created[j.id]))
            if j.id in created
            else j
            for j in jobs
        ]
        position: dict[int, int] = defaultdict(int)
        adjusted = []
        for milestone in milestones:
            position[milestone.job_id] += 1
            if milestone.job_id in created:
                moment = created[milestone.job_id] + timedelta(seconds=position[milestone.job_id])
                milestone = replace(milestone, created_at=moment, modified_at=max(milestone.modified_at, moment))
            adjusted.append(milestone)
        return jobs, adjusted

    def _task_lines(
        self,
        rng: random.Random,
        jobs: list[Job],
        milestones: list[Milestone],
        shifts: list[Shift],
        deleted: list[Shift],
    ) -> tuple[list[TaskLine], list[Milestone], list[Shift], list[Shift]]:
        """Line items for one job with milestones (with time and non-recurring when there is such a
        job) and about a third of the others: its milestones in 1-3 consecutive groups, each group one
        line with its own hours budget."""
        by_job: dict[int, list[Milestone]] = defaultdict(list)
        for milestone in milestones:
            by_job[milestone.job_id].append(milestone)
        worked: dict[int, int] = defaultdict(int)
        for shift in shifts:
            if shift.milestone_id is not None:
                worked[shift.milestone_id] += shift.duration_seconds
                worked[shift.job_id] += shift.duration_seconds
        # The first one always has lines: a job with time if any has, non-recurring if possible.
        candidates = sorted((j for j in jobs if by_job[j.id]), key=lambda j: (worked[j.id] == 0, j.recurring))
        next_id = rng.randint(500_000, 900_000)
        lines: list[TaskLine] = []
        task_of: dict[int, int] = {}
        for index, job in enumerate(candidates):
            if index > 0 and rng.random() >= 0.35:
                continue
            phases = by_job[job.id]
            count = rng.randint(1, min(3, len(phases)))
            cuts = sorted(rng.sample(range(1, len(phases)), count - 1))
            for name, start, end in zip(_TASK_NAMES_BY_COUNT[count], [0, *cuts], [*cuts, len(phases)]):
                group = phases[start:end]
                next_id += rng.randint(1, 7)
                hours = sum(worked[m.id] for m in group) / 3600
                budget = (
                    rng.randint(8, 160) / 2 if hours == 0 else max(0.25, round(hours * rng.uniform(0.8, 1.3) * 4) / 4)
                )
                lines.append(TaskLine(next_id, job.id, name, budget, tuple(m.id for m in group)))
                task_of.update((m.id, next_id) for m in group)

        def booked(entries: list[Shift]) -> list[Shift]:
            return [replace(s, task_id=task_of[s.milestone_id]) if s.milestone_id in task_of else s for s in entries]

        milestones = [replace(m, task_id=task_of[m.id]) if m.id in task_of else m for m in milestones]
        return lines, milestones, booked(shifts), booked(deleted)
