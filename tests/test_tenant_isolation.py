"""Tenant isolation on PostgreSQL: an analyst role reads its own company's rows and no other's, in
every table and view; a grant is bound to the role (its OID), so a role dropped and created again
with the same name reads nothing of its predecessor's; and a company id made of SQL (quotes, a
semicolon, a comment marker) is a plain string from the registry through the sync to the
warehouse rows and the views.
"""

from __future__ import annotations

import uuid

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from protiv_dagster.connections.registry import validate_company_id
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.views import ALL_VIEWS
from protiv_dagster.warehouse.security import ANALYST_COMPANIES, GRANT_DROPPED, GRANT_OK, GRANT_RECREATED
from protiv_dagster.warehouse.session import WarehouseError
from protiv_emulators.generator import generate_company
from tests.assets.conftest import AS_OF, COMPANY, PULL_DATE, SETTINGS, instance_kind, pipeline, provider  # noqa: F401

# Accepted by the registry (no '|', ',', '[', ']' or control characters), and hostile everywhere else.
HOSTILE = 'x\'; drop table attendance; -- "q" /* c */ $$'
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


def create_role(postgres_url: str, role: str, schema: str | None = None) -> None:
    """A login role; with ``schema``, given USAGE on it and SELECT on all its tables and views by hand,
    so that row-level security is all that stands between the role and the rows."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        if schema:
            conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), sql.Identifier(role)))
            conn.execute(
                sql.SQL("grant select on all tables in schema {} to {}").format(
                    sql.Identifier(schema), sql.Identifier(role)
                )
            )


def drop_role(database_url: str, role: str) -> None:
    """What a DBA does outside `protiv analyst-role revoke`: drop the role and its privileges (which
    DROP OWNED finds in the database of ``database_url`` only)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def grants_seen(conn: psycopg.Connection, schema: str) -> list[tuple[str, str]]:
    return conn.execute(
        sql.SQL("select role_name, company_id from {}.{}").format(
            sql.Identifier(schema), sql.Identifier(ANALYST_COMPANIES)
        )
    ).fetchall()


def grant_states(warehouse: Warehouse) -> set[tuple[str, str, int | None, str]]:
    """`company_analysts()` as (role_name, company_id, role_oid or None, state) tuples."""
    return {
        (r.role_name, r.company_id, None if pd.isna(r.role_oid) else int(r.role_oid), r.state)
        for r in warehouse.company_analysts().itertuples()
    }


