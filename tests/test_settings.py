"""The environment variables the project reads: defaults, and a bad value named in the error."""

from __future__ import annotations

import pytest

from protiv_dagster.settings import (
    DEFAULT_REFRESH_CRON,
    REFRESH_CRON_VARIABLE,
    REFRESH_SPREAD_VARIABLE,
    SettingError,
    refresh_cron,
    refresh_spread,
)


def test_the_refresh_asks_every_company_every_two_hours_by_default(monkeypatch):
    monkeypatch.delenv(REFRESH_CRON_VARIABLE, raising=False)
    monkeypatch.delenv(REFRESH_SPREAD_VARIABLE, raising=False)
    assert (refresh_cron(), refresh_spread()) == (DEFAULT_REFRESH_CRON, 1)
    monkeypatch.setenv(REFRESH_SPREAD_VARIABLE, " 12 ")
    assert refresh_spread() == 12


@pytest.mark.parametrize("value", ["0", "-3", "twelve", "1.5", "1441"])
def test_a_bad_refresh_spread_is_refused_with_the_variable_and_the_value_named(monkeypatch, value):
    monkeypatch.setenv(REFRESH_SPREAD_VARIABLE, value)
    with pytest.raises(SettingError) as refused:
        refresh_spread()
    assert REFRESH_SPREAD_VARIABLE in str(refused.value) and repr(value) in str(refused.value)
