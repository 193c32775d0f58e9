"""The dbt project's generated files: its YAML (sources, staging and marts) and each mart's SQL.

The descriptions and the SQL live once: tables in ``protiv_dagster/tables.py``, the six metric views
in ``protiv_dagster/views.py``. ``python -m protiv_dagster.data_dictionary`` writes the three YAML
files, the six ``models/marts/<view>.sql`` and docs/data-dictionary.md from them, so dbt docs, the
warehouse's comments, the Dagster UI and the data dictionary say the same thing and a mart computes
exactly what its view does; a test fails when a file is stale. The tests on each model and the
presentation columns (``DISPLAY``) are declared here too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from protiv_dagster import views
from protiv_dagster.analytics import DEFAULT_WAREHOUSE_SCHEMA
from protiv_dagster.company_settings import WORKER_ROLES
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.warehouse.declarations import Column, Table, View

PROJECT_DIR = Path(__file__).resolve().parent
SOURCE = "protiv"  # the dbt source of the warehouse tables (schema from PROTIV_WAREHOUSE_SCHEMA)
# The warehouse tables the marts read, through one staging view each.
STAGED = ("propay_opportunities", "propay_worker_bonuses", "workers")
PAY_STATES = ("final", "provisional", "none")
PROPAY_STATUSES = ("pending", "started", "completed", "canceled")

# Presentation columns: `<column>_display` beside each floating-point column, rounded as people read
# it (macros/display.sql): hours and dollars to the cent (2 decimals), percent to 1 decimal, a ratio
# (efficiency 1.153) as a percent to 1 decimal (115.3).
DISPLAY: dict[str, dict[str, str]] = {
    "propay_savings": {
        "budget_hours": "hours",
        "actual_hours": "hours",
        "saved_hours": "hours",
        "net_saved_hours": "hours",
        "efficiency": "ratio",
        "efficiency_percent": "percent",
    },
    "company_propay_summary": {
        "actual_hours": "hours",
        "saved_hours": "hours",
        "net_saved_hours": "hours",
        "efficiency": "ratio",
    },
    "propay_hours_gained": {
        "budget_hours": "hours",
        "actual_hours": "hours",
        "hours_gained": "hours",
        "saved_hours": "hours",
    },
    "company_revenue_per_hour": {"hours_worked": "hours", "revenue_per_hour": "dollars"},
    "worker_bonus_wages": {
        "propay_hours": "hours",
        "final_hours": "hours",
        "wage_increase": "dollars",
        "bonus_wage": "dollars",
        "wage_increase_percent": "percent",
    },
    "propay_leaderboard": {"hours": "hours", "net_saved_hours": "hours"},
}
DISPLAY_PLACES = {"hours": 2, "dollars": 2, "percent": 1, "ratio": 1}
_DISPLAY_TEXT = {
    "hours": "rounded to 2 decimals, for display.",
    "dollars": "rounded to the cent, for display.",
    "percent": "rounded to 1 decimal, for display.",
    "ratio": "as a percent rounded to 1 decimal (1.153 -> 115.3), for display.",
}

# Each mart's key (unique together, never null) and the columns that refer to a source table.
MART_KEYS: dict[str, tuple[str, ...]] = {
    "propay_savings": ("company_id", "propay_id"),
    "company_propay_summary": ("company_id",),
    "propay_hours_gained": ("company_id", "period", "period_start"),
    "company_revenue_per_hour": ("company_id", "month_start"),
    "worker_bonus_wages": ("company_id", "worker_id"),
    "propay_leaderboard": ("company_id", "board", "worker_id"),
}
_REFERS_TO = {"propay_id": "propay_opportunities", "worker_id": "propay_worker_bonuses"}
_ACCEPTED = {
    "pay_state": PAY_STATES,
    "status": PROPAY_STATUSES,
    "period": ("week", "month"),
    "board": ("worker", "crew_lead", "manager"),
}


def display_column(column: Column, kind: str) -> Column:
    """The presentation column of ``column`` (see DISPLAY)."""
    places = DISPLAY_PLACES[kind]
    return Column(
        f"{column.name}_display",
        f"NUMERIC(14,{places})",
        True,
        f"{column.name} {_DISPLAY_TEXT[kind]}",
    )


def mart_columns(view: View) -> tuple[Column, ...]:
    """The mart's columns: the view's, each presentation column right after its exact one."""
    columns: list[Column] = []
    for column in view.columns:
        columns.append(column)
        kind = DISPLAY[view.name].get(column.name)
        if kind:
            columns.append(display_column(column, kind))
    return tuple(columns)


def _column(column: Column, tests: list[Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": column.name, "description": column.description, "data_type": column.sql_type}
    if tests:
        entry["data_tests"] = tests
    return entry


def _accepted(name: str) -> list[Any]:
    values = _ACCEPTED.get(name)
    return [{"accepted_values": {"arguments": {"values": list(values)}}}] if values else []


def _within_company(table: str, field: str) -> dict[str, Any]:
    """The column refers to ``table.field`` of the row's own company (tests/generic): ids are unique
    only within a company, so dbt's ``relationships`` on the id alone would miss a wrong company."""
    return {"relationships_within_company": {"arguments": {"to": f"source('{SOURCE}', '{table}')", "field": field}}}


def _table(name: str) -> Table:
    return next(table for table in ALL_TABLES if table.name == name)


