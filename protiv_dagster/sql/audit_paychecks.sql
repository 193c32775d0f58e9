-- Every ProPay bonus walked back to the attendance rows it was paid for, from the warehouse alone.
-- One row per ProPay and worker (a ProPay without workers: one row, worker_id null); each stored_*
-- column stands beside the audit_* column recomputed here, and they must be equal to the second and
-- to the cent. DuckDB dialect (the embedded warehouse); PostgreSQL notes in docs/data-dictionary.md.
-- Add `WHERE company_id = '...' AND propay_id = '...'` at the end to audit one paycheck.
WITH
-- 1. The settings each ProPay was priced with (its settings_version) and the newest version, which
--    holds the admin's decisions about single ProPays (exclusions, disqualifications, penalties).
version AS (
    SELECT company_id, version, CAST(settings AS JSON) AS s, attendance_pull_date,
           version = MAX(version) OVER (PARTITION BY company_id) AS newest
    FROM protiv.propay_settings_versions
),
propay AS (
    SELECT p.*, v.s, v.attendance_pull_date, n.s AS decisions
    FROM protiv.propay_opportunities p
    JOIN version v ON v.company_id = p.company_id AND v.version = p.settings_version
    JOIN version n ON n.company_id = p.company_id AND n.newest
),
-- 2. The attendance rows a ProPay counts: those on its milestone (a ProPay per milestone) or on its
--    job (a ProPay per job), in whole seconds, on or after the pull date, drive time only when the
--    settings include it.
counted AS (
    SELECT p.company_id, p.propay_id, a.worker_id, a.work_date, CAST(ROUND(a.hours * 3600) AS BIGINT) AS seconds
    FROM propay p
    JOIN protiv.attendance a
      ON a.company_id = p.company_id
     AND (a.milestone_id = p.milestone_id OR (p.milestone_id IS NULL AND a.job_id = p.job_id))
    WHERE a.work_date >= p.attendance_pull_date
      AND (NOT a.is_drive OR CAST(p.s ->> 'include_drive_time' AS BOOLEAN))
      AND ROUND(a.hours * 3600) > 0
),
-- 3. The wage in force on each row's work date: the worker's wage history row with the latest
--    effective date on or before it (the higher wage when a day has two), else workers.hourly_wage.
waged AS (
    SELECT c.*, COALESCE(
        (SELECT MAX(h.hourly_wage) FROM protiv.worker_wages h
          WHERE h.company_id = c.company_id AND h.worker_id = c.worker_id AND h.hourly_wage IS NOT NULL
            AND h.effective_date = (SELECT MAX(e.effective_date) FROM protiv.worker_wages e
                                     WHERE e.company_id = c.company_id AND e.worker_id = c.worker_id
                                       AND e.hourly_wage IS NOT NULL AND e.effective_date <= c.work_date)),
        (SELECT MAX(w.hourly_wage) FROM protiv.workers w
          WHERE w.company_id = c.company_id AND w.worker_id = c.worker_id)
    ) AS wage
    FROM counted c
),
-- 4. Per ProPay and worker: seconds, and seconds x wage in 1/10,000 $ (wages have four decimals),
--    exact integers.
worker_time AS (
    SELECT company_id, propay_id, worker_id, SUM(seconds) AS seconds,
           BOOL_OR(wage IS NULL) AS wage_missing,
           SUM(CAST(seconds * wage * 10000 AS HUGEINT)) AS cost_units
    FROM waged
    GROUP BY company_id, propay_id, worker_id
),
-- 5. Per ProPay: seconds and the exact labor cost, labor $ = cost_units x burden / (3600 x 10,000),
--    burden = 1 + burden_percent / 100 when budgets include burden (percent read to six decimals).
burdened AS (
    SELECT p.*,
           CASE WHEN CAST(p.s ->> 'budgets_include_burden' AS BOOLEAN)
                THEN 100000000 + CAST(CAST(p.s ->> 'burden_percent' AS DECIMAL(18, 6)) * 1000000 AS HUGEINT)
                ELSE 100000000 END AS burden_per_1e8
    FROM propay p
),
propay_time AS (
    SELECT p.company_id, p.propay_id,
           COALESCE(SUM(t.seconds), 0) AS seconds,
           COALESCE(BOOL_OR(t.wage_missing), FALSE) AS wage_missing,
           COALESCE(SUM(t.cost_units), 0) * MAX(p.burden_per_1e8) AS labor_numerator,  -- over 3.6e15
           CAST(3600 AS HUGEINT) * 10000 * 100000000 AS labor_denominator
    FROM burdened p LEFT JOIN worker_time t ON t.company_id = p.company_id AND t.propay_id = p.propay_id
    GROUP BY p.company_id, p.propay_id
),
-- 6. The saving, exactly, from the stored exact budget (the source's budget x budget_modification)
--    and labor (checked against step 5 below): hours budgets (budget h - actual h) x labor $ /
--    actual h, $ budgets budget $ - labor $. The pool: the positive saving x worker_share, rounded
--    half up to the cent once, when the ProPay pays; the penalty comes off it, never below $0.
saving AS (
    SELECT p.*, t.seconds AS audit_seconds, t.wage_missing, t.labor_numerator, t.labor_denominator,
           CAST(p.budget_numerator AS HUGEINT) AS bn, CAST(p.budget_denominator AS HUGEINT) AS bd,
           CAST(p.labor_cost_numerator AS HUGEINT) AS ln, CAST(p.labor_cost_denominator AS HUGEINT) AS ld,
           CAST(CAST(p.s ->> 'worker_share' AS DECIMAL(18, 6)) * 1000000 AS HUGEINT) AS share_per_1e6,
           CAST(ROUND(COALESCE(CAST(p.decisions -> 'penalties' ->> p.propay_id AS DECIMAL(18, 6)), 0) * 100) AS HUGEINT)
               AS penalty_cents,
           p.exclusion_reason IS NULL AND (p.decisions -> 'disqualifications' ->> p.propay_id) IS NULL
               AND p.status IN ('started', 'completed') AND t.seconds > 0 AND NOT t.wage_missing AS pays
    FROM propay p JOIN propay_time t ON t.company_id = p.company_id AND t.propay_id = p.propay_id
),
saved AS (
    SELECT s.*,
           CASE WHEN NOT pays THEN 0
                WHEN budget_unit = 'hours' THEN (3600 * bn - audit_seconds * bd) * ln
                ELSE bn * ld - ln * bd END AS saved_numerator,
           CASE WHEN NOT pays THEN 1
                WHEN budget_unit = 'hours' THEN bd * ld * audit_seconds
                ELSE bd * ld END AS saved_denominator
    FROM saving s
),
pool AS (
    SELECT s.*,
           CASE WHEN saved_numerator <= 0 THEN 0
                ELSE (2 * saved_numerator * share_per_1e6 * 100 + saved_denominator * 1000000)
                     // (2 * saved_denominator * 1000000) END AS gross_cents
    FROM saved s
),
netted AS (
    SELECT p.*, gross_cents - LEAST(penalty_cents, gross_cents) AS pool_cents FROM pool p
),
-- 7. The pool over the role buckets by their shares (largest remainder to the cent, ties to the
--    earlier bucket: crew, crew_lead, manager, other, company).
bucket_share AS (
    SELECT n.company_id, n.propay_id, n.pool_cents, r.position, r.role,
           CAST(CAST(COALESCE(n.s -> 'role_buckets' ->> r.role, '0') AS DECIMAL(18, 6)) * 1000000 AS HUGEINT) AS weight
    FROM netted n
    CROSS JOIN (VALUES (1, 'crew'), (2, 'crew_lead'), (3, 'manager'), (4, 'other'), (5, 'company')) AS r (position, role)
),
bucket_floor AS (
    SELECT b.*, SUM(weight) OVER (PARTITION BY company_id, propay_id) AS total_weight,
           pool_cents * weight // SUM(weight) OVER (PARTITION BY company_id, propay_id) AS floor_cents,
           pool_cents * weight % SUM(weight) OVER (PARTITION BY company_id, propay_id) AS remainder
    FROM bucket_share b
),
bucket AS (
    SELECT b.company_id, b.propay_id, b.role,
           floor_cents + CASE WHEN ROW_NUMBER() OVER (PARTITION BY company_id, propay_id ORDER BY remainder DESC, position)
                                   <= pool_cents - SUM(floor_cents) OVER (PARTITION BY company_id, propay_id)
                              THEN 1 ELSE 0 END AS cents
    FROM bucket_floor b
),
-- 8. Who holds the crew-lead, manager and other buckets (the source's assignees, else the workers
--    with that role setting and time on the ProPay: propay_worker_bonuses.role_buckets_held). Each
--    held bucket is split equally (the first cents to the smaller worker ids); one nobody holds goes
--    into the crew bucket.
holder AS (
    SELECT company_id, propay_id, worker_id, UNNEST(string_split(role_buckets_held, ',')) AS role
    FROM protiv.propay_worker_bonuses WHERE role_buckets_held IS NOT NULL
),
held AS (
    SELECT h.company_id, h.propay_id, h.worker_id, h.role, b.cents,
           b.cents // COUNT(*) OVER (PARTITION BY h.company_id, h.propay_id, h.role)
           + CASE WHEN ROW_NUMBER() OVER (PARTITION BY h.company_id, h.propay_id, h.role ORDER BY h.worker_id)
                       <= b.cents % COUNT(*) OVER (PARTITION BY h.company_id, h.propay_id, h.role)
                  THEN 1 ELSE 0 END AS role_cents
    FROM holder h JOIN bucket b ON b.company_id = h.company_id AND b.propay_id = h.propay_id AND b.role = h.role
),
crew_bucket AS (
    SELECT b.company_id, b.propay_id,
           SUM(CASE WHEN b.role = 'crew' THEN b.cents
                    WHEN b.role IN ('crew_lead', 'manager', 'other') AND NOT EXISTS (
                        SELECT 1 FROM holder h WHERE h.company_id = b.company_id AND h.propay_id = b.propay_id AND h.role = b.role)
                    THEN b.cents ELSE 0 END) AS crew_cents
    FROM bucket b GROUP BY b.company_id, b.propay_id
),
-- 9. Everyone with counted time shares the crew bucket by the distribution method: hours (seconds),
--    wage (seconds x wage), crew_lead_weighted (seconds, x lead_multiplier for the crew lead), equal
--    (1) or manual (the worker's %, none for a worker without one); largest remainder, ties to the
--    smaller worker id. When nobody can share it, the company keeps it.
crew_weight AS (
    SELECT t.company_id, t.propay_id, t.worker_id, c.crew_cents,
           CASE p.s ->> 'distribution_method'
               WHEN 'hours' THEN CAST(t.seconds AS HUGEINT) * 1000000
               WHEN 'wage' THEN t.cost_units
               WHEN 'crew_lead_weighted' THEN CAST(t.seconds AS HUGEINT) * CASE
                   WHEN EXISTS (SELECT 1 FROM holder h WHERE h.company_id = t.company_id AND h.propay_id = t.propay_id
                                  AND h.worker_id = t.worker_id AND h.role = 'crew_lead')
                   THEN CAST(CAST(p.s ->> 'lead_multiplier' AS DECIMAL(18, 6)) * 1000000 AS HUGEINT) ELSE 1000000 END
               WHEN 'equal' THEN 1
               ELSE COALESCE(CAST(CAST(p.s -> 'manual_distribution' ->> t.worker_id AS DECIMAL(18, 6)) * 1000000 AS HUGEINT), 0)
           END AS weight
    FROM worker_time t
    JOIN propay p ON p.company_id = t.company_id AND p.propay_id = t.propay_id
    JOIN crew_bucket c ON c.company_id = t.company_id AND c.propay_id = t.propay_id
),
crew_floor AS (
    SELECT w.*, crew_cents * weight // NULLIF(SUM(weight) OVER (PARTITION BY company_id, propay_id), 0) AS floor_cents,
           crew_cents * weight % NULLIF(SUM(weight) OVER (PARTITION BY company_id, propay_id), 0) AS remainder
    FROM crew_weight w
),
crew_share AS (
    SELECT company_id, propay_id, worker_id,
           COALESCE(floor_cents + CASE WHEN weight > 0 AND ROW_NUMBER() OVER (
                    PARTITION BY company_id, propay_id ORDER BY weight > 0 DESC, remainder DESC, worker_id)
                    <= crew_cents - SUM(floor_cents) OVER (PARTITION BY company_id, propay_id) THEN 1 ELSE 0 END, 0) AS cents
    FROM crew_floor
),
-- 10. Each worker's paycheck line: crew share + the role buckets they hold, beside what is stored.
audited AS (
    SELECT b.company_id, b.propay_id, b.worker_id,
           b.seconds AS stored_seconds, COALESCE(t.seconds, 0) AS audit_seconds,
           b.labor_cost AS stored_labor_cost,
           CASE WHEN t.wage_missing THEN NULL ELSE CAST(  -- a bucket holder without time: $0 of labor
               (2 * COALESCE(t.cost_units, 0) * p.burden_per_1e8 * 100 + CAST(3600 AS HUGEINT) * 10000 * 100000000)
               // (2 * CAST(3600 AS HUGEINT) * 10000 * 100000000) AS DECIMAL(18, 0)) * 0.01 END AS audit_labor_cost,
           b.crew_share AS stored_crew_share, CAST(COALESCE(c.cents, 0) AS DECIMAL(18, 0)) * 0.01 AS audit_crew_share,
           b.role_bucket_share AS stored_role_bucket_share,
           CAST(COALESCE((SELECT SUM(h.role_cents) FROM held h WHERE h.company_id = b.company_id
                          AND h.propay_id = b.propay_id AND h.worker_id = b.worker_id), 0) AS DECIMAL(18, 0)) * 0.01
               AS audit_role_bucket_share,
           b.bonus AS stored_bonus
    FROM protiv.propay_worker_bonuses b
    JOIN burdened p ON p.company_id = b.company_id AND p.propay_id = b.propay_id
    LEFT JOIN worker_time t ON t.company_id = b.company_id AND t.propay_id = b.propay_id AND t.worker_id = b.worker_id
    LEFT JOIN crew_share c ON c.company_id = b.company_id AND c.propay_id = b.propay_id AND c.worker_id = b.worker_id
)
SELECT n.company_id, n.propay_id, n.name, n.budget_type, n.status, n.pay_state, n.settings_version,
       n.actual_seconds AS stored_actual_seconds, n.audit_seconds AS audit_actual_seconds,
       -- the stored exact labor cost equals the one from attendance x wages (cross-multiplied)
       n.wage_missing OR n.ln * n.labor_denominator = n.labor_numerator * n.ld AS labor_cost_matches,
       n.labor_cost AS stored_labor_cost,
       CASE WHEN n.wage_missing THEN NULL ELSE CAST((2 * n.labor_numerator * 100 + n.labor_denominator)
            // (2 * n.labor_denominator) AS DECIMAL(18, 0)) * 0.01 END AS audit_labor_cost,
       n.pool_before_penalty AS stored_pool_before_penalty, CAST(n.gross_cents AS DECIMAL(18, 0)) * 0.01 AS audit_pool_before_penalty,
       n.bonus_pool AS stored_bonus_pool, CAST(n.pool_cents AS DECIMAL(18, 0)) * 0.01 AS audit_bonus_pool,
       n.crew_bucket AS stored_crew_bucket,
       CAST((SELECT cents FROM bucket b WHERE b.company_id = n.company_id AND b.propay_id = n.propay_id AND b.role = 'crew')
            AS DECIMAL(18, 0)) * 0.01 AS audit_crew_bucket,
       n.crew_lead_bucket AS stored_crew_lead_bucket,
       CAST((SELECT cents FROM bucket b WHERE b.company_id = n.company_id AND b.propay_id = n.propay_id AND b.role = 'crew_lead')
            AS DECIMAL(18, 0)) * 0.01 AS audit_crew_lead_bucket,
       n.manager_bucket AS stored_manager_bucket,
       CAST((SELECT cents FROM bucket b WHERE b.company_id = n.company_id AND b.propay_id = n.propay_id AND b.role = 'manager')
            AS DECIMAL(18, 0)) * 0.01 AS audit_manager_bucket,
       a.worker_id, a.stored_seconds, a.audit_seconds, a.stored_labor_cost AS stored_worker_labor_cost,
       a.audit_labor_cost AS audit_worker_labor_cost, a.stored_crew_share, a.audit_crew_share,
       a.stored_role_bucket_share, a.audit_role_bucket_share,
       a.stored_bonus, a.audit_crew_share + a.audit_role_bucket_share AS audit_bonus
FROM netted n
LEFT JOIN audited a ON a.company_id = n.company_id AND a.propay_id = n.propay_id
ORDER BY n.company_id, n.propay_id, a.worker_id
