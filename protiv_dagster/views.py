"""The analysts' views: the published ProPay metrics, as SQL over the ProPay tables.

Every view is company-scoped (a ``company_id`` column, never a cross-company total), so per-company
row security applies to them: on PostgreSQL they are created ``security_invoker = true`` and read the
tables as the analyst, whose row-level security policies filter them (``Warehouse.grant_company_analyst``). One SQL text serves DuckDB and PostgreSQL: only functions
both have (``date_trunc``, ``GREATEST``, ``NULLIF``, ``RANK``), and every computed column is cast to
its declared type, so both backends return the same types and ``Warehouse.ensure_views`` can check
each view against its declaration.

Metric definitions (help centre, section 7 of the ProPay rules), and the decisions taken here:

- Saved hours = budget - actual hours of under-budget ProPays (0 for an over-budget one); net saved
  hours counts over-budget ProPays too (negative). Company hour figures count completed ProPays that
  no rule excludes and that have counted time: an unfinished ProPay's "saved" hours are only budget
  not yet used, and a ProPay without counted time saved nothing (rules §9).
- Money is final or provisional, never summed together (rules §9): a completed ProPay that pays
  (``pay_state = 'final'``) will not change; a started one (``'provisional'``) may. Every money
  total comes in a ``final_`` and a ``provisional_`` column; canceled, pending, empty, excluded and
  disqualified ProPays pay $0 and ``no_bonus_reason`` says why.
- Efficiency = budget / actual (1.0 = on budget, 1.1 = 10 % under); the company's is total budget
  hours / total actual hours of its completed ProPays.
- Hours gained = the net saved hours of completed ProPays, by ISO week (Monday) and calendar month of
  their last work date.
- Revenue per hour: the warehouse has no revenue column yet, so the revenue of a completed ProPay is
  its labor budget in $ (``budget_amount``). That understates real revenue (a contract price includes
  materials and margin); the column is named ``budget_revenue`` so nobody mistakes it for invoiced $.
- Bonus wage = base wage + (bonuses + their overtime adjustment) / hours on ProPays; the wage increase
  in $ per hour and in % of the base wage. Hours are the worker's counted hours on ProPays.
- Leaderboards: every worker ranked by bonus; crew leads and managers (their role in the company's
  settings) ranked by the net saved hours of the ProPays they worked on. Excluded ProPays are left out.
"""

from __future__ import annotations

from protiv_dagster.warehouse.declarations import Column, View

# Hour figures count ProPays whose savings are final: completed, no rule excludes them, time counted.
_FINAL = "status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0"


def _by_state(expression: str, state: str, alias: str) -> str:
    """The sum of ``expression`` over ProPays of one pay_state, 0 when there are none."""
    return f"CAST(COALESCE(SUM(CASE WHEN pay_state = '{state}' THEN {expression} END), 0) AS NUMERIC(14,2)) AS {alias}"


def _c(name: str, sql_type: str, description: str) -> Column:
    return Column(name, sql_type, True, description)


COMPANY = _c("company_id", "TEXT", "Protiv company the row belongs to.")

