"""The status's next refresh: the schedule's next tick, or with a spread refresh the company's turn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from protiv_dagster.integrations.service import next_refresh
from protiv_dagster.settings import REFRESH_CRON_VARIABLE, REFRESH_SPREAD_VARIABLE

NOW = datetime(2026, 12, 4, 10, 25, tzinfo=UTC)


def test_every_company_is_asked_at_the_next_tick_without_a_spread(monkeypatch):
    monkeypatch.setenv(REFRESH_CRON_VARIABLE, "0 */2 * * *")
    monkeypatch.delenv(REFRESH_SPREAD_VARIABLE, raising=False)
    assert next_refresh(NOW, NOW - timedelta(minutes=25)) == datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert next_refresh(NOW) == datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_with_a_spread_a_company_is_asked_that_many_ticks_after_its_last_check(monkeypatch):
    monkeypatch.setenv(REFRESH_CRON_VARIABLE, "*/10 * * * *")
    monkeypatch.setenv(REFRESH_SPREAD_VARIABLE, "12")
    # Asked at the 10:10 tick: its turn comes again twelve ticks later, two hours on.
    assert next_refresh(NOW, datetime(2026, 12, 4, 10, 10, 3, tzinfo=UTC)) == datetime(2026, 12, 4, 12, 10, tzinfo=UTC)
    # Asked exactly at a tick's moment: that tick counts as its check, not as the first of the twelve.
    assert next_refresh(NOW, datetime(2026, 12, 4, 10, 10, tzinfo=UTC)) == datetime(2026, 12, 4, 12, 10, tzinfo=UTC)
    # Overdue (the daemon was down) or never asked: the next tick.
    assert next_refresh(NOW, NOW - timedelta(hours=5)) == datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
    assert next_refresh(NOW) == datetime(2026, 12, 4, 10, 30, tzinfo=UTC)


def test_a_bad_spread_or_cron_gives_no_time_instead_of_failing_the_status(monkeypatch):
    monkeypatch.setenv(REFRESH_SPREAD_VARIABLE, "often")
    assert next_refresh(NOW, NOW) is None
    monkeypatch.setenv(REFRESH_SPREAD_VARIABLE, "3")
    monkeypatch.setenv(REFRESH_CRON_VARIABLE, "not a cron")
    assert next_refresh(NOW, NOW) is None
