"""One face for the three emulators, so every pipeline test runs on every vendor.

Each harness hosts a generated company on its vendor's emulator and answers, in vendor-neutral
terms, what the tests need: the vendor's ground truth of time entries, edits a manager makes after
the fact (shorten, delete, move to another week), a session that dies mid-sync, a secret changed at
the vendor, and credentials that are wrong. Everything goes through the emulator's own state, so
the truth is what the vendor would serve, never what the pipeline loaded.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from protiv_emulators.generator import CompanyData

PROVIDERS = ["quickbooks_time", "aspire", "busybusy"]
LABELS = {"quickbooks_time": "QuickBooks Time", "aspire": "Aspire", "busybusy": "BusyBusy"}


def secret_fragments(secret: str) -> set[str]:
    """A secret, and for a long one its first and last 16 characters: a credential cut short (an error
    text shortened to its first 300 characters) still leaks."""
    return {secret, secret[:16], secret[-16:]} if len(secret) >= 24 else {secret}


def leaked(secrets, text: str) -> list[str]:
    """The secrets of which ``text`` holds the whole or a fragment (first four characters each)."""
    return [secret[:4] + "..." for secret in secrets if any(part in text for part in secret_fragments(secret))]


class VendorHarness:
    """A running emulator hosting one company; subclasses speak each vendor's records."""

    provider: str

    def __init__(self, data: CompanyData):
        self.data = data
        self.company_id = data.company_id
        self.zone = ZoneInfo(data.timezone)
        self.emulator: Any = None
        self.base_url = ""
        self.credentials: dict[str, str] = {}

    @property
    def label(self) -> str:
        return LABELS[self.provider]

    def stop(self) -> None:
        self.emulator.stop()

    # -- what every harness answers ---------------------------------------------------------------
    def entries(self) -> pd.DataFrame:
        """Ground truth: entry_id, work_date, hours (NaN while running) of every live time entry
        that becomes an attendance row with the vendor's own id."""
        raise NotImplementedError

    def editable_entries(self) -> pd.DataFrame:
        """Closed, clocked entries longer than two hours, oldest first: safe to shorten or move."""
        frame = self.entries()
        frame = frame[frame["hours"].notna() & (frame["hours"] > 2) & frame["clocked"]]
        return frame.sort_values(["work_date", "entry_id"], ignore_index=True)

    def shorten(self, entry_id: str, hours: float) -> None:
        raise NotImplementedError

    def delete(self, entry_id: str) -> None:
        raise NotImplementedError

    def move(self, entry_id: str, days: int, hours: float = 2.0) -> None:
        """Move the entry ``days`` later and make it ``hours`` long."""
        raise NotImplementedError

    def kill_session(self) -> None:
        """The session the pipeline holds stops being accepted (the token expires, the key dies)."""
        raise NotImplementedError

    def change_secret(self) -> None:
        """An admin changes the password or secret at the vendor; the stored one no longer works."""
        raise NotImplementedError

    def wrong_credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Every credential and token that must never appear in errors or logs."""
        return [value for value in self.credentials.values() if value]

    def statuses(self) -> list[int]:
        return [entry.status for entry in self.emulator.request_log]

    # -- ground truth of the reference tables, from the generator in the vendor's ids ------------------
    def job_key(self, unit_id: int) -> str:
        """The vendor's job_id of a generated job or milestone."""
        return str(unit_id)

    def worker_key(self, worker_id: int) -> str:
        return str(worker_id)

    def expected_created_dates(self) -> dict[str, Any]:
        """jobs.created_date of every job and milestone: the local date the generator created it."""
        return {
            self.job_key(record.id): record.created_at.astimezone(self.zone).date()
            for record in [*self.data.jobs, *self.data.milestones]
        }

    def expected_task_lines(self) -> set[tuple[str, str, str | None, float | None, float | None]]:
        """(job_id, task_id, name, budget_hours, budget_amount) of every task line."""
        return set()

    def expected_wages(self) -> set[tuple[str, Any, float]]:
        """(worker_id, effective_date, hourly_wage) of every worker_wages row."""
        return set()

    def expected_assignments(self) -> set[tuple[str, str, str]]:
        return set()

    def expected_task_ids(self) -> dict[str, str | None]:
        """attendance.task_id of every live entry that is an attendance row with the vendor's own id."""
        return {str(shift.id): None for shift in self.data.shifts}

    def _histories(self) -> set[tuple[str, Any, float]]:
        return {
            (self.worker_key(worker.id), change.effective_date, float(change.hourly_wage))
            for worker in self.data.workers
            for change in worker.wage_history
        }


