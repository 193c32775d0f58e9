"""The data dictionary page (docs/data-dictionary.md), built from the table and view declarations.

Tables come from the pandera models (``tables.py``) and views from ``views.py``, the same text that
becomes the warehouse's column comments and the Dagster UI's column schema, so the three never
disagree. ``python -m protiv_dagster.data_dictionary`` rewrites the page; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from protiv_dagster import views
from protiv_dagster.resources.warehouse import Column
from protiv_dagster.tables import ALL_TABLES

PAGE = Path("docs") / "data-dictionary.md"

INTRODUCTION = """\
# Data dictionary

Every table and view of the warehouse schema `protiv` (DuckDB by default, PostgreSQL in production),
column by column. Money is in US dollars (NUMERIC, exact to the cent), hours are worker-hours (the
sum over workers of their hours, never elapsed crew time), ratios are plain numbers (1.1 = 110 %).
Every row belongs to one company (`company_id`); filter on it in every query.

This page is generated from `protiv_dagster/schemas.py`, `protiv_dagster/tables.py` and
`protiv_dagster/views.py`; edit those, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
The same descriptions are the column comments in the warehouse and the column schema in Dagster.
"""

EXAMPLES = """\
## Example queries

Saved hours and efficiency of one company's completed ProPays, best first:

```sql
SELECT name, budget_hours, actual_hours, saved_hours, net_saved_hours, efficiency_percent
FROM protiv.propay_savings
WHERE company_id = 'acme' AND status = 'completed' AND NOT excluded
ORDER BY net_saved_hours DESC;
```

Why does a job have no bonus?

```sql
SELECT name, status, exclusion_reason, disqualification_reason, saved_amount, overage_amount
FROM protiv.propay_opportunities
WHERE company_id = 'acme' AND (exclusion_reason IS NOT NULL OR disqualified OR bonus_pool = 0);
```

Hours gained per month:

```sql
SELECT period_start, completed_propays, hours_gained
FROM protiv.propay_hours_gained
WHERE company_id = 'acme' AND period = 'month'
ORDER BY period_start;
```

What each worker earned on one ProPay, and the overtime owed on it:

```sql
SELECT w.first_name, w.last_name, b.role, b.hours, b.bonus, b.overtime_adjustment
FROM protiv.propay_worker_bonuses b
JOIN protiv.workers w USING (company_id, worker_id)
WHERE b.company_id = 'acme' AND b.propay_id = '1042'
ORDER BY b.bonus DESC;
```

Top five crew leads and everyone's bonus wage:

```sql
SELECT rank, first_name, last_name, propays, net_saved_hours, bonus
FROM protiv.propay_leaderboard
WHERE company_id = 'acme' AND board = 'crew_lead' AND rank <= 5
ORDER BY rank;

SELECT first_name, last_name, base_wage, bonus_wage, wage_increase, wage_increase_percent
FROM protiv.worker_bonus_wages
WHERE company_id = 'acme'
ORDER BY wage_increase_percent DESC;
```
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _columns(columns: tuple[Column, ...], primary_key: tuple[str, ...] = ()) -> list[str]:
    rows = ["| column | type | null | meaning |", "|---|---|---|---|"]
    for column in columns:
        name = f"**{column.name}**" if column.name in primary_key else column.name
        rows.append(f"| {name} | {column.sql_type} | {'yes' if column.nullable else 'no'} | {_cell(column.description)} |")
    return rows


def dictionary_page() -> str:
    lines = [INTRODUCTION, "## Tables", ""]
    for table in ALL_TABLES:
        lines += [
            f"### {table.name}",
            "",
            table.description,
            "",
            f"Primary key: {', '.join(table.primary_key)} (bold below).",
            "",
            *_columns(table.columns, table.primary_key),
            "",
        ]
    _, _, decisions = (views.__doc__ or "").strip().partition("\n")
    lines += ["## Views", "", decisions.strip(), ""]
    for view in views.ALL_VIEWS:
        lines += [
            f"### {view.name}",
            "",
            view.description,
            "",
            *_columns(view.columns),
            "",
            "<details><summary>Definition</summary>",
            "",
            "```sql",
            view.select.strip().replace("{schema}", "protiv"),
            "```",
            "",
            "</details>",
            "",
        ]
    lines.append(EXAMPLES)
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE
    target.write_text(dictionary_page(), encoding="utf-8")
    print(f"wrote {target}")
