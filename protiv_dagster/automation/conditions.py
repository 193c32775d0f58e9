"""When the cleaned and ProPay layers update by themselves (declarative automation).

Both are Dagster's ``eager`` condition (update after an upstream change, never while an upstream is
being written), adjusted to this partitioning:

- Attendance of a company-week follows its raw partition. It ignores the company's workers and jobs:
  those change every day, and re-cleaning every week of history for each change would be waste; a
  sync that refreshes workers and jobs re-syncs the weeks it needs.
- The ProPay partition of a company follows any of its weeks, its workers and its jobs. It waits for
  the company's workers and jobs (a company whose vendor refused it gets no empty ProPay table), but
  not for missing weeks: weeks before a company's attendance pull date are never synced.
- Neither is limited to the latest week: a late edit three weeks back must reach the ProPays.
- The ProPay partition is started by updated weeks only; it waits for workers and jobs but is not
  started by them. Every sync that refreshes workers and jobs re-syncs at least the current week
  after them, so their changes reach the ProPays with that week. Started by the reference run too, it
  would run before the week runs with the old attendance, and when its run and a week run then end
  between two evaluations, Dagster counts the week's update as handled by that ProPay run: the
  ProPays would stay stale until the next change (bench/two_hour_cycle.py found it). After
  materializing only workers or jobs by hand, materialize the ProPays too.
- For the same reason the ProPay partition is not started by being new either: ``eager`` also runs a
  partition that became missing, and keeps that trigger until its dependencies are in, so a new
  company's ProPays ran right after its reference run, from no attendance, and stayed so when that
  run and the week run ended between two evaluations (tests/automation/test_new_company_propays.py;
  tests/test_daemon_e2e.py found it). Its first week's attendance starts it.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

_EAGER_ANY_WEEK = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())

ATTENDANCE_FOLLOWS_RAW = _EAGER_ANY_WEEK.ignore(dg.AssetSelection.assets("workers", "jobs"))
# eager() without its latest-time-window limit and without its newly-missing trigger.
_EAGER_ON_UPDATES_ANY_WEEK = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("eager on updates, any week")
PROPAY_FOLLOWS_ATTENDANCE = _EAGER_ON_UPDATES_ANY_WEEK.ignore(
    dg.AssetSelection.assets("workers", "jobs")
) & ~(dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets("attendance")))

# The promise: a sync every two hours. Warn at two hours, fail once a refresh cycle has clearly been
# missed. (A quiet company's partitions are not rewritten; its connection_healthy check says whether
# its data is current.)
TWO_HOUR_PROMISE = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2, minutes=20), warn_window=timedelta(hours=2))