class QuickBooksTimeHarness(VendorHarness):
    provider = "quickbooks_time"

    def __init__(self, data: CompanyData):
        from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

        super().__init__(data)
        self.emulator = QuickBooksTimeEmulator()
        token = self.emulator.add_company(data)
        company = self.emulator.company(self.company_id)
        self.emulator.start()
        self.base_url = self.emulator.base_url
        self.credentials = {
            "access_token": token,
            "refresh_token": company.refresh_token,
            "client_id": company.client_id,
            "client_secret": company.client_secret,
        }

    @property
    def vendor(self):
        return self.emulator.company(self.company_id)

    def entries(self) -> pd.DataFrame:
        sheets = pd.DataFrame(self.vendor.timesheets())
        running = sheets["on_the_clock"].astype(bool)
        return pd.DataFrame(
            {
                "entry_id": sheets["id"].astype(str),
                "work_date": sheets["date"],
                "hours": (sheets["duration"] / 3600.0).where(~running),
                "clocked": sheets["type"] == "regular",
            }
        )

    def _sheet(self, entry_id: str) -> dict[str, Any]:
        return next(s for s in self.vendor.timesheets() if str(s["id"]) == str(entry_id))

    def shorten(self, entry_id: str, hours: float) -> None:
        sheet = self._sheet(entry_id)
        end = datetime.fromisoformat(sheet["end"]) - timedelta(hours=hours)
        self.vendor.edit_timesheet(int(entry_id), end=end.isoformat())

    def delete(self, entry_id: str) -> None:
        self.vendor.delete_timesheet(int(entry_id))

    def move(self, entry_id: str, days: int, hours: float = 2.0) -> None:
        start = datetime.fromisoformat(self._sheet(entry_id)["start"]) + timedelta(days=days)
        self.vendor.edit_timesheet(
            int(entry_id), start=start.isoformat(), end=(start + timedelta(hours=hours)).isoformat()
        )

    def kill_session(self) -> None:
        self.emulator.faults.expire_token(self.vendor.access_token)

    def change_secret(self) -> None:
        # A revoked grant: the access token is refused and the refresh token no longer works.
        self.emulator.faults.expire_token(self.vendor.access_token)
        self.vendor._refresh_token = "revoked-" + self.vendor.refresh_token

    def wrong_credentials(self) -> dict[str, str]:
        return {"access_token": "not-a-token-the-vendor-issued"}

    def secrets(self) -> list[str]:
        return [*super().secrets(), self.vendor.access_token, self.vendor.refresh_token]


