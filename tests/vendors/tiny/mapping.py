"""Tiny Clock lists people, jobs and entries in the shapes of QuickBooks Time's users, jobcodes and
timesheets, so its mapping is QuickBooks Time's under other names."""

from __future__ import annotations

from protiv_dagster.vendors.quickbooks_time.mapping import (
    jobcodes_to_jobs as jobs_to_jobs,
)
from protiv_dagster.vendors.quickbooks_time.mapping import (
    timesheets_to_attendance as entries_to_attendance,
)
from protiv_dagster.vendors.quickbooks_time.mapping import (
    users_to_workers as people_to_workers,
)

__all__ = ["entries_to_attendance", "jobs_to_jobs", "people_to_workers"]
