"""How the assets are cut: by company (dynamic, added when a company connects) and by ISO week.

Why weeks: Dagster advises at most 100,000 partitions per asset. 1,000 companies x 2 years is
~104,000 company-weeks but 730,000 company-days, and a 14-day initial sync is 3 weekly runs instead
of 15 daily ones. Work dates are the company's local dates, so a week is Monday..Sunday local time.
Reference data (workers, jobs) and ProPays span many weeks and are cut by company only.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from datetime import date, timedelta

import dagster as dg

# Partitioned asset checks are a Dagster preview; one result per company partition is what the UI
# shows as each company's green or red status and ties each count check to its company, so we
# accept the preview and keep its warning quiet.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")

# The first week any company can sync; move it forward as history is retired (partitions before
# it stop existing, the warehouse keeps the rows).
HISTORY_START = "2025-01-06"  # a Monday

# The dynamic partition set of companies, by the name the instance keeps it under.
COMPANY_PARTITIONS_NAME = "company"
company_partitions = dg.DynamicPartitionsDefinition(name=COMPANY_PARTITIONS_NAME)
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


def weeks_by_company(context: dg.AssetExecutionContext) -> dict[str, list[date]]:
    """The Mondays of each company a company x week asset is materializing, oldest first.

    One partition, or a range (the week assets run a backfill as one run: a sync of many weeks is
    one run asking the vendor once for all of them). A range picked in the UI may even span several
    companies."""
    mondays: dict[str, list[date]] = defaultdict(list)
    for key in context.partition_keys:
        # A range's keys come as text "<company>|<week>" (dimensions in name order; the week is last).
        company_id, week = (
            (key.keys_by_dimension["company"], key.keys_by_dimension["week"])
            if isinstance(key, dg.MultiPartitionKey)
            else key.rsplit("|", 1)
        )
        mondays[company_id].append(date.fromisoformat(week))
    return {company_id: sorted(set(weeks)) for company_id, weeks in mondays.items()}


def consecutive_runs(mondays: list[date]) -> list[list[date]]:
    """Mondays grouped into runs of consecutive weeks: each run is one window to ask a vendor for."""
    groups: list[list[date]] = []
    for monday in sorted(set(mondays)):
        if groups and monday - groups[-1][-1] == timedelta(days=7):
            groups[-1].append(monday)
        else:
            groups.append([monday])
    return groups


# Dagster's tags for a run over a partition range (a run over one company's consecutive weeks).
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def company_week_range_tags(company_id: str, first_week: str, last_week: str) -> dict[str, str]:
    """The tags making a run of the week job cover ``first_week``..``last_week`` of one company."""
    return {
        RANGE_START_TAG: str(company_week_key(company_id, first_week)),
        RANGE_END_TAG: str(company_week_key(company_id, last_week)),
    }
