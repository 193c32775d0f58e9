"""The data dictionary page (docs/data-dictionary.md), built from the table and view declarations.

Tables come from the pandera models (``tables.py``) and views from ``views.py``, the same text that
becomes the warehouse's column comments and the Dagster UI's column schema, so the three never
disagree. ``python -m protiv_dagster.data_dictionary`` rewrites the page; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

from protiv_dagster import views
from protiv_dagster.analytics import schema_files
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.warehouse.declarations import Column

PAGE = Path("docs") / "data-dictionary.md"
AUDIT_SQL = files("protiv_dagster").joinpath("sql", "audit_paychecks.sql").read_text(encoding="utf-8")

INTRODUCTION = """\
# Data dictionary

Every table and view of the warehouse schema `protiv` (DuckDB by default, PostgreSQL in production),
column by column. Money is in US dollars (NUMERIC, exact to the cent), hours are worker-hours (the
sum over workers of their hours, never elapsed crew time), ratios are plain numbers (1.1 = 110 %).
Every row belongs to one company (`company_id`); filter on it in every query.

This page is generated from `protiv_dagster/schemas.py`, `protiv_dagster/tables.py` and
`protiv_dagster/views.py`; edit those, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
The same descriptions are the column comments in the warehouse, the column schema in Dagster and,
written by the same command, the dbt project's YAML (`dbt docs`); the marts' SQL is the views'.
"""

HOW_A_PROPAY_PAYS = """\
## How a ProPay pays, and how to check it

The rules are in Protiv's ProPay rules (sections 1-9); the engine is `protiv_dagster/propay/`. Every
amount below is computed exactly (integer seconds, integer cents, exact fractions) and **rounded
once, half up, to the cent**; nothing is summed in floating point. The exact values behind the
rounded ones are stored beside them (`actual_seconds`, `budget_numerator / budget_denominator`,
`labor_cost_numerator / labor_cost_denominator`, per worker `seconds`), so each step can be redone.

1. **Which ProPay.** One per budgeted non-recurring job (its milestones' budgets add up when the job
   has none of its own); a recurring job gets one per budgeted milestone. Every job or milestone
   without one is in `jobs_without_propay` with the reason.
2. **Settings.** A ProPay is priced with the settings version in force on its first work date
   (`settings_version`, the JSON in `propay_settings_versions.settings`); a later change never
   rewrites a ProPay already under way. Exclusions by hand, disqualifications and penalties are
   decisions about one ProPay and come from the newest version.
3. **Time.** The attendance rows on the ProPay's job (or milestone), from the pull date on, drive
   time only when `include_drive_time`, each as `round(hours x 3600)` whole seconds, summed.
4. **Labor cost.** Each row's seconds / 3600 x the wage in force on its work date (the latest
   `worker_wages` row on or before it, else `workers.hourly_wage`), x (1 + `burden_percent` / 100)
   when budgets include burden. A worker without any wage excludes the ProPay (never $0 labor).
5. **Saving.** Hours budgets: (budget hours - actual hours) x labor $ / actual hours. $ budgets:
   budget $ - labor $. Budgets are the source's x `budget_modification_percent` / 100. No hours, a
   canceled, pending, excluded or disqualified ProPay saves nothing that pays.
6. **Pool.** `pool_before_penalty` = max(saving, 0) x `worker_share`, rounded once;
   `bonus_pool` = that minus the penalty, never below $0. `pay_state` says whether the money is
   final (completed), provisional (started: may still change) or none (`no_bonus_reason` says why).
7. **Role buckets.** The pool is split over crew, crew_lead, manager, other and company by the
   `role_buckets` shares with the largest-remainder rule: each bucket gets the whole cents of its
   share, and the cents left over go one by one to the largest fractions, ties to the earlier bucket
   in that order. The company bucket is never paid out.
8. **Who holds a bucket.** The crew-lead and manager buckets go to the people the source assigns to
   the job or milestone (`job_assignments`), else to the workers whose role setting is that role and
   who have time on it; "other" to workers with that role setting and time. A bucket is split
   equally between its holders (the leftover cents to the smaller worker ids); a bucket nobody
   holds goes into the crew bucket.
