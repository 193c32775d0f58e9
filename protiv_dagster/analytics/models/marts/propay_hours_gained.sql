-- The view protiv.propay_hours_gained as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
WITH exact AS (
    SELECT
        company_id,
        CAST('week' AS TEXT) AS period,
        CAST(date_trunc('week', CAST(last_work_date AS TIMESTAMP)) AS DATE) AS period_start,
        CAST(COUNT(*) AS BIGINT) AS completed_propays,
        CAST(SUM(budget_hours) AS DOUBLE PRECISION) AS budget_hours,
        CAST(SUM(actual_hours) AS DOUBLE PRECISION) AS actual_hours,
        CAST(SUM(saved_hours) AS DOUBLE PRECISION) AS hours_gained,
        CAST(SUM(GREATEST(saved_hours, 0)) AS DOUBLE PRECISION) AS saved_hours
    FROM {{ ref('stg_propay_opportunities') }}
    WHERE status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 AND last_work_date IS NOT NULL AND saved_hours IS NOT NULL
    GROUP BY company_id, CAST(date_trunc('week', CAST(last_work_date AS TIMESTAMP)) AS DATE)
    UNION ALL
    SELECT
        company_id,
        CAST('month' AS TEXT) AS period,
        CAST(date_trunc('month', CAST(last_work_date AS TIMESTAMP)) AS DATE) AS period_start,
        CAST(COUNT(*) AS BIGINT) AS completed_propays,
        CAST(SUM(budget_hours) AS DOUBLE PRECISION) AS budget_hours,
        CAST(SUM(actual_hours) AS DOUBLE PRECISION) AS actual_hours,
        CAST(SUM(saved_hours) AS DOUBLE PRECISION) AS hours_gained,
        CAST(SUM(GREATEST(saved_hours, 0)) AS DOUBLE PRECISION) AS saved_hours
    FROM {{ ref('stg_propay_opportunities') }}
    WHERE status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 AND last_work_date IS NOT NULL AND saved_hours IS NOT NULL
    GROUP BY company_id, CAST(date_trunc('month', CAST(last_work_date AS TIMESTAMP)) AS DATE)
)
SELECT
    company_id,
    period,
    period_start,
    completed_propays,
    budget_hours,
    {{ display('budget_hours', 'hours') }},
    actual_hours,
    {{ display('actual_hours', 'hours') }},
    hours_gained,
    {{ display('hours_gained', 'hours') }},
    saved_hours,
    {{ display('saved_hours', 'hours') }}
FROM exact