class AspireHarness(VendorHarness):
    """Aspire: work ticket times keep their ids; drive rows (``ClockTime-...``) are derived from
    clock time not on a ticket, so they are left out of the per-entry truth."""

    provider = "aspire"

    def __init__(self, data: CompanyData):
        from protiv_emulators.aspire import AspireEmulator

        super().__init__(data)
        self.emulator = AspireEmulator()
        client_id, secret = self.emulator.add_company(data)
        self.emulator.start()
        self.base_url = self.emulator.base_url
        self.credentials = {"client_id": client_id, "secret": secret}

    @property
    def vendor(self):
        return self.emulator.company(self.company_id)

    def entries(self) -> pd.DataFrame:
        times = pd.DataFrame(self.vendor.records("WorkTicketTimes"))
        return pd.DataFrame(
            {
                "entry_id": times["WorkTicketTimeID"].astype(str),
                "work_date": times["WorkTicketTimeDate"].str[:10],
                # A manual time has neither start nor end; only a clocked-in time without an end runs.
                "hours": times["Hours"].astype(float).where(times["StartTime"].isna() | times["EndTime"].notna()),
                "clocked": times["StartTime"].notna(),
            }
        )

    def _time(self, entry_id: str) -> dict[str, Any]:
        return self.vendor.times[int(entry_id)]

    def shorten(self, entry_id: str, hours: float) -> None:
        end = datetime.fromisoformat(self._time(entry_id)["EndTime"]) - timedelta(hours=hours)
        self.vendor.edit_work_ticket_time(int(entry_id), EndTime=end.isoformat())

    def delete(self, entry_id: str) -> None:
        self.vendor.delete_work_ticket_time(int(entry_id))

    def move(self, entry_id: str, days: int, hours: float = 2.0) -> None:
        start = datetime.fromisoformat(self._time(entry_id)["StartTime"]) + timedelta(days=days)
        self.vendor.edit_work_ticket_time(
            int(entry_id),
            StartTime=start.isoformat(),
            EndTime=(start + timedelta(hours=hours)).isoformat(),
            BreakTime=0.0,
        )

    def kill_session(self) -> None:
        self.emulator.expire_token(self.company_id)

    def change_secret(self) -> None:
        self.vendor.secret = "rotated-by-the-admin"
        self.vendor.refresh_token = "revoked"
        self.emulator.expire_token(self.company_id)

    def wrong_credentials(self) -> dict[str, str]:
        return {"client_id": self.credentials["client_id"], "secret": "not-the-secret"}

    def secrets(self) -> list[str]:
        return [*super().secrets(), self.vendor.token, self.vendor.refresh_token]

    def job_key(self, unit_id: int) -> str:
        from protiv_dagster.vendors.aspire.mapping import MILESTONE_PREFIX

        milestones = {m.id for m in self.data.milestones}
        return MILESTONE_PREFIX + str(unit_id) if unit_id in milestones else str(unit_id)

    def expected_created_dates(self) -> dict[str, Any]:
        from protiv_dagster.vendors.aspire.mapping import DRIVE_JOB_ID

        truth = super().expected_created_dates()
        del truth[self.job_key(self.data.drive_job.id)]  # Aspire has no drive job: a synthetic one without a date
        # The one (implicit) ticket of a recurring opportunity is its milestone, created with the job.
        for job in self._recurring_without_milestones():
            truth[self.lone_ticket_key(job.id)] = job.created_at.astimezone(self.zone).date()
        return {**truth, DRIVE_JOB_ID: None}

    def _recurring_without_milestones(self) -> list:
        return [j for j in self.data.jobs if j.recurring and not j.is_drive and not self.data.milestones_of(j.id)]

    def lone_ticket_key(self, job_id: int) -> str:
        """The milestone id of a recurring job's one implicit work ticket."""
        from protiv_dagster.vendors.aspire.mapping import MILESTONE_PREFIX
        from protiv_emulators.aspire import IMPLICIT_TICKET_BASE

        return MILESTONE_PREFIX + str(IMPLICIT_TICKET_BASE + job_id)

    def expected_task_lines(self) -> set[tuple[str, str, str | None, float | None, float | None]]:
        """The generator's line items as services, and one service of every other opportunity."""
        from protiv_emulators.aspire import IMPLICIT_SERVICE_BASE, LABOR_COST_PER_HOUR

        def amount(hours: float | None) -> float | None:
            return None if hours is None else round(hours * LABOR_COST_PER_HOUR, 2)

        truth = {
            (str(t.job_id), str(t.id), t.name, t.budget_hours, amount(t.budget_hours)) for t in self.data.task_lines
        }
        for job in self.data.jobs:
            if job.is_drive or self.data.task_lines_of(job.id):
                continue
            budgets = [m.budget_hours for m in self.data.milestones_of(job.id) if m.budget_hours is not None]
            hours = (
                job.budget_hours
                if not self.data.milestones_of(job.id)
                else (round(sum(budgets), 2) if budgets else None)
            )
            truth.add(
                (str(job.id), str(IMPLICIT_SERVICE_BASE + job.id), job.name.split(" – ")[0], hours, amount(hours))
            )
        return truth

    def expected_wages(self) -> set[tuple[str, Any, float]]:
        return self._histories()

    def expected_assignments(self) -> set[tuple[str, str, str]]:
        """The crew lead each work unit names, and the leads of the crews that clocked time on it."""
        units = [m.id for m in self.data.milestones]
        units += [j.id for j in self.data.jobs if not j.is_drive and not self.data.milestones_of(j.id)]
        # A recurring job's one ticket is its milestone: its leads are the milestone's.
        lone = {j.id: self.lone_ticket_key(j.id) for j in self._recurring_without_milestones()}
        return {
            (lone.get(u, self.job_key(u)), str(lead), "crew_lead") for u in units for lead in self.data.crew_leads_of(u)
        }

    def expected_task_ids(self) -> dict[str, str | None]:
        from protiv_emulators.aspire import IMPLICIT_SERVICE_BASE

        return {
            str(s.id): str(s.task_id if s.task_id is not None else IMPLICIT_SERVICE_BASE + s.job_id)
            for s in self.data.shifts
            if not s.is_drive
        }