PROPAY_SAVINGS = View(
    name="propay_savings",
    description="Saved hours, net saved hours and efficiency of every ProPay, with its budget, actuals and bonus pool.",
    select="""
SELECT
    company_id, propay_id, job_id, milestone_id, name, status, pay_state, no_bonus_reason, settings_version,
    budget_type, exclusion_reason IS NOT NULL AS excluded,
    budget_hours, actual_hours,
    CAST(GREATEST(COALESCE(saved_hours, 0), 0) AS DOUBLE PRECISION) AS saved_hours,
    CAST(COALESCE(saved_hours, 0) AS DOUBLE PRECISION) AS net_saved_hours,
    efficiency,
    CAST(efficiency * 100 AS DOUBLE PRECISION) AS efficiency_percent,
    budget_amount, labor_cost, saved_amount, overage_amount, bonus_pool, paid_to_workers,
    first_work_date, last_work_date
FROM {schema}.propay_opportunities
""",
    columns=(
        COMPANY,
        _c("propay_id", "TEXT", "The ProPay (propay_opportunities.propay_id)."),
        _c("job_id", "TEXT", "Top-level job of the ProPay."),
        _c("milestone_id", "TEXT", "Milestone of a ProPay per milestone; null for a whole job."),
        _c("name", "TEXT", "Job name, and the milestone name for a ProPay per milestone."),
        _c("status", "TEXT", "pending, started, completed or canceled."),
        _c("pay_state", "TEXT", "final (completed and pays), provisional (started and pays: may change) or none."),
        _c(
            "no_bonus_reason",
            "TEXT",
            "Why the ProPay pays $0 (excluded, canceled, no hours, over budget, ...); null when it pays.",
        ),
        _c("settings_version", "BIGINT", "The company's settings version the ProPay was computed with."),
        _c(
            "budget_type",
            "TEXT",
            "How the budget is stated (hours, amount, contract_price, rate, task_hours, task_amount).",
        ),
        _c(
            "excluded",
            "BOOLEAN",
            "An exclusion rule matched: the ProPay pays no bonus (propay_opportunities.exclusion_reason says why).",
        ),
        _c("budget_hours", "DOUBLE PRECISION", "Budget in worker-hours (for a $ budget: budget $ / blended wage)."),
        _c("actual_hours", "DOUBLE PRECISION", "Worker-hours counted on the ProPay."),
        _c(
            "saved_hours",
            "DOUBLE PRECISION",
            "Hours saved: budget - actual when under budget, else 0 (and 0 when unknown or without counted time).",
        ),
        _c(
            "net_saved_hours",
            "DOUBLE PRECISION",
            "Budget - actual hours, negative when over budget (0 when unknown or without counted time).",
        ),
        _c(
            "efficiency",
            "DOUBLE PRECISION",
            "Budget / actual in the budget's unit: 1.0 on budget, 1.1 = 10 % under; null without actuals.",
        ),
        _c("efficiency_percent", "DOUBLE PRECISION", "Efficiency in %: 100 = on budget, 110 = 10 % under budget."),
        _c("budget_amount", "NUMERIC(14,2)", "Labor budget in $ (for an hours budget: budget hours x blended wage)."),
        _c("labor_cost", "NUMERIC(14,2)", "Actual labor cost in $; null when a worker has no wage."),
        _c(
            "saved_amount",
            "NUMERIC(14,2)",
            "Saved labor in $; 0 when over budget or without counted time; null when a wage is missing.",
        ),
        _c("overage_amount", "NUMERIC(14,2)", "Labor $ over budget; 0 when under; null when a wage is missing."),
        _c("bonus_pool", "NUMERIC(14,2)", "Bonus pool in $ after the penalty."),
        _c("paid_to_workers", "NUMERIC(14,2)", "Bonuses paid to workers in $."),
        _c("first_work_date", "DATE", "First day with counted time."),
        _c("last_work_date", "DATE", "Last day with counted time."),
    ),
)

