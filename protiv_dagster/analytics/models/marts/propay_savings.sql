-- The view protiv.propay_savings as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
WITH exact AS (
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
    FROM {{ ref('stg_propay_opportunities') }}
)
SELECT
    company_id,
    propay_id,
    job_id,
    milestone_id,
    name,
    status,
    pay_state,
    no_bonus_reason,
    settings_version,
    budget_type,
    excluded,
    budget_hours,
    {{ display('budget_hours', 'hours') }},
    actual_hours,
    {{ display('actual_hours', 'hours') }},
    saved_hours,
    {{ display('saved_hours', 'hours') }},
    net_saved_hours,
    {{ display('net_saved_hours', 'hours') }},
    efficiency,
    {{ display('efficiency', 'ratio') }},
    efficiency_percent,
    {{ display('efficiency_percent', 'percent') }},
    budget_amount,
    labor_cost,
    saved_amount,
    overage_amount,
    bonus_pool,
    paid_to_workers,
    first_work_date,
    last_work_date
FROM exact
