"""Write the previous release's DDL (commit 5a7857a) to tests/migrations/fixtures/, from its own code.

    git archive 5a7857a | tar -x -C /tmp/prev
    .venv/bin/python tests/migrations/make_fixtures.py /tmp/prev

Runs the old code in a subprocess (PYTHONPATH = the extracted tree): the registry's and sync state's
tables as its SQLAlchemy declarations compile for SQLite and PostgreSQL (captured from the
``create_all`` its classes call), the warehouse's tables as its ``_create_table_sql`` writes them
(the same text for DuckDB and PostgreSQL) and its views as its ``ensure_views`` creates them.
``{schema}`` stands for the quoted warehouse schema. The tests build old databases from these files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SEPARATOR = ";\n\n"

OLD_CODE = r"""
import sys
from pathlib import Path
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

out = Path(sys.argv[1])
captured = []
create_all = sa.MetaData.create_all
def capture(self, bind=None, *args, **kwargs):
    captured.append(self)
    return create_all(self, bind, *args, **kwargs)
sa.MetaData.create_all = capture

from protiv_dagster.registry import ConnectionRegistry
from protiv_dagster.sync_state import SyncStateStore
ConnectionRegistry("sqlite://")
SyncStateStore("sqlite://")
for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
    statements = []
    for metadata in captured:
        for table in metadata.sorted_tables:
            statements.append(str(sa.schema.CreateTable(table).compile(dialect=dialect)).strip())
            for index in sorted(table.indexes, key=lambda index: index.name):
                statements.append(str(sa.schema.CreateIndex(index).compile(dialect=dialect)).strip())
    (out / f"registry_5a7857a.{name}.sql").write_text(SEPARATOR.join(statements) + ";\n")

from protiv_dagster.resources.warehouse import _create_table_sql
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.views import ALL_VIEWS
for name, options in (("duckdb", ""), ("postgresql", " WITH (security_invoker = true)")):
    statements = ["CREATE SCHEMA {schema}"] + [_create_table_sql("{schema}", table) for table in ALL_TABLES]
    statements += [f"CREATE VIEW {{schema}}.{view.name}{options} AS {view.select.strip()}" for view in ALL_VIEWS]
    (out / f"warehouse_5a7857a.{name}.sql").write_text(SEPARATOR.join(statements) + ";\n")
""".replace("SEPARATOR", repr(SEPARATOR))


def main(old_tree: str) -> None:
    FIXTURES.mkdir(exist_ok=True)
    environment = {**os.environ, "PYTHONPATH": str(Path(old_tree).resolve())}
    subprocess.run([sys.executable, "-c", OLD_CODE, str(FIXTURES)], check=True, env=environment, cwd=old_tree)
    for path in sorted(FIXTURES.glob("*.sql")):
        print(path.name, path.read_text().count(SEPARATOR) + 1, "statements")


if __name__ == "__main__":
    main(sys.argv[1])
