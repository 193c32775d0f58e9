"""How the assets are cut: by company (dynamic, added when a company connects) and by ISO week.

Why weeks: Dagster advises at most 100,000 partitions per asset. 1,000 companies x 2 years is
~104,000 company-weeks but 730,000 company-days, and a 14-day initial sync is 3 weekly runs instead
of 15 daily ones. Work dates are the company's local dates, so a week is Monday..Sunday local time.
Reference data (workers, jobs) and ProPays span many weeks and are cut by company only.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

# The first week any company can sync; move it forward as history is retired (partitions before
# it stop existing, the warehouse keeps the rows).
HISTORY_START = "2025-01-06"  # a Monday

company_partitions = dg.DynamicPartitionsDefinition(name="company")
week_partitions = dg.WeeklyPartitionsDefinition(start_date=HISTORY_START, day_offset=1, end_offset=1)
company_week_partitions = dg.MultiPartitionsDefinition({"company": company_partitions, "week": week_partitions})
# A company x week partition depends on the same company's partition of a company-only asset.
BY_COMPANY = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="company")


def week_start(day: date) -> date:
    """The Monday of the ISO week holding ``day``."""
    return day - timedelta(days=day.weekday())


def week_keys(first_day: date, last_day: date) -> list[str]:
    """The week partition keys covering ``first_day``..``last_day``, oldest first."""
    keys, monday = [], week_start(max(first_day, date.fromisoformat(HISTORY_START)))
    while monday <= last_day:
        keys.append(monday.isoformat())
        monday += timedelta(days=7)
    return keys


def company_week_key(company_id: str, week: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"company": company_id, "week": week})


def split_company_week(context: dg.AssetExecutionContext) -> tuple[str, date, date]:
    """(company id, Monday, Sunday) of the partition a company x week asset is materializing."""
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    monday = date.fromisoformat(keys["week"])
    return keys["company"], monday, monday + timedelta(days=6)
