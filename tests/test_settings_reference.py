"""docs/settings.md is generated from the settings model, and its example is valid settings."""

from pathlib import Path

from protiv_dagster.company_settings import CompanySettings, parse_settings
from protiv_dagster.settings_reference import EXAMPLE, PAGE, settings_page

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_settings_page_is_current():
    assert (ROOT / PAGE).read_text(encoding="utf-8") == settings_page(), (
        "docs/settings.md is stale: run .venv/bin/python -m protiv_dagster.settings_reference"
    )


def test_every_setting_is_on_the_page_with_its_description():
    page = settings_page()
    for name, field in CompanySettings.model_fields.items():
        assert f"| `{name}` |" in page and field.description and field.description.split("|")[0][:40] in page


def test_the_example_on_the_page_is_accepted():
    assert parse_settings(EXAMPLE).worker_roles == {"1042": "crew_lead", "1077": "manager"}
