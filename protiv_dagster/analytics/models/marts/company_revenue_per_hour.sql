-- The view protiv.company_revenue_per_hour as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
WITH exact AS (
    SELECT
        company_id,
        CAST(date_trunc('month', CAST(last_work_date AS TIMESTAMP)) AS DATE) AS month_start,
        CAST(COUNT(*) AS BIGINT) AS completed_propays,
        CAST(SUM(budget_amount) AS NUMERIC(14,2)) AS budget_revenue,
        CAST(SUM(actual_hours) AS DOUBLE PRECISION) AS hours_worked,
        CAST(SUM(budget_amount) / NULLIF(SUM(actual_hours), 0) AS DOUBLE PRECISION) AS revenue_per_hour
    FROM {{ ref('stg_propay_opportunities') }}
    WHERE status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 AND last_work_date IS NOT NULL AND budget_amount IS NOT NULL
    GROUP BY company_id, CAST(date_trunc('month', CAST(last_work_date AS TIMESTAMP)) AS DATE)
)
SELECT
    company_id,
    month_start,
    completed_propays,
    budget_revenue,
    hours_worked,
    {{ display('hours_worked', 'hours') }},
    revenue_per_hour,
    {{ display('revenue_per_hour', 'dollars') }}
FROM exact
