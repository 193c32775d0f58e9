"""When the cleaned and ProPay layers update by themselves (declarative automation).

Both are Dagster's ``eager`` condition (update after an upstream change, never while an upstream is
being written), adjusted to this partitioning:

- Attendance of a company-week follows the updates of its raw partition (see _EAGER_ANY_WEEK). It
  ignores the company's workers and jobs: those change every day, and re-cleaning every week of
  history for each change would be waste; a sync that refreshes workers and jobs re-syncs the weeks
  it needs.
- The ProPay partition of a company follows every update of any of its weeks, whenever it lands
  (see PROPAY_FOLLOWS_ATTENDANCE). It waits for the company's workers and jobs (a company whose
  vendor refused it gets no empty ProPay table), but not for missing weeks: weeks before a
  company's attendance pull date are never synced.
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

# Dagster's ``eager`` without two of its parts: the latest-week limit (above), and its trigger for
# partitions that become missing (``newly_missing``). That trigger lists every company-week of the asset
# at each evaluation, whether or not anything happened: with 10,000 companies and 100 weeks it was most
# of the automation's 23-25 s of CPU and of its 2.3 GiB (bench/RESULTS.md, issue 20). Here it starts
# nothing: a week's attendance goes missing only with its company's new partitions, whose raw week is
# missing too (``any_deps_missing`` holds them back), and the week runs write raw and attendance
# together. What it would have caught, a week of attendance wiped while its raw week stays, is redone by
# the company's next sync of that week or by a Materialize.
_EAGER_ANY_WEEK = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("eager, any week, after updates")

ATTENDANCE_FOLLOWS_RAW = _EAGER_ANY_WEEK.ignore(dg.AssetSelection.assets("workers", "jobs"))

# A week of attendance written since the last evaluation, stamped with the time it was written.
# Bare ``newly_updated`` inside ``any_deps_match`` keeps those stamps (Dagster drops them through
# ``&`` and ``|``, so ``any_deps_updated()`` carries none), which is what lets ``since`` below tell
# an attendance update after the ProPays' request from one before it.
_ATTENDANCE_UPDATED = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    .ignore(dg.AssetSelection.assets("workers", "jobs"))
    .with_label("attendance updated")
)
# Handled only by a request of the ProPays, stamped with the evaluation that made it. ``eager``
# also counts a ProPay materialization as handling, and when one and a later attendance update
# both land between two evaluations the materialization wins, whatever their order: a ProPay run
# that read the attendance before a refresh's week run (or a second refresh batch) rewrote it left
# the ProPays stale until the next change. Here an attendance update written after the request
# (while the run was queued, running or done) keeps the trigger, and the ProPays run again once
# that run has ended. A ProPay run started by hand or by ``protiv sync`` handles nothing: the
# attendance it followed is recomputed once more by the automation (idempotent; the evaluation
# cannot know whether that run read the attendance before or after the update). It is the condition
# of propay_opportunities alone: the other ProPay tables come from the same engine run, which Dagster
# requests whole (assets/propay.py).
PROPAY_FOLLOWS_ATTENDANCE = (
    _ATTENDANCE_UPDATED.since(dg.AutomationCondition.newly_requested())
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & ~(dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets("attendance")))
).with_label("after every attendance update, any week")

# The promise: a sync every two hours. Warn at two hours, fail once a refresh cycle has clearly been
# missed. (A quiet company's partitions are not rewritten; its connection_healthy check says whether
# its data is current.)
TWO_HOUR_PROMISE = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=2, minutes=20), warn_window=timedelta(hours=2)
)

# The group of the dbt marts (assets/analytics.py, which imports this module).
ANALYTICS_GROUP = "analytics"
ANALYTICS_MARTS = dg.AssetSelection.groups(ANALYTICS_GROUP)

# The analysts' copy follows every ProPay write of any company, stamped as above so that a write
# landing while a publication runs triggers one more. It does not wait for syncs in progress: with
# many companies one is nearly always running, and a copy taken between two partition writes is
# still a consistent database (every write is one transaction). It does wait while the marts are
# requested or rebuilt (they follow the same ProPay writes, and are views in the same file): one
# publication after both, not one after the ProPays and another after the marts. Marts that fail
# still end the wait, and the ProPay update still publishes.
ANALYSTS_COPY_FOLLOWS_PROPAYS = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    .with_label("a ProPay table or a mart updated")
    .since(dg.AutomationCondition.newly_requested())
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.will_be_requested() | dg.AutomationCondition.in_progress()
    )
    .allow(ANALYTICS_MARTS)
    .with_label("the marts requested or being rebuilt")
    & ~dg.AutomationCondition.in_progress()
).with_label("after every ProPay update, once the marts are rebuilt")

# A company's report follows every update of that company's ProPay tables (same company partition:
# other companies' reports do not run), stamped as above so that a ProPay write landing while the
# report runs triggers one more. It waits while a ProPay run of its company is requested or in
# progress: requested beside it, the report would read the ProPays that run is about to replace.
REPORT_FOLLOWS_PROPAYS = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    .with_label("its company's ProPays updated")
    .since(dg.AutomationCondition.newly_requested())
    & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested()).with_label(
        "its company's ProPays requested"
    )
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after every ProPay update of its company")

# The analysts' marts (dbt views over the ProPay tables, not partitioned) follow every ProPay write
# of any company as the analysts' copy does, not once per company partition. They read the workers
# too (names, base wage), but a reference sync's workers alone start nothing: the ProPays that
# follow the next week's attendance bring the marts along.
MARTS_FOLLOW_PROPAYS = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    .ignore(dg.AssetSelection.assets("workers"))
    .with_label("a ProPay table updated")
    .since(dg.AutomationCondition.newly_requested())
    & ~dg.AutomationCondition.in_progress()
).with_label("after every ProPay update")
