"""Tenant isolation on PostgreSQL: an analyst role reads its own company's rows and no other's, in
every table and view; and a company id made of SQL (quotes, a semicolon, a comment marker) is a
plain string from the registry through the sync to the warehouse rows and the views.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from protiv_dagster.registry import validate_company_id
from protiv_dagster.resources.warehouse import ANALYST_COMPANIES, Warehouse, WarehouseError
from protiv_dagster.sandbox.generator import generate_company
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.views import ALL_VIEWS
from tests.assets.conftest import AS_OF, COMPANY, PULL_DATE, SETTINGS, instance_kind, pipeline, provider  # noqa: F401

# Accepted by the registry (no '|', ',', '[', ']' or control characters), and hostile everywhere else.
HOSTILE = "x'; drop table attendance; -- \"q\" /* c */ $$"
TABLES_AND_VIEWS = [t.name for t in ALL_TABLES] + [v.name for v in ALL_VIEWS]


@pytest.fixture
def warehouse_backend() -> str:
    return "postgres"


@pytest.fixture
def analyst_role(postgres_url, postgres_schema):
    """A fresh login role, dropped with everything granted to it after the test."""
    role = f"analyst_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def as_role(postgres_url: str, role: str) -> psycopg.Connection:
    """A session logged in as ``role`` (trust authentication in the test cluster)."""
    return psycopg.connect(postgres_url.replace("postgres@", f"{role}@", 1), autocommit=True)


def company_counts(conn: psycopg.Connection, schema: str, name: str) -> dict[str, int]:
    query = sql.SQL("select company_id, count(*) from {}.{} group by company_id").format(
        sql.Identifier(schema), sql.Identifier(name)
    )
    return dict(conn.execute(query).fetchall())


def sync_two_companies(pipeline) -> None:
    """acme (the fixture's company) and the hostile id, both on the same QuickBooks Time emulator."""
    hostile = generate_company(HOSTILE, seed=5, workers=6, days=14, as_of=AS_OF, timezone="America/Chicago")
    token = pipeline.emulator.add_company(hostile)
    assert validate_company_id(HOSTILE) == HOSTILE
    pipeline.registry.connect(
        HOSTILE, "quickbooks_time", pipeline.harness.base_url, {"access_token": token},
        attendance_pull_date=PULL_DATE, settings={**SETTINGS, "timezone": hostile.timezone},
    )
    pipeline.sync()
    pipeline.sync(HOSTILE)


def test_hostile_company_id_is_plain_data_and_analysts_see_only_their_company(
    pipeline, postgres_url, postgres_schema, analyst_role
):
    sync_two_companies(pipeline)
    warehouse = pipeline.warehouse

    # The id went through the registry, Dagster partitions, the sync and every write as a value.
    assert pipeline.registry.get(HOSTILE).company_id == HOSTILE
    for name in ("attendance", "workers", "jobs", "raw_timesheets", "propay_opportunities"):
        rows = warehouse.read_table(name, where={"company_id": HOSTILE})
        assert len(rows) > 0 and set(rows["company_id"]) == {HOSTILE}, name
    summary = warehouse.query("select * from {schema}.company_propay_summary where company_id = ?", [HOSTILE])
    assert list(summary["company_id"]) == [HOSTILE]
    with psycopg.connect(postgres_url) as conn:
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", [postgres_schema]
        )}
    assert {t.name for t in ALL_TABLES} <= tables  # nothing was dropped

    # The analyst of the hostile company: row security on every table and view with company_id.
    secured = warehouse.enable_row_security()
    assert set(TABLES_AND_VIEWS) <= set(secured)
    warehouse.grant_company_analyst(analyst_role, HOSTILE)
    warehouse.grant_company_analyst(analyst_role, HOSTILE)  # idempotent
    # A sync recreates the views: the analyst keeps reading them, still filtered.
    warehouse.ensure_views(ALL_VIEWS)
    with psycopg.connect(postgres_url, autocommit=True) as admin, as_role(postgres_url, analyst_role) as analyst:
        seen_rows = 0
        for name in TABLES_AND_VIEWS:
            everything = company_counts(admin, postgres_schema, name)
            own = company_counts(analyst, postgres_schema, name)
            assert set(own) <= {HOSTILE}, f"{name}: the analyst sees {set(own) - {HOSTILE}}"
            assert own.get(HOSTILE, 0) == everything.get(HOSTILE, 0), name
            seen_rows += sum(own.values())
            if everything.get(COMPANY):
                # Asking for the other company by name gives nothing either.
                other = analyst.execute(
                    sql.SQL("select count(*) from {}.{} where company_id = %s").format(
                        sql.Identifier(postgres_schema), sql.Identifier(name)
                    ),
                    [COMPANY],
                ).fetchone()[0]
                assert other == 0, name
        assert seen_rows > 0
        views = dict(admin.execute(
            "select c.relname, c.reloptions from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind = 'v'", [postgres_schema],
        ).fetchall())
        assert all("security_invoker=true" in (views[v.name] or []) for v in ALL_VIEWS)
        # The analyst sees only its own grants, and cannot write.
        grants = analyst.execute(
            sql.SQL("select role_name, company_id from {}.{}").format(sql.Identifier(postgres_schema), sql.Identifier(ANALYST_COMPANIES))
        ).fetchall()
        assert grants == [(analyst_role, HOSTILE)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute(
                sql.SQL("insert into {}.{} values (%s, %s)").format(sql.Identifier(postgres_schema), sql.Identifier(ANALYST_COMPANIES)),
                [analyst_role, COMPANY],
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute(sql.SQL("delete from {}.attendance").format(sql.Identifier(postgres_schema)))

    # The pipeline's own role is not held back by the policies: the next sync still writes both.
    pipeline.sync()
    assert len(warehouse.read_table("attendance", where={"company_id": COMPANY})) > 0

    warehouse.revoke_company_analyst(analyst_role)
    with as_role(postgres_url, analyst_role) as analyst, pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute(sql.SQL("select count(*) from {}.attendance").format(sql.Identifier(postgres_schema)))


def test_a_role_that_bypasses_row_security_is_refused(postgres_url, postgres_schema):
    warehouse = Warehouse(url=postgres_url, schema_name=postgres_schema)
    with pytest.raises(WarehouseError, match="superuser"):
        warehouse.grant_company_analyst("postgres", COMPANY)
    with pytest.raises(WarehouseError, match="does not exist"):
        warehouse.grant_company_analyst(f"nobody_{uuid.uuid4().hex[:8]}", COMPANY)
    with pytest.raises(ValueError, match="identifier"):
        warehouse.grant_company_analyst('x"; drop role postgres; --', COMPANY)


def test_row_security_needs_postgres(tmp_path):
    with pytest.raises(WarehouseError, match="needs PostgreSQL"):
        Warehouse(url=str(tmp_path / "w.duckdb")).grant_company_analyst("analyst", COMPANY)


def test_analyst_role_cli_grants_lists_and_revokes(analyst_role, dagster_database, monkeypatch):
    from typer.testing import CliRunner

    from protiv_dagster.cli import app

    # A database of its own, so the CLI's default schema "protiv" is not shared with other tests.
    monkeypatch.setenv("PROTIV_WAREHOUSE_URL", dagster_database)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    granted = runner.invoke(app, ["analyst-role", "grant", analyst_role, HOSTILE])
    assert granted.exit_code == 0, granted.output
    listed = runner.invoke(app, ["analyst-role", "list"])
    assert analyst_role in listed.output and "drop table attendance" in listed.output
    refused = runner.invoke(app, ["analyst-role", "grant", "postgres", COMPANY])
    assert refused.exit_code == 2 and "superuser" in refused.output
    revoked = runner.invoke(app, ["analyst-role", "revoke", analyst_role])
    assert revoked.exit_code == 0, revoked.output
    assert Warehouse(url=dagster_database).company_analysts().empty
