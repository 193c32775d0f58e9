"""Company settings: defaults that keep stored settings valid, and errors that name the setting."""

from datetime import date

import pytest

from protiv_dagster.company_settings import CompanySettings, SettingsError, parse_settings


def error(raw) -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, company_id="acme")
    return str(caught.value)


def test_defaults_and_settings_stored_before_the_engine_stay_valid():
    old = {"timezone": "America/Chicago", "worker_share": 0.5, "role_buckets": {"crew": 1.0},
           "include_drive_time": False, "drive_job_patterns": ["Drive*"], "budget_hours_field": "Budget Hours",
           "job_status_field": "Job Status", "recurring_field": "Recurring"}
    settings = parse_settings(old)
    assert (settings.distribution_method, settings.lead_multiplier, settings.default_budget_type) == ("hours", 1.5, "hours")
    assert (settings.budget_modification_percent, settings.overtime_weekly_hours, settings.workweek_start) == (100, 40, "monday")
    assert settings.overtime_daily_hours is None and settings.launch_date is None


def test_round_trip_through_json_as_the_registry_stores_it():
    settings = parse_settings({
        "launch_date": "2026-03-01", "exclusions": {"name_patterns": ["TEST*"], "manual": {"J1": "demo job"}},
        "worker_roles": {"w1": "crew_lead"}, "penalties": {"J2": 50}, "disqualifications": {"J3": "callback"},
        "distribution_method": "manual", "manual_distribution": {"w1": 60, "w2": 40},
    })
    assert settings.launch_date == date(2026, 3, 1)
    assert CompanySettings.model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"role_buckets": {"crew": 0.7, "manager": 0.2}}, "role_buckets: Value error, role buckets must sum to 100 %"),
        ({"role_buckets": {"company": 1.0}}, "nobody would earn a bonus"),
        ({"budget_modification_percent": 0}, "budget_modification_percent: Input should be greater than or equal to 1"),
        ({"budget_modification_percent": 250}, "budget_modification_percent: Input should be less than or equal to 200"),
        ({"distribution_method": "seniority"}, "distribution_method: Input should be 'hours', 'wage'"),
        ({"worker_roles": {"w1": "boss"}}, "worker_roles.w1: Input should be 'crew'"),
        ({"distribution_method": "manual"}, "needs manual_distribution"),
        ({"manual_distribution": {"w1": 0}}, "manual_distribution.w1: Input should be greater than 0"),
        ({"penalties": {"J1": -5}}, "penalties.J1: Input should be greater than or equal to 0"),
        ({"disqualifications": {"J1": " "}}, "disqualifications need a reason"),
        ({"exclusions": {"names": ["TEST*"]}}, "exclusions.names: Extra inputs are not permitted"),
        ({"exclusions": {"name_patterns": [""]}}, "exclusions.name_patterns: Value error, must not contain a blank entry"),
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