COMPANY_PROPAY_SUMMARY = View(
    name="company_propay_summary",
    description=(
        "One row per company: ProPay counts, worker-hours, saved and net saved hours and efficiency of its "
        "completed ProPays, and the bonus money of its ProPays, final (completed) and provisional (started) apart."
    ),
    select=f"""
SELECT
    company_id,
    CAST(COUNT(*) AS BIGINT) AS propays,
    CAST(SUM(CASE WHEN status = 'started' THEN 1 ELSE 0 END) AS BIGINT) AS started_propays,
    CAST(SUM(CASE WHEN {_FINAL} THEN 1 ELSE 0 END) AS BIGINT) AS completed_propays,
    CAST(SUM(CASE WHEN exclusion_reason IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS excluded_propays,
    CAST(SUM(CASE WHEN disqualified THEN 1 ELSE 0 END) AS BIGINT) AS disqualified_propays,
    CAST(COALESCE(SUM(actual_hours), 0) AS DOUBLE PRECISION) AS actual_hours,
    CAST(COALESCE(SUM(CASE WHEN {_FINAL} THEN GREATEST(COALESCE(saved_hours, 0), 0) END), 0) AS DOUBLE PRECISION) AS saved_hours,
    CAST(COALESCE(SUM(CASE WHEN {_FINAL} THEN COALESCE(saved_hours, 0) END), 0) AS DOUBLE PRECISION) AS net_saved_hours,
    CAST(SUM(CASE WHEN {_FINAL} AND budget_hours IS NOT NULL AND actual_hours > 0 THEN budget_hours END)
         / NULLIF(SUM(CASE WHEN {_FINAL} AND budget_hours IS NOT NULL AND actual_hours > 0 THEN actual_hours END), 0)
         AS DOUBLE PRECISION) AS efficiency,
    CAST(SUM(CASE WHEN pay_state = 'final' THEN 1 ELSE 0 END) AS BIGINT) AS final_propays,
    CAST(SUM(CASE WHEN pay_state = 'provisional' THEN 1 ELSE 0 END) AS BIGINT) AS provisional_propays,
    CAST(SUM(CASE WHEN pay_state = 'none' THEN 1 ELSE 0 END) AS BIGINT) AS unpaid_propays,
    {_by_state("bonus_pool", "final", "final_bonus_pool")},
    {_by_state("paid_to_workers", "final", "final_paid_to_workers")},
    {_by_state("kept_by_company", "final", "final_kept_by_company")},
    {_by_state("overtime_adjustment", "final", "final_overtime_adjustment")},
    {_by_state("bonus_pool", "provisional", "provisional_bonus_pool")},
    {_by_state("paid_to_workers", "provisional", "provisional_paid_to_workers")},
    {_by_state("kept_by_company", "provisional", "provisional_kept_by_company")},
    {_by_state("overtime_adjustment", "provisional", "provisional_overtime_adjustment")},
    CAST(COALESCE(SUM(CASE WHEN {_FINAL} THEN overage_amount END), 0) AS NUMERIC(14,2)) AS overage_amount
FROM {{schema}}.propay_opportunities
GROUP BY company_id
""",
    columns=(
        COMPANY,
        _c("propays", "BIGINT", "ProPays of the company, every status, excluded ones included."),
        _c("started_propays", "BIGINT", "ProPays with work under way (status started): their money is provisional."),
        _c("completed_propays", "BIGINT", "Completed ProPays that no rule excludes (the ones the hour figures count)."),
        _c("excluded_propays", "BIGINT", "ProPays an exclusion rule keeps from paying a bonus."),
        _c("disqualified_propays", "BIGINT", "ProPays the company disqualified."),
        _c(
            "actual_hours",
            "DOUBLE PRECISION",
            "Worker-hours counted on all its ProPays, every status (the hour figures below count completed ones only).",
        ),
        _c(
            "saved_hours",
            "DOUBLE PRECISION",
            "Sum of saved hours (under-budget ProPays only) of the completed ProPays.",
        ),
        _c(
            "net_saved_hours",
            "DOUBLE PRECISION",
            "Sum of budget - actual hours of the completed ProPays, over-budget ones subtracting.",
        ),
        _c(
            "efficiency",
            "DOUBLE PRECISION",
            "Total budget hours / total actual hours of the completed ProPays (1.0 = on budget).",
        ),
        _c("final_propays", "BIGINT", "Completed ProPays that pay (pay_state final)."),
        _c("provisional_propays", "BIGINT", "Started ProPays that pay a provisional bonus (pay_state provisional)."),
        _c(
            "unpaid_propays",
            "BIGINT",
            "ProPays that pay nothing (pay_state none; propay_opportunities.no_bonus_reason says why).",
        ),
        _c("final_bonus_pool", "NUMERIC(14,2)", "Bonus pools in $ of the completed ProPays (will not change)."),
        _c("final_paid_to_workers", "NUMERIC(14,2)", "Worker bonuses in $ of the completed ProPays (will not change)."),
        _c(
            "final_kept_by_company",
            "NUMERIC(14,2)",
            "Pool $ kept by the company on the completed ProPays (will not change).",
        ),
        _c(
            "final_overtime_adjustment",
            "NUMERIC(14,2)",
            "Overtime owed in $ on the bonuses of the completed ProPays (will not change).",
        ),
        _c("provisional_bonus_pool", "NUMERIC(14,2)", "Bonus pools in $ of the started ProPays (may still change)."),
        _c(
            "provisional_paid_to_workers",
            "NUMERIC(14,2)",
            "Worker bonuses in $ of the started ProPays (may still change).",
        ),
        _c(
            "provisional_kept_by_company",
            "NUMERIC(14,2)",
            "Pool $ kept by the company on the started ProPays (may still change).",
        ),
        _c(
            "provisional_overtime_adjustment",
            "NUMERIC(14,2)",
            "Overtime owed in $ on the bonuses of the started ProPays (may still change).",
        ),
        _c("overage_amount", "NUMERIC(14,2)", "Labor $ over budget of the completed ProPays the hour figures count."),
    ),
)