9. **Crew shares.** Everyone with counted time shares the crew bucket, leads and managers too, by
   `distribution_method`: `hours` (seconds), `wage` (seconds x wage), `crew_lead_weighted` (seconds,
   x `lead_multiplier` for the crew lead), `equal`, or `manual` (each worker's %). Largest remainder
   to the cent; **ties go to the smaller worker id**. A worker's `bonus` = `crew_share` +
   `role_bucket_share`, and a ProPay's bonuses add up to its `paid_to_workers`; `paid_to_workers` +
   `kept_by_company` = `bonus_pool`.
10. **Overtime on the bonus.** Per worker and workweek, `bonus_in_week` / `hours_worked` x 0.5 x
    `overtime_hours` (daily overtime first, then weekly overtime of the remaining hours), rounded once.

### Walk a paycheck back to its attendance

The query below redoes steps 2-9 from the tables alone and prints every stored amount beside the
recomputed one, for every ProPay and worker; `tests/sql/test_audit_paychecks.py` runs it on the
demo company of every vendor and finds them equal to the second and to the cent. Add
`WHERE company_id = 'acme' AND propay_id = '1042'` before its `ORDER BY` to audit one ProPay. It
is written for DuckDB, the embedded warehouse; on PostgreSQL write `NUMERIC(38,0)` for `HUGEINT`,
`div(a, b)` for `a // b`, `string_to_array` for `string_split`, `CAST(settings AS json)` for the
JSON cast, and order worker ids with `COLLATE "C"`.

```sql
{audit}
```

To see the rows themselves, the attendance a worker was paid for on one ProPay (a ProPay per job;
for a ProPay per milestone match `a.milestone_id` instead):

```sql
SELECT a.work_date, a.entry_id, a.hours, ROUND(a.hours * 3600) AS seconds, a.is_drive
FROM protiv.attendance a
JOIN protiv.propay_opportunities p ON p.company_id = a.company_id AND p.job_id = a.job_id
WHERE p.company_id = 'acme' AND p.propay_id = '1042' AND a.worker_id = '7'
ORDER BY a.work_date, a.start_at;
```
""".replace("{audit}", AUDIT_SQL.strip())

MARTS = """\
## Marts (schema `analytics`)

The same six views as dbt models (`protiv_dagster/analytics/`, docs/analysts.md), in the schema
`analytics`: the same rows and columns, and beside each floating-point column a presentation column
`<column>_display` rounded as people read it: hours and dollars to 2 decimals, percentages to 1
decimal, a ratio (efficiency 1.153) as a percent to 1 decimal (115.3). Compute with the exact
column, show the `_display` one. Each mart's SQL is its view's, generated into
`protiv_dagster/analytics/models/marts/` by the same command as this page.
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
SELECT name, status, pay_state, no_bonus_reason, exclusion_reason, disqualification_reason
FROM protiv.propay_opportunities
WHERE company_id = 'acme' AND pay_state = 'none';

SELECT name, reason FROM protiv.jobs_without_propay WHERE company_id = 'acme';
```

Final and provisional bonus money, never added together:

```sql
SELECT final_bonus_pool, final_paid_to_workers, provisional_bonus_pool, provisional_paid_to_workers
FROM protiv.company_propay_summary
WHERE company_id = 'acme';
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
SELECT rank, first_name, last_name, propays, net_saved_hours, bonus, provisional_bonus
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
        rows.append(
            f"| {name} | {column.sql_type} | {'yes' if column.nullable else 'no'} | {_cell(column.description)} |"
        )
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
    lines += [MARTS]
    for view in views.ALL_VIEWS:
        lines += [
            f"### analytics.{view.name}",
            "",
            view.description,
            "",
            *_columns(schema_files.mart_columns(view)),
            "",
        ]
    lines += [HOW_A_PROPAY_PAYS, EXAMPLES]
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE
    target.write_text(dictionary_page(), encoding="utf-8")
    print(f"wrote {target}")
    # The dbt project says the same: its YAML (sources, staging models, marts) and the marts' SQL.
    for path in schema_files.write():
        print(f"wrote {path.relative_to(schema_files.PROJECT_DIR.parents[1])}")
