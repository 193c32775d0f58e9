"""The jobs of a company sync; runs launched by the CLI, the sensors and the schedule use them."""

from __future__ import annotations

import dagster as dg

from protiv_dagster.assets.attendance import attendance, jobs, workers
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.assets.propay import propay_tables
from protiv_dagster.assets.raw import raw_timesheets

# The three steps of a company sync, in order: reference data, its weeks of attendance, ProPays.
sync_company_reference = dg.define_asset_job(
    "sync_company_reference",
    selection=[workers, jobs],
    description="Workers and jobs of one company from its vendor.",
)
sync_company_week = dg.define_asset_job(
    "sync_company_week",
    selection=[raw_timesheets, attendance],
    description="One company's time entries of one ISO week, or of consecutive weeks in one run (one "
    "vendor query for all of them): raw, then cleaned attendance.",
)
compute_propay = dg.define_asset_job(
    "compute_propay",
    selection=[propay_tables],
    description="One company's ProPays, worker bonuses and overtime weeks from its cleaned tables.",
)
check_connection = dg.define_asset_job(
    "check_connection",
    selection=[vendor_connection],
    description="Records one company's connection health and its connection_healthy check (launched by the connection_status sensor).",
)
