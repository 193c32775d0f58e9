-- The view protiv.company_propay_summary as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
WITH exact AS (
    SELECT
        company_id,
        CAST(COUNT(*) AS BIGINT) AS propays,
        CAST(SUM(CASE WHEN status = 'started' THEN 1 ELSE 0 END) AS BIGINT) AS started_propays,
        CAST(SUM(CASE WHEN status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 THEN 1 ELSE 0 END) AS BIGINT) AS completed_propays,
        CAST(SUM(CASE WHEN exclusion_reason IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS excluded_propays,
        CAST(SUM(CASE WHEN disqualified THEN 1 ELSE 0 END) AS BIGINT) AS disqualified_propays,
        CAST(COALESCE(SUM(actual_hours), 0) AS DOUBLE PRECISION) AS actual_hours,
        CAST(COALESCE(SUM(CASE WHEN status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 THEN GREATEST(COALESCE(saved_hours, 0), 0) END), 0) AS DOUBLE PRECISION) AS saved_hours,
        CAST(COALESCE(SUM(CASE WHEN status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 THEN COALESCE(saved_hours, 0) END), 0) AS DOUBLE PRECISION) AS net_saved_hours,
        CAST(SUM(CASE WHEN status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 AND budget_hours IS NOT NULL AND actual_hours > 0 THEN budget_hours END)
             / NULLIF(SUM(CASE WHEN status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 AND budget_hours IS NOT NULL AND actual_hours > 0 THEN actual_hours END), 0)
             AS DOUBLE PRECISION) AS efficiency,
        CAST(SUM(CASE WHEN pay_state = 'final' THEN 1 ELSE 0 END) AS BIGINT) AS final_propays,
        CAST(SUM(CASE WHEN pay_state = 'provisional' THEN 1 ELSE 0 END) AS BIGINT) AS provisional_propays,
        CAST(SUM(CASE WHEN pay_state = 'none' THEN 1 ELSE 0 END) AS BIGINT) AS unpaid_propays,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'final' THEN bonus_pool END), 0) AS NUMERIC(14,2)) AS final_bonus_pool,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'final' THEN paid_to_workers END), 0) AS NUMERIC(14,2)) AS final_paid_to_workers,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'final' THEN kept_by_company END), 0) AS NUMERIC(14,2)) AS final_kept_by_company,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'final' THEN overtime_adjustment END), 0) AS NUMERIC(14,2)) AS final_overtime_adjustment,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'provisional' THEN bonus_pool END), 0) AS NUMERIC(14,2)) AS provisional_bonus_pool,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'provisional' THEN paid_to_workers END), 0) AS NUMERIC(14,2)) AS provisional_paid_to_workers,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'provisional' THEN kept_by_company END), 0) AS NUMERIC(14,2)) AS provisional_kept_by_company,
        CAST(COALESCE(SUM(CASE WHEN pay_state = 'provisional' THEN overtime_adjustment END), 0) AS NUMERIC(14,2)) AS provisional_overtime_adjustment,
        CAST(COALESCE(SUM(CASE WHEN status = 'completed' AND exclusion_reason IS NULL AND actual_seconds > 0 THEN overage_amount END), 0) AS NUMERIC(14,2)) AS overage_amount
    FROM {{ ref('stg_propay_opportunities') }}
    GROUP BY company_id
)
SELECT
    company_id,
    propays,
    started_propays,
    completed_propays,
    excluded_propays,
    disqualified_propays,
    actual_hours,
    {{ display('actual_hours', 'hours') }},
    saved_hours,
    {{ display('saved_hours', 'hours') }},
    net_saved_hours,
    {{ display('net_saved_hours', 'hours') }},
    efficiency,
    {{ display('efficiency', 'ratio') }},
    final_propays,
    provisional_propays,
    unpaid_propays,
    final_bonus_pool,
    final_paid_to_workers,
    final_kept_by_company,
    final_overtime_adjustment,
    provisional_bonus_pool,
    provisional_paid_to_workers,
    provisional_kept_by_company,
    provisional_overtime_adjustment,
    overage_amount
FROM exact