def sources_file() -> dict[str, Any]:
    tables = []
    for name in STAGED:
        table = _table(name)
        columns = []
        for column in table.columns:
            # The tables' NOT NULLs are the database's to enforce; tested here: the key's columns.
            tests: list[Any] = ["not_null"] if column.name in table.primary_key else []
            if name == "propay_opportunities":
                tests += _accepted(column.name)
            if name == "propay_worker_bonuses" and column.name == "role":
                tests.append({"accepted_values": {"arguments": {"values": list(WORKER_ROLES)}}})
            if name == "propay_worker_bonuses" and column.name == "propay_id":
                tests.append(_within_company("propay_opportunities", "propay_id"))
            columns.append(_column(column, tests))
        tables.append(
            {
                "name": name,
                "description": table.description,
                # The Dagster asset that writes the table: the lineage runs from it to the marts.
                "meta": {"dagster": {"asset_key": [name]}},
                "data_tests": [{"unique_key": {"arguments": {"columns": list(table.primary_key)}}}],
                "columns": columns,
            }
        )
    return {
        "version": 2,
        "sources": [
            {
                "name": SOURCE,
                "description": "The warehouse tables the Dagster assets write (docs/data-dictionary.md).",
                "schema": "{{ env_var('PROTIV_WAREHOUSE_SCHEMA', 'protiv') }}",
                "tables": tables,
            }
        ],
    }


def staging_file() -> dict[str, Any]:
    models = []
    for name in STAGED:
        table = _table(name)
        models.append(
            {
                "name": f"stg_{name}",
                "description": f"The warehouse table {name}, column for column (ephemeral): {table.description}",
                "columns": [_column(column, []) for column in table.columns],
            }
        )
    return {"version": 2, "models": models}


def marts_file() -> dict[str, Any]:
    models = []
    for view in views.ALL_VIEWS:
        key = MART_KEYS[view.name]
        columns = []
        for column in mart_columns(view):
            tests: list[Any] = ["not_null"] if column.name in key else []
            if len(key) == 1 and column.name in key:
                tests.append("unique")
            tests += _accepted(column.name)
            refers_to = _REFERS_TO.get(column.name)
            if refers_to:
                tests.append(_within_company(refers_to, column.name))
            columns.append(_column(column, tests))
        model: dict[str, Any] = {"name": view.name, "description": view.description}
        if len(key) > 1:
            model["data_tests"] = [{"unique_key": {"arguments": {"columns": list(key)}}}]
        model["columns"] = columns
        models.append(model)
    return {"version": 2, "models": models}


HEADER = "# Generated by `python -m protiv_dagster.data_dictionary` from {origin}: edit those, not this file.\n"
FILES = {
    Path("models") / "staging" / "sources.yml": (sources_file, "protiv_dagster/tables.py"),
    Path("models") / "staging" / "schema.yml": (staging_file, "protiv_dagster/tables.py"),
    Path("models") / "marts" / "schema.yml": (marts_file, "protiv_dagster/views.py and analytics/schema_files.py"),
}

# A view names a warehouse table as `{schema}.<table>`; its mart reads the table's staging model.
_TABLE_OF_THE_VIEW = re.compile(r"\{schema\}\.([a-z_][a-z0-9_]*)")
MART_HEADER = """\
-- The view {schema}.{view} as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
"""


def mart_sql(view: View) -> str:
    """The mart's dbt model: the view's own SQL (CTE ``exact``), then its columns, each presentation
    column right after its exact one. A table without a staging model fails here, not in dbt."""

    def staged(table: re.Match[str]) -> str:
        name = table[1]
        if name not in STAGED:
            raise ValueError(
                f"the view {view.name} reads {name}, which has no staging model: add {name} to STAGED in "
                f"protiv_dagster/analytics/schema_files.py and write models/staging/stg_{name}.sql"
            )
        return f"{{{{ ref('stg_{name}') }}}}"

    select = _TABLE_OF_THE_VIEW.sub(staged, view.select.strip())
    # Anything else in braces would be read by dbt as Jinja (or be a table named some other way).
    left = _TABLE_OF_THE_VIEW.sub("", view.select)
    if "{" in left or "}" in left:
        raise ValueError(f"the view {view.name} has braces other than {{schema}}.<table>: dbt would read them as Jinja")
    exact = "\n".join(f"    {line}" if line.strip() else "" for line in select.splitlines())
    columns = []
    for column in view.columns:
        columns.append(column.name)
        kind = DISPLAY[view.name].get(column.name)
        if kind:
            columns.append(f"{{{{ display('{column.name}', '{kind}') }}}}")
    header = MART_HEADER.format(schema=DEFAULT_WAREHOUSE_SCHEMA, view=view.name)
    selected = ",\n".join(f"    {column}" for column in columns)
    return f"{header}WITH exact AS (\n{exact}\n)\nSELECT\n{selected}\nFROM exact\n"


def mart_path(view: View) -> Path:
    return Path("models") / "marts" / f"{view.name}.sql"


def rendered() -> dict[Path, str]:
    """Each generated file's path in the project and its text: the YAML, and each mart's SQL."""
    files = {
        path: HEADER.format(origin=origin) + yaml.safe_dump(build(), sort_keys=False, width=120, allow_unicode=True)
        for path, (build, origin) in FILES.items()
    }
    files.update({mart_path(view): mart_sql(view) for view in views.ALL_VIEWS})
    return files


def write(project_dir: Path = PROJECT_DIR) -> list[Path]:
    written = []
    for path, text in rendered().items():
        (project_dir / path).write_text(text, encoding="utf-8")
        written.append(project_dir / path)
    return written
