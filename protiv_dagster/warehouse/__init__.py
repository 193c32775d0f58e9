"""The warehouse library: ProPay tables in DuckDB (embedded default) or PostgreSQL, with no Dagster in it
(the Dagster resource over it is `protiv_dagster.resources.warehouse.Warehouse`).

- `declarations`: tables and views as plain data (`Table`, `Column`, `View`), identifiers, SQL types;
- `urls`: which backend a warehouse URL names, and `redact_url`;
- `conversion`: DataFrame cells into the values both drivers bind alike, checked per column;
- `results`: query results as the same typed DataFrame on both backends;
- `spool`: partition writes (`PartitionWrite`, `PartitionSpool`) and their rows spooled to disk;
- `session`, `duckdb`, `postgres`: one open transaction per backend, and `WarehouseError`;
- `store`: `WarehouseStore`, connections and the operations (replace partitions, query, read);
- `schema`: creating tables and views, and refusing tables that drifted from their declarations;
- `security`: analyst roles, per-company row-level security on PostgreSQL.

Callers import from the submodules.
"""
