SELECT
    company_id,
    worker_id,
    first_name,
    last_name,
    active,
    hourly_wage,
    pay_interval,
    hire_date,
    term_date,
    source_modified_at
FROM {{ source('protiv', 'workers') }}
