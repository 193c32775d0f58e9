-- The view protiv.worker_bonus_wages as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
WITH exact AS (
    SELECT
        b.company_id, b.worker_id, w.first_name, w.last_name,
        CAST(COUNT(*) AS BIGINT) AS propays,
        CAST(SUM(b.hours) AS DOUBLE PRECISION) AS propay_hours,
        CAST(SUM(b.labor_cost) AS NUMERIC(14,2)) AS labor_cost,
        CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'final' THEN b.hours END), 0) AS DOUBLE PRECISION) AS final_hours,
        CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'final' THEN b.bonus END), 0) AS NUMERIC(14,2)) AS final_bonus,
        CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'final' THEN b.overtime_adjustment END), 0) AS NUMERIC(14,2))
            AS final_overtime_adjustment,
        CAST(COALESCE(SUM(CASE WHEN p.pay_state = 'provisional' THEN b.bonus END), 0) AS NUMERIC(14,2)) AS provisional_bonus,
        w.hourly_wage AS base_wage,
        CAST(SUM(CASE WHEN p.pay_state = 'final' THEN b.bonus + b.overtime_adjustment END) / NULLIF(SUM(CASE WHEN p.pay_state = 'final' THEN b.hours END), 0) AS DOUBLE PRECISION) AS wage_increase,
        CAST(w.hourly_wage + SUM(CASE WHEN p.pay_state = 'final' THEN b.bonus + b.overtime_adjustment END) / NULLIF(SUM(CASE WHEN p.pay_state = 'final' THEN b.hours END), 0) AS DOUBLE PRECISION) AS bonus_wage,
        CAST(100 * (SUM(CASE WHEN p.pay_state = 'final' THEN b.bonus + b.overtime_adjustment END) / NULLIF(SUM(CASE WHEN p.pay_state = 'final' THEN b.hours END), 0)) / NULLIF(w.hourly_wage, 0) AS DOUBLE PRECISION)
            AS wage_increase_percent
    FROM {{ ref('stg_propay_worker_bonuses') }} b
    JOIN {{ ref('stg_propay_opportunities') }} p ON p.company_id = b.company_id AND p.propay_id = b.propay_id
    LEFT JOIN {{ ref('stg_workers') }} w ON w.company_id = b.company_id AND w.worker_id = b.worker_id
    GROUP BY b.company_id, b.worker_id, w.first_name, w.last_name, w.hourly_wage
)
SELECT
    company_id,
    worker_id,
    first_name,
    last_name,
    propays,
    propay_hours,
    {{ display('propay_hours', 'hours') }},
    labor_cost,
    final_hours,
    {{ display('final_hours', 'hours') }},
    final_bonus,
    final_overtime_adjustment,
    provisional_bonus,
    base_wage,
    wage_increase,
    {{ display('wage_increase', 'dollars') }},
    bonus_wage,
    {{ display('bonus_wage', 'dollars') }},
    wage_increase_percent,
    {{ display('wage_increase_percent', 'percent') }}
FROM exact
