-- The view protiv.propay_leaderboard as a mart: its SQL from protiv_dagster/views.py (each table read through
-- its staging model), then its columns with the presentation columns of DISPLAY (schema_files.py).
-- Generated: edit those files, then run `.venv/bin/python -m protiv_dagster.data_dictionary`.
WITH exact AS (
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
        FROM {{ ref('stg_propay_worker_bonuses') }} b
        JOIN {{ ref('stg_propay_opportunities') }} p ON p.company_id = b.company_id AND p.propay_id = b.propay_id
        CROSS JOIN (
            SELECT CAST('worker' AS TEXT) AS board
            UNION ALL SELECT CAST('crew_lead' AS TEXT)
            UNION ALL SELECT CAST('manager' AS TEXT)
        ) boards
        WHERE p.exclusion_reason IS NULL AND (boards.board = 'worker' OR boards.board = b.role)
        GROUP BY b.company_id, boards.board, b.worker_id
    ) s
    LEFT JOIN {{ ref('stg_workers') }} w ON w.company_id = s.company_id AND w.worker_id = s.worker_id
)
SELECT
    company_id,
    board,
    worker_id,
    first_name,
    last_name,
    propays,
    hours,
    {{ display('hours', 'hours') }},
    net_saved_hours,
    {{ display('net_saved_hours', 'hours') }},
    bonus_pool,
    bonus,
    provisional_bonus,
    rank
FROM exact