def _hours_gained(period: str) -> str:
    start = f"CAST(date_trunc('{period}', CAST(last_work_date AS TIMESTAMP)) AS DATE)"
    return f"""
SELECT
    company_id,
    CAST('{period}' AS TEXT) AS period,
    {start} AS period_start,
    CAST(COUNT(*) AS BIGINT) AS completed_propays,
    CAST(SUM(budget_hours) AS DOUBLE PRECISION) AS budget_hours,
    CAST(SUM(actual_hours) AS DOUBLE PRECISION) AS actual_hours,
    CAST(SUM(saved_hours) AS DOUBLE PRECISION) AS hours_gained,
    CAST(SUM(GREATEST(saved_hours, 0)) AS DOUBLE PRECISION) AS saved_hours
FROM {{schema}}.propay_opportunities
WHERE {_FINAL} AND last_work_date IS NOT NULL AND saved_hours IS NOT NULL
GROUP BY company_id, {start}
"""


HOURS_GAINED = View(
    name="propay_hours_gained",
    description="Hours gained (net saved hours) of completed ProPays per ISO week and per month of their last work date.",
    select=_hours_gained("week") + "UNION ALL" + _hours_gained("month"),
    columns=(
        COMPANY,
        _c("period", "TEXT", "week (ISO week, starting Monday) or month."),
        _c("period_start", "DATE", "First day of the week or month the ProPays' last work date falls in."),
        _c("completed_propays", "BIGINT", "Completed, not excluded ProPays whose last work date is in the period."),
        _c("budget_hours", "DOUBLE PRECISION", "Their budget hours."),
        _c("actual_hours", "DOUBLE PRECISION", "Their actual worker-hours."),
        _c("hours_gained", "DOUBLE PRECISION", "Sum of budget - actual hours (over-budget ProPays subtract)."),
        _c("saved_hours", "DOUBLE PRECISION", "Sum of saved hours of the under-budget ones only."),
    ),
)

REVENUE_PER_HOUR = View(
    name="company_revenue_per_hour",
    description=(
        "Revenue per hour worked per company and month of the last work date, over completed ProPays. "
        "Revenue is the ProPays' labor budget $ (no revenue column exists yet)."
    ),
    select=f"""
SELECT
    company_id,
    CAST(date_trunc('month', CAST(last_work_date AS TIMESTAMP)) AS DATE) AS month_start,
    CAST(COUNT(*) AS BIGINT) AS completed_propays,
    CAST(SUM(budget_amount) AS NUMERIC(14,2)) AS budget_revenue,
    CAST(SUM(actual_hours) AS DOUBLE PRECISION) AS hours_worked,
    CAST(SUM(budget_amount) / NULLIF(SUM(actual_hours), 0) AS DOUBLE PRECISION) AS revenue_per_hour
FROM {{schema}}.propay_opportunities
WHERE {_FINAL} AND last_work_date IS NOT NULL AND budget_amount IS NOT NULL
GROUP BY company_id, CAST(date_trunc('month', CAST(last_work_date AS TIMESTAMP)) AS DATE)
""",
    columns=(
        COMPANY,
        _c("month_start", "DATE", "First day of the month the ProPays' last work date falls in."),
        _c("completed_propays", "BIGINT", "Completed, not excluded ProPays with a $ budget, finished that month."),
        _c(
            "budget_revenue", "NUMERIC(14,2)", "Revenue stand-in in $: the sum of their labor budget $ (budget_amount)."
        ),
        _c("hours_worked", "DOUBLE PRECISION", "Their actual worker-hours."),
        _c("revenue_per_hour", "DOUBLE PRECISION", "budget_revenue / hours_worked, $ per worker-hour."),
    ),
)