def role_oid(postgres_url: str, role: str) -> int:
    with psycopg.connect(postgres_url) as conn:
        return conn.execute("select oid::bigint from pg_roles where rolname = %s", [role]).fetchone()[0]


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
        HOSTILE,
        "quickbooks_time",
        pipeline.harness.base_url,
        {"access_token": token},
        attendance_pull_date=PULL_DATE,
        settings={**SETTINGS, "timezone": hostile.timezone},
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
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = %s", [postgres_schema]
            )
        }
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
        views = dict(
            admin.execute(
                "select c.relname, c.reloptions from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind = 'v'",
                [postgres_schema],
            ).fetchall()
        )
        assert all("security_invoker=true" in (views[v.name] or []) for v in ALL_VIEWS)
        # The analyst sees only its own grants, and cannot write.
        grants = analyst.execute(
            sql.SQL("select role_name, company_id from {}.{}").format(
                sql.Identifier(postgres_schema), sql.Identifier(ANALYST_COMPANIES)
            )
        ).fetchall()
        assert grants == [(analyst_role, HOSTILE)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute(
                sql.SQL("insert into {}.{} values (%s, %s)").format(
                    sql.Identifier(postgres_schema), sql.Identifier(ANALYST_COMPANIES)
                ),
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

    from protiv_dagster.cli import app, output

    # A database of its own, so the CLI's default schema "protiv" is not shared with other tests.
    monkeypatch.setenv("PROTIV_WAREHOUSE_URL", dagster_database)
    monkeypatch.setattr(output.console, "width", 200)  # COLUMNS is read once, when the console is made
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


def test_a_role_dropped_and_created_again_with_the_same_name_sees_nothing(
    pipeline, postgres_url, postgres_schema, analyst_role
):
    """A grant is bound to the role's OID: a role of the same name created after a DROP ROLE (for
    someone else, maybe) reads no row of any table or view until an admin grants it again."""
    pipeline.sync()
    warehouse = pipeline.warehouse
    granted = warehouse.grant_company_analyst(analyst_role, COMPANY)
    assert granted.role_oid == role_oid(postgres_url, analyst_role) and granted.replaced == ()
    with psycopg.connect(postgres_url, autocommit=True) as admin, as_role(postgres_url, analyst_role) as analyst:
        everything = {name: company_counts(admin, postgres_schema, name) for name in TABLES_AND_VIEWS}
        assert {name: company_counts(analyst, postgres_schema, name) for name in TABLES_AND_VIEWS} == everything
    with_rows = [name for name, counts in everything.items() if counts]
    assert {"attendance", "workers", "jobs", "raw_timesheets"} <= set(with_rows)
    assert {v.name for v in ALL_VIEWS} & set(with_rows)

    # Outside `protiv analyst-role revoke`: the role is dropped, and one of the same name created and
    # given the schema's privileges by hand. Only row-level security stands in its way.
    drop_role(postgres_url, analyst_role)
    create_role(postgres_url, analyst_role, schema=postgres_schema)
    assert role_oid(postgres_url, analyst_role) != granted.role_oid
    with as_role(postgres_url, analyst_role) as successor:
        for name in TABLES_AND_VIEWS:
            assert company_counts(successor, postgres_schema, name) == {}, (
                f"{name}: the new role reads its predecessor's rows"
            )
        assert grants_seen(successor, postgres_schema) == []
        # The policy looks the role up once per query (an InitPlan feeding a hashed SubPlan), not per row.
        plan = [
            row[0]
            for row in successor.execute(
                sql.SQL("explain select count(*) from {}.attendance").format(sql.Identifier(postgres_schema))
            )
        ]
        filters = [line for line in plan if "Filter:" in line and "SubPlan" in line]
        assert filters and all("hashed SubPlan" in line for line in filters), plan
        assert any("InitPlan" in line for line in plan), plan
    assert grant_states(warehouse) == {(analyst_role, COMPANY, granted.role_oid, GRANT_RECREATED)}
    # The pipeline's syncs and views go on as before; the stale grant stays inert.
    pipeline.sync()
    with as_role(postgres_url, analyst_role) as successor:
        assert all(company_counts(successor, postgres_schema, name) == {} for name in TABLES_AND_VIEWS)

    # revoke cleans the stale grant up (and the privileges the role was given by hand).
    removed = warehouse.revoke_company_analyst(analyst_role)
    assert list(removed["state"]) == [GRANT_RECREATED]
    assert warehouse.company_analysts().empty
    with as_role(postgres_url, analyst_role) as successor, pytest.raises(psycopg.errors.InsufficientPrivilege):
        successor.execute(sql.SQL("select count(*) from {}.attendance").format(sql.Identifier(postgres_schema)))

    # A fresh grant binds the company to the role that exists now.
    regranted = warehouse.grant_company_analyst(analyst_role, COMPANY)
    assert regranted.role_oid == role_oid(postgres_url, analyst_role) != granted.role_oid
    assert regranted.replaced == () and regranted.stale_companies == ()
    with psycopg.connect(postgres_url, autocommit=True) as admin, as_role(postgres_url, analyst_role) as successor:
        for name in TABLES_AND_VIEWS:
            assert company_counts(successor, postgres_schema, name) == company_counts(admin, postgres_schema, name), (
                name
            )
        assert grants_seen(successor, postgres_schema) == [(analyst_role, COMPANY)]
    assert grant_states(warehouse) == {(analyst_role, COMPANY, regranted.role_oid, GRANT_OK)}


def test_analyst_role_cli_lists_stale_grants_rebinds_on_an_explicit_grant_and_revokes_them(
    analyst_role, postgres_url, dagster_database, monkeypatch
):
    from typer.testing import CliRunner

    from protiv_dagster.cli import app, output

    monkeypatch.setenv("PROTIV_WAREHOUSE_URL", dagster_database)
    # Wide enough for one row per grant: the CLI's console read COLUMNS when it was made, which may
    # be before this test (another test of the same worker imported the CLI first).
    monkeypatch.setattr(output.console, "width", 200)
    runner = CliRunner()
    warehouse = Warehouse(url=dagster_database)
    gone = f"analyst_{uuid.uuid4().hex[:10]}"
    create_role(postgres_url, gone)
    try:
        for role, company in ((analyst_role, HOSTILE), (analyst_role, COMPANY), (gone, COMPANY)):
            granted = runner.invoke(app, ["analyst-role", "grant", role, company])
            assert granted.exit_code == 0, granted.output
        first_oid, gone_oid = role_oid(postgres_url, analyst_role), role_oid(postgres_url, gone)
        # Their privileges are in the warehouse's database: DROP OWNED runs there.
        drop_role(dagster_database, gone)  # dropped for good
        drop_role(dagster_database, analyst_role)
        create_role(postgres_url, analyst_role)  # and created again: another role
        assert grant_states(warehouse) == {
            (analyst_role, HOSTILE, first_oid, GRANT_RECREATED),
            (analyst_role, COMPANY, first_oid, GRANT_RECREATED),
            (gone, COMPANY, gone_oid, GRANT_DROPPED),
        }

        listed = runner.invoke(app, ["analyst-role", "list"])
        assert listed.exit_code == 0, listed.output  # stale grants are reported, not an error
        lines = listed.output.splitlines()
        assert any(gone in line and GRANT_DROPPED in line for line in lines), listed.output
        assert sum(analyst_role in line and GRANT_RECREATED in line for line in lines) == 2, listed.output
        assert "protiv analyst-role revoke <role>" in " ".join(listed.output.split())

        # Granting a stale name again is the admin binding the company to the role that exists now.
        regranted = runner.invoke(app, ["analyst-role", "grant", analyst_role, COMPANY])
        assert regranted.exit_code == 0, regranted.output
        said = " ".join(regranted.output.split())
        assert "Replaced a stale grant" in said and "bound the company to the role" in said, said
        assert "also has stale grants" in said and "drop table attendance" in said, said  # HOSTILE stays stale
        new_oid = role_oid(postgres_url, analyst_role)
        states = grant_states(warehouse)
        assert (analyst_role, COMPANY, new_oid, GRANT_OK) in states
        assert (analyst_role, HOSTILE, first_oid, GRANT_RECREATED) in states and len(states) == 3

        # revoke removes stale grants by name, also of a role that no longer exists.
        revoked = runner.invoke(app, ["analyst-role", "revoke", gone])
        assert revoked.exit_code == 0 and "1 of them stale" in revoked.output, revoked.output
        revoked = runner.invoke(app, ["analyst-role", "revoke", analyst_role, HOSTILE])
        assert revoked.exit_code == 0, revoked.output
        assert grant_states(warehouse) == {(analyst_role, COMPANY, new_oid, GRANT_OK)}
        listed = runner.invoke(app, ["analyst-role", "list"])
        assert listed.exit_code == 0 and "stale" not in listed.output, listed.output
        again = runner.invoke(app, ["analyst-role", "revoke", gone])
        assert again.exit_code == 2 and "does not exist and has no grants" in again.output, again.output
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            if conn.execute("select 1 from pg_roles where rolname = %s", [gone]).fetchone():
                drop_role(dagster_database, gone)


def test_grants_of_the_name_only_table_of_the_previous_release_are_bound_in_place(
    postgres_url, postgres_schema, analyst_role
):
    """A warehouse made by the release before OIDs: each grant is bound to the role that has its
    name now, a grant whose role is gone is kept but inert, and nothing is lost."""
    gone = f"analyst_{uuid.uuid4().hex[:10]}"  # no such role: its grant outlived it
    schema = sql.Identifier(postgres_schema)
    mapping = sql.SQL("{}.{}").format(schema, sql.Identifier(ANALYST_COMPANIES))
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("create schema {}").format(schema))
        admin.execute(sql.SQL("create table {}.t (company_id text not null, v int)").format(schema))
        admin.execute(
            sql.SQL("insert into {}.t values ('a', 1), ('a', 2), ('a', 3), ('b', 4), ('b', 5)").format(schema)
        )
        admin.execute(
            sql.SQL(
                "create view {0}.v with (security_invoker = true) as select company_id, sum(v) as total from {0}.t group by 1"
            ).format(schema)
        )
        # What the previous release's enable_row_security and grant_company_analyst left behind.
        admin.execute(
            sql.SQL(
                "create table {} (role_name text not null, company_id text not null, primary key (role_name, company_id))"
            ).format(mapping)
        )
        admin.execute(sql.SQL("insert into {} values (%s, 'a'), (%s, 'b')").format(mapping), [analyst_role, gone])
        for table, using in (
            (mapping, sql.SQL("role_name = current_user")),
            (
                sql.SQL("{}.t").format(schema),
                sql.SQL("company_id in (select a.company_id from {} a where a.role_name = current_user)").format(
                    mapping
                ),
            ),
        ):
            admin.execute(sql.SQL("alter table {} enable row level security").format(table))
            admin.execute(sql.SQL("create policy company_analyst on {} for select using ({})").format(table, using))
        admin.execute(sql.SQL("grant usage on schema {} to {}").format(schema, sql.Identifier(analyst_role)))
        admin.execute(
            sql.SQL("grant select on all tables in schema {} to {}").format(schema, sql.Identifier(analyst_role))
        )

    warehouse = Warehouse(url=postgres_url, schema_name=postgres_schema)
    bound = (analyst_role, "a", role_oid(postgres_url, analyst_role), GRANT_OK)
    expected = {bound, (gone, "b", None, GRANT_DROPPED)}
    # Listing upgrades the table first (and so do grant, revoke and enable_row_security) ...
    assert grant_states(warehouse) == expected
    # ... once: running it again changes nothing and loses nothing.
    assert warehouse.enable_row_security() == ["t", "v"]
    assert warehouse.enable_row_security() == ["t", "v"]
    assert grant_states(warehouse) == expected
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        policies = admin.execute(
            "select tablename, qual from pg_policies where schemaname = %s order by 1", [postgres_schema]
        ).fetchall()
        assert [name for name, _ in policies] == [ANALYST_COMPANIES, "t"]
        assert all("role_oid" in qual and "role_name" not in qual for _, qual in policies), policies
        counts = {name: company_counts(admin, postgres_schema, name) for name in ("t", "v")}
    with as_role(postgres_url, analyst_role) as analyst:
        assert company_counts(analyst, postgres_schema, "t") == {"a": counts["t"]["a"]} == {"a": 3}
        assert company_counts(analyst, postgres_schema, "v") == {"a": 1}
        assert grants_seen(analyst, postgres_schema) == [(analyst_role, "a")]

    # A role created later with the gone role's name is another role: the kept grant is not its.
    create_role(postgres_url, gone, schema=postgres_schema)
    try:
        warehouse.enable_row_security()  # OIDs are filled at the upgrade only, never later
        with as_role(postgres_url, gone) as newcomer:
            assert company_counts(newcomer, postgres_schema, "t") == {}
            assert company_counts(newcomer, postgres_schema, "v") == {}
            assert grants_seen(newcomer, postgres_schema) == []
        assert grant_states(warehouse) == {bound, (gone, "b", None, GRANT_RECREATED)}
        assert list(warehouse.revoke_company_analyst(gone)["state"]) == [GRANT_RECREATED]
        assert grant_states(warehouse) == {bound}
    finally:
        drop_role(postgres_url, gone)