class BusyBusyHarness(VendorHarness):
    provider = "busybusy"

    def __init__(self, data: CompanyData):
        from protiv_emulators.busybusy import BusyBusyEmulator

        super().__init__(data)
        self.emulator = BusyBusyEmulator()
        username, password = self.emulator.add_company(data)
        self.emulator.start()
        self.base_url = self.emulator.rest_url
        self.credentials = {"username": username, "password": password}

    @property
    def vendor(self):
        return self.emulator.company(self.company_id)

    def entries(self) -> pd.DataFrame:
        live = [e for e in self.vendor.records("timeEntries") if e["deletedOn"] is None]
        rows = []
        for entry in live:
            start = datetime.fromisoformat(entry["startTime"])
            hours = None
            if entry["endTime"]:
                seconds = (datetime.fromisoformat(entry["endTime"]) - start).total_seconds()
                seconds -= sum(
                    (datetime.fromisoformat(b["endTime"]) - datetime.fromisoformat(b["startTime"])).total_seconds()
                    for b in entry["breaks"]
                    if b["endTime"]
                )
                hours = seconds / 3600.0
            rows.append((entry["id"], start.astimezone(self.zone).date().isoformat(), hours, True))
        return pd.DataFrame(rows, columns=["entry_id", "work_date", "hours", "clocked"]).astype({"hours": float})

    def _entry(self, entry_id: str) -> dict[str, Any]:
        return next(e for e in self.vendor.records("timeEntries") if e["id"] == entry_id)

    def shorten(self, entry_id: str, hours: float) -> None:
        """End the entry ``hours`` earlier, its breaks cut at the new end as the vendor's editor
        keeps them inside the entry: a break left hanging past the end would make this harness's
        hours (every break whole) differ from the mapping's (breaks clipped to the entry) by the
        part outside, as a 10,000-company cycle found for 2 of 500 shortened entries."""
        entry = self._entry(entry_id)
        end = datetime.fromisoformat(entry["endTime"]) - timedelta(hours=hours)
        kept = [
            {**b, "endTime": min(datetime.fromisoformat(b["endTime"]), end).isoformat() if b["endTime"] else None}
            for b in entry["breaks"]
            if datetime.fromisoformat(b["startTime"]) < end
        ]
        self.vendor.edit_time_entry(entry_id, endTime=end.isoformat(), breaks=kept)

    def delete(self, entry_id: str) -> None:
        self.vendor.delete_time_entry(entry_id)

    def move(self, entry_id: str, days: int, hours: float = 2.0) -> None:
        start = datetime.fromisoformat(self._entry(entry_id)["startTime"]) + timedelta(days=days)
        self.vendor.edit_time_entry(
            entry_id, startTime=start.isoformat(), endTime=(start + timedelta(hours=hours)).isoformat(), breaks=[]
        )

    def kill_session(self) -> None:
        self.vendor._keys.clear()  # every session key the vendor issued stops being accepted

    def change_secret(self) -> None:
        self.emulator.change_password(self.company_id, "changed-at-the-vendor")

    def wrong_credentials(self) -> dict[str, str]:
        return {"username": self.credentials["username"], "password": "not-the-password"}

    def secrets(self) -> list[str]:
        password = self.credentials["password"]  # the username is not a secret: errors may name it
        return [password, hashlib.sha256(password.encode()).hexdigest(), *self.vendor._keys]

    def job_key(self, unit_id: int) -> str:
        return self.vendor.project_id(unit_id)

    def worker_key(self, worker_id: int) -> str:
        return self.vendor.member_id(worker_id)

    def expected_task_lines(self) -> set[tuple[str, str, str | None, float | None, float | None]]:
        """The generator's line items as cost code budgets of their job's project."""
        from protiv_emulators.busybusy import COST_PER_BUDGET_HOUR

        return {
            (
                self.job_key(t.job_id),
                self.vendor.task_cost_code_id(t.id),
                t.name,
                t.budget_hours,
                round(t.budget_hours * COST_PER_BUDGET_HOUR, 2),
            )
            for t in self.data.task_lines
        }

    def expected_wages(self) -> set[tuple[str, Any, float]]:
        return self._histories()

    def expected_task_ids(self) -> dict[str, str | None]:
        """The entry's cost code: its line item's, else Drive or Labor; a manual entry outside a line item none."""
        vendor = self.vendor

        def code(shift) -> str | None:
            if shift.task_id is not None:
                return vendor.task_cost_code_id(shift.task_id)
            return None if shift.manual else vendor.cost_code_id("99-900" if shift.is_drive else "01-100")

        return {vendor.entry_id(s.id): code(s) for s in self.data.shifts}


HARNESSES: dict[str, type[VendorHarness]] = {
    "quickbooks_time": QuickBooksTimeHarness,
    "aspire": AspireHarness,
    "busybusy": BusyBusyHarness,
}


def host(provider: str, data: CompanyData) -> VendorHarness:
    """Start ``provider``'s emulator hosting ``data``."""
    return HARNESSES[provider](data)
