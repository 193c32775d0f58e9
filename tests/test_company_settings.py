"""Company settings: defaults that keep stored settings valid, and errors that name the setting."""

from datetime import date

import pytest

from protiv_dagster.company_settings import CompanySettings, SettingsError, parse_settings


def error(raw) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, company_id="acme")
    return str(caught.value)


def test_defaults_and_settings_stored_before_the_engine_stay_valid():
    old = {
        "timezone": "America/Chicago",
        "worker_share": 0.5,
        "role_buckets": {"crew": 1.0},
        "include_drive_time": False,
        "drive_job_patterns": ["Drive*"],
        "budget_hours_field": "Budget Hours",
        "job_status_field": "Job Status",
        "recurring_field": "Recurring",
    }
    settings = parse_settings(old)
    assert (settings.distribution_method, settings.lead_multiplier, settings.default_budget_type) == (
        "hours",
        1.5,
        "hours",
    )
    assert (settings.budget_modification_percent, settings.overtime_weekly_hours, settings.workweek_start) == (
        100,
        40,
        "monday",
    )
    assert settings.overtime_daily_hours is None and settings.launch_date is None


def test_round_trip_through_json_as_the_registry_stores_it():
    settings = parse_settings(
        {
            "launch_date": "2026-03-01",
            "exclusions": {"name_patterns": ["TEST*"], "manual": {"J1": "demo job"}},
            "worker_roles": {"w1": "crew_lead"},
            "penalties": {"J2": 50},
            "disqualifications": {"J3": "callback"},
            "distribution_method": "manual",
            "manual_distribution": {"w1": 60, "w2": 40},
        }
    )
    assert settings.launch_date == date(2026, 3, 1)
    assert CompanySettings.model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"role_buckets": {"crew": 0.7, "manager": 0.2}}, "role_buckets: Value error, role buckets must sum to 100 %"),
        ({"role_buckets": {"company": 1.0}}, "nobody would earn a bonus"),
        ({"budget_modification_percent": 0}, "budget_modification_percent: Input should be greater than or equal to 1"),
        (
            {"budget_modification_percent": 250},
            "budget_modification_percent: Input should be less than or equal to 200",
        ),
        ({"distribution_method": "seniority"}, "distribution_method: Input should be 'hours', 'wage'"),
        ({"worker_roles": {"w1": "boss"}}, "worker_roles.w1: Input should be 'crew'"),
        ({"distribution_method": "manual"}, "needs manual_distribution"),
        ({"manual_distribution": {"w1": 0}}, "manual_distribution.w1: Input should be greater than 0"),
        ({"penalties": {"J1": -5}}, "penalties.J1: Input should be greater than or equal to 0"),
        ({"disqualifications": {"J1": " "}}, "disqualifications need a reason"),
        ({"exclusions": {"names": ["TEST*"]}}, "exclusions.names: Extra inputs are not permitted"),
        (
            {"exclusions": {"name_patterns": [""]}},
            "exclusions.name_patterns: Value error, must not contain a blank entry",
        ),
        ({"launch_date": "soon"}, "launch_date: Input should be a valid date"),
        ({"workweek_start": "funday"}, "workweek_start: Input should be 'monday'"),
        ({"overtime_weekly_hours": 0}, "overtime_weekly_hours: Input should be greater than 0"),
        ({"overtime_daily_hours": 30}, "overtime_daily_hours: Input should be less than or equal to 24"),
        ({"default_budget_type": "per visit"}, "default_budget_type: Input should be 'hours'"),
        ({"labor_budget_percent": 120}, "labor_budget_percent: Input should be less than or equal to 100"),
        ({"burden_percent": -1}, "burden_percent: Input should be greater than or equal to 0"),
        ({"lead_multiplier": 0}, "lead_multiplier: Input should be greater than 0"),
        ({"bonus_split": 0.5}, "bonus_split: Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_setting(raw, message):
    text = error(raw)
    assert text.startswith("invalid settings for company 'acme': ")
    assert message in text


# --- Exact numbers and settings history ---------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402
from fractions import Fraction  # noqa: E402

from pydantic import ValidationError  # noqa: E402

from protiv_dagster.company_settings import SettingsHistory, SettingsVersion, exact  # noqa: E402


def test_numbers_are_read_as_the_decimals_they_were_written_as():
    assert exact(0.1) == Fraction(1, 10) and exact(0.33335) == Fraction(33335, 100000)
    assert exact(18.5) == Fraction(37, 2) and exact("2.50") == Fraction(5, 2) and exact(7) == 7


def test_count_jobs_before_pull_date_is_off_by_default_and_thresholds_are_whole_seconds():
    assert parse_settings({}).count_jobs_before_pull_date is False
    assert parse_settings({"overtime_daily_hours": 7.75, "overtime_weekly_hours": 40.5}).overtime_daily_hours == 7.75
    assert "overtime_daily_hours: Value error, must be a whole number of seconds" in error(
        {"overtime_daily_hours": 8.0001}
    )


def version(number, day, **settings):
    return SettingsVersion(version=number, effective_from=day, settings=CompanySettings(**settings))


def test_the_version_in_force_on_a_day():
    history = SettingsHistory(
        versions=(
            version(1, None),
            version(2, date(2026, 3, 1), worker_share=0.6),
            version(4, date(2026, 6, 1), worker_share=0.7),
        )
    )
    assert [
        history.in_force(d).version
        for d in (
            date(2020, 1, 1),
            date(2026, 2, 28),
            date(2026, 3, 1),
            date(2026, 5, 31),
            date(2026, 6, 1),
            date(2030, 1, 1),
        )
    ] == [1, 1, 2, 2, 4, 4]
    assert history.in_force(None).version == 4 and history.latest.settings.worker_share == 0.7
    # The first version applies to any date before the second one's, even when it names a date of its own.
    dated = SettingsHistory(versions=(version(1, date(2026, 1, 1)), version(2, date(2026, 3, 1))))
    assert dated.in_force(date(2025, 1, 1)).version == 1


def test_plain_settings_are_one_version_in_force_always():
    settings = CompanySettings(worker_share=0.4)
    history = SettingsHistory.of(settings)
    assert [(v.version, v.effective_from, v.settings) for v in history.versions] == [(1, None, settings)]
    assert SettingsHistory.of(history) is history


def test_versions_from_the_registry_keep_their_numbers():
    @dataclass
    class Stored:  # the registry's StoredSettingsVersion has these attributes (and recorded_at)
        version: int
        effective_from: date | None
        settings: CompanySettings

    history = SettingsHistory.of(
        [Stored(2, None, CompanySettings()), Stored(3, date(2026, 5, 1), CompanySettings(worker_share=1.0))]
    )
    assert [v.version for v in history.versions] == [2, 3] and history.in_force(
        date(2026, 5, 1)
    ).settings.worker_share == 1.0
    assert SettingsHistory.model_validate_json(history.model_dump_json()) == history


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ([], "at least 1 item"),
        ([(2, None), (2, "2026-01-01")], "version numbers must increase"),
        ([(1, None), (2, "2026-03-01"), (3, "2026-03-01")], "effective_from must strictly increase"),
        ([(1, "2026-03-01"), (2, "2026-02-01")], "effective_from must strictly increase"),
        ([(1, None), (2, None)], "only the first version may apply from the start"),
        ([(0, None)], "greater than or equal to 1"),
    ],
)
def test_histories_that_could_not_say_which_version_is_in_force_are_refused(versions, message):
    raw = {"versions": [{"version": n, "effective_from": day, "settings": {}} for n, day in versions]}
    with pytest.raises(ValidationError) as caught:
        SettingsHistory.model_validate(raw)
    assert message in str(caught.value)