# The bonus wage is taken from final money only: a provisional bonus may still change.
_FINAL_MONEY = "CASE WHEN p.pay_state = 'final' THEN b.bonus + b.overtime_adjustment END"
_FINAL_HOURS = "CASE WHEN p.pay_state = 'final' THEN b.hours END"
WORKER_BONUS_WAGES = View(
    name="worker_bonus_wages",
    description=(
        "Each worker's bonus wage (effective hourly wage including final ProPay bonuses) and wage increase in $ "
        "and %, with provisional bonuses beside them."
    ),
    select=f"""
SELECT
    b.company_id, b.worker_id, w.first_name, w.last_name,
    CAST(COUNT(*) AS BIGINT) AS propays,
    CAST(SUM(b.hours) AS DOUBLE PRECISION) AS propay_hours,
    CAST(SUM(b.labor_cost) AS NUMERIC(14,2)) AS labor_cost,
    CAST(COALESCE(SUM({_FINAL_HOURS}), 0) AS DOUBLE PRECISION) AS final_hours,
    CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'final' THEN b.bonus END), 0) AS NUMERIC(14,2)) AS final_bonus,
    CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'final' THEN b.overtime_adjustment END), 0) AS NUMERIC(14,2))
        AS final_overtime_adjustment,
    CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'provisional' THEN b.bonus END), 0) AS NUMERIC(14,2)) AS provisional_bonus,
    w.hourly_wage AS base_wage,
    CAST(SUM({_FINAL_MONEY}) / NULLIF(SUM({_FINAL_HOURS}), 0) AS DOUBLE PRECISION) AS wage_increase,
    CAST(w.hourly_wage + SUM({_FINAL_MONEY}) / NULLIF(SUM({_FINAL_HOURS}), 0) AS DOUBLE PRECISION) AS bonus_wage,
    CAST(100 * (SUM({_FINAL_MONEY}) / NULLIF(SUM({_FINAL_HOURS}), 0)) / NULLIF(w.hourly_wage, 0) AS DOUBLE PRECISION)
        AS wage_increase_percent
FROM {{schema}}.propay_worker_bonuses b
JOIN {{schema}}.propay_opportunities p ON p.company_id = b.company_id AND p.propay_id = b.propay_id
LEFT JOIN {{schema}}.workers w ON w.company_id = b.company_id AND w.worker_id = b.worker_id
GROUP BY b.company_id, b.worker_id, w.first_name, w.last_name, w.hourly_wage
""",
    columns=(
        COMPANY,
        _c("worker_id", "TEXT", "The worker (workers.worker_id)."),
        _c("first_name", "TEXT", "First name."),
        _c("last_name", "TEXT", "Last name."),
        _c("propays", "BIGINT", "ProPays the worker has counted time on or holds a role bucket of."),
        _c("propay_hours", "DOUBLE PRECISION", "The worker's counted hours on ProPays."),
        _c("labor_cost", "NUMERIC(14,2)", "The worker's labor cost on ProPays in $ (where the wage is known)."),
        _c("final_hours", "DOUBLE PRECISION", "The worker's counted hours on ProPays whose money is final."),
        _c("final_bonus", "NUMERIC(14,2)", "The worker's bonuses in $ on completed ProPays (final)."),
        _c("final_overtime_adjustment", "NUMERIC(14,2)", "Overtime owed on those final bonuses in $."),
        _c(
            "provisional_bonus",
            "NUMERIC(14,2)",
            "The worker's bonuses in $ on started ProPays (provisional: may still change).",
        ),
        _c("base_wage", "NUMERIC(10,4)", "The worker's hourly wage in $ (workers.hourly_wage); null when unknown."),
        _c(
            "wage_increase",
            "DOUBLE PRECISION",
            "Wage increase in $ per hour: (final_bonus + final_overtime_adjustment) / final_hours.",
        ),
        _c("bonus_wage", "DOUBLE PRECISION", "Bonus wage in $ per hour: base_wage + wage_increase."),
        _c("wage_increase_percent", "DOUBLE PRECISION", "Wage increase in % of the base wage."),
    ),
)

