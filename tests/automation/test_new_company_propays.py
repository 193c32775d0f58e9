"""A new company's ProPays are computed from its attendance, never from its workers and jobs alone.

Found by tests/test_daemon_e2e.py comparing the daemon's warehouse with a clean sync: the ProPay
partition of a new company is missing from the start, and Dagster's ``eager`` condition keeps that
"newly missing" trigger until it can run, so the ProPays ran as soon as the reference run (workers,
jobs) ended, before the week run that brings the attendance. When that ProPay run and the week run
then ended between two evaluations, the week's update counted as handled: the company's ProPays
stayed computed from no attendance at all (no hours, no cost) until its next change. The ticks below
put the runs in exactly that order, as the daemon can.
"""

from __future__ import annotations

from tests.assets.conftest import COMPANY
from tests.automation.conftest import Daemon
from tests.automation.test_automation import propay_hours


def test_a_new_companys_propays_wait_for_its_attendance(pipeline, daemon: Daemon):
    daemon.launch(daemon.tick_sensor("new_connections").run_requests)  # the reference run
    # Workers and jobs are in, the week run is not launched yet: nothing for the ProPays to follow.
    assert daemon.follow_upstream() == []

    weeks = daemon.tick_sensor("company_syncs").run_requests
    assert [r.job_name for r in weeks] == ["sync_company_week"]
    daemon.launch(weeks)
    assert ("propay_opportunities", COMPANY) in daemon.follow_upstream()
    assert propay_hours(pipeline) > 0
    assert daemon.failures == []
