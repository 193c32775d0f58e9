-- Run by the postgres image on its first start (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- Dagster's instance lives in the database "dagster" (POSTGRES_DB); the warehouse (schema protiv)
-- and the connection registry live in their own database, so each can be backed up, restored or
-- moved to another server without the other.
CREATE DATABASE protiv;