LEADERBOARD = View(
    name="propay_leaderboard",
    description=(
        "Leaderboards per company: every worker ranked by final ProPay bonus (board 'worker'), crew leads and "
        "managers ranked by the net saved hours of the ProPays they worked on (boards 'crew_lead', 'manager')."
    ),
    select="""
SELECT
    s.company_id, s.board, s.worker_id, w.first_name, w.last_name,
    s.propays, s.hours, s.net_saved_hours, s.bonus_pool, s.bonus, s.provisional_bonus,
    RANK() OVER (
        PARTITION BY s.company_id, s.board
        ORDER BY CASE WHEN s.board = 'worker' THEN CAST(s.bonus AS DOUBLE PRECISION) ELSE s.net_saved_hours END DESC
    ) AS rank
FROM (
    SELECT
        b.company_id, boards.board, b.worker_id,
        CAST(COUNT(*) AS BIGINT) AS propays,
        CAST(SUM(b.hours) AS DOUBLE PRECISION) AS hours,
        CAST(SUM(COALESCE(p.saved_hours, 0)) AS DOUBLE PRECISION) AS net_saved_hours,
        CAST(SUM(p.bonus_pool) AS NUMERIC(14,2)) AS bonus_pool,
        CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'final' THEN b.bonus END), 0) AS NUMERIC(14,2)) AS bonus,
        CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'provisional' THEN b.bonus END), 0) AS NUMERIC(14,2)) AS provisional_bonus
    FROM {schema}.propay_worker_bonuses b
    JOIN {schema}.propay_opportunities p ON p.company_id = b.company_id AND p.propay_id = b.propay_id
    CROSS JOIN (
        SELECT CAST('worker' AS TEXT) AS board
        UNION ALL SELECT CAST('crew_lead' AS TEXT)
        UNION ALL SELECT CAST('manager' AS TEXT)
    ) boards
    WHERE p.exclusion_reason IS NULL AND (boards.board = 'worker' OR boards.board = b.role)
    GROUP BY b.company_id, boards.board, b.worker_id
) s
LEFT JOIN {schema}.workers w ON w.company_id = s.company_id AND w.worker_id = s.worker_id
""",
    columns=(
        COMPANY,
        _c("board", "TEXT", "worker (everyone), crew_lead or manager (the role in the company's settings)."),
        _c("worker_id", "TEXT", "The worker, crew lead or manager (workers.worker_id)."),
        _c("first_name", "TEXT", "First name."),
        _c("last_name", "TEXT", "Last name."),
        _c("propays", "BIGINT", "Not excluded ProPays the person has counted time on."),
        _c("hours", "DOUBLE PRECISION", "The person's own counted hours on them."),
        _c(
            "net_saved_hours",
            "DOUBLE PRECISION",
            "Budget - actual hours of those ProPays, summed (the whole crew's result).",
        ),
        _c("bonus_pool", "NUMERIC(14,2)", "Bonus pools of those ProPays in $, summed."),
        _c("bonus", "NUMERIC(14,2)", "The person's own final bonus in $ (completed ProPays)."),
        _c(
            "provisional_bonus",
            "NUMERIC(14,2)",
            "The person's own provisional bonus in $ (started ProPays: may still change).",
        ),
        _c(
            "rank",
            "BIGINT",
            "1 = best on the board: by final bonus for workers, by net saved hours for crew leads and managers.",
        ),
    ),
)

ALL_VIEWS = (PROPAY_SAVINGS, COMPANY_PROPAY_SUMMARY, HOURS_GAINED, REVENUE_PER_HOUR, WORKER_BONUS_WAGES, LEADERBOARD)
