"""Analyst roles on PostgreSQL: per-company row-level security over the warehouse tables and views.

An analyst role reads the rows of the companies `analyst_companies` maps it to, and nothing else,
in the warehouse schema and through the analysts' marts (schema `analytics`, dbt views).
Grants are bound to the role's OID, so a role dropped and created again under the same name reads
nothing of its predecessor's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from protiv_dagster.analytics import analytics_schema
from protiv_dagster.warehouse.declarations import check_identifier, quote
from protiv_dagster.warehouse.session import Session, WarehouseError
from protiv_dagster.warehouse.store import WarehouseStore

log = logging.getLogger(__name__)

ANALYST_COMPANIES = "analyst_companies"  # (role_name, company_id, role_oid): what each analyst role may read
ANALYST_POLICY = "company_analyst"
ANALYST_BINDING = "analyst_companies_binding"  # UNIQUE (role_oid, company_id)
# The states `company_analysts` gives a grant; a stale one gives no rows.
GRANT_OK = "ok"
GRANT_DROPPED = "stale: role dropped"
GRANT_RECREATED = "stale: role re-created (new OID)"
# The querying role's OID, as an uncorrelated scalar subquery: evaluated once per query (an
# InitPlan), and as the querying role through views with security_invoker. Schema-qualified so a
# search_path cannot put another pg_roles in its place.
_CURRENT_ROLE_OID = "(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)"
# A grant (aliased a) whose role is gone: its OID is no role's (or it never had one).
_STALE_GRANT = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = a.role_oid)"


@dataclass(frozen=True)
class AnalystGrant:
    """What `grant_company_analyst` did."""

    role: str
    company_id: str
    role_oid: int  # the role the grant is bound to (pg_roles.oid)
    # States of the stale grants of this name and company that the grant replaced (re-bound).
    replaced: tuple[str, ...] = ()
    # Companies of stale grants still held under this name: they give no rows.
    stale_companies: tuple[str, ...] = ()


def enable_row_security(store: WarehouseStore) -> list[str]:
    """Lay per-company row-level security over every table and view of the schema that has a
    ``company_id`` column; return their names. Idempotent; PostgreSQL only.

    A role reads the rows of the companies ``analyst_companies`` maps it to (``grant_company_analyst``)
    and nothing else. Views are switched to ``security_invoker`` so they read as the analyst. The
    table owner (the pipeline's role) is not subject to the policies and keeps writing every company.

    A grant is bound to the role's OID, not to its name: the policies compare ``role_oid`` with
    the OID of ``current_user``, looked up once per query. A role dropped and created again with
    the same name is another role (another OID) and reads nothing until it is granted again;
    its predecessor's grants stay inert and ``company_analysts`` lists them as stale.

    Also upgrades, in place and once, an ``analyst_companies`` of an earlier release that held
    names only: each grant is bound to the role that has its name now, and a grant whose role
    no longer exists is kept with no OID (inert, listed as ``stale: role dropped``).
    """
    _require_postgres(store, "row-level security")
    schema = quote(store.schema_name)
    mapping = f"{schema}.{quote(ANALYST_COMPANIES)}"
    with store.session("enabling row-level security") as session:
        session.serialize(f"protiv_dagster.warehouse schema {store.schema_name}")
        if session.fetch("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [store.schema_name]).empty:
            session.execute(f"CREATE SCHEMA {schema}")
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {mapping} (role_name TEXT NOT NULL, company_id TEXT NOT NULL, "
            f"role_oid OID, CONSTRAINT {quote(ANALYST_BINDING)} UNIQUE (role_oid, company_id))"
        )
        _bind_analyst_grants(store, session)
        session.execute(
            f"COMMENT ON TABLE {mapping} IS 'Which companies each analyst role may read (row-level security).'"
        )
        session.execute(
            f"COMMENT ON COLUMN {mapping}.role_oid IS 'The role granted (pg_roles.oid): the policies match on it. "
            "A grant whose role no longer has this OID (dropped, or dropped and created again) gives no rows.'"
        )
        session.execute(
            f"COMMENT ON COLUMN {mapping}.role_name IS 'The name of the role granted, for display (follows renames).'"
        )
        # An analyst sees its own grants only: the policies below read this table as the analyst.
        session.execute(f"ALTER TABLE {mapping} ENABLE ROW LEVEL SECURITY")
        session.execute(f"DROP POLICY IF EXISTS {ANALYST_POLICY} ON {mapping}")
        session.execute(
            f"CREATE POLICY {ANALYST_POLICY} ON {mapping} FOR SELECT USING (role_oid = {_CURRENT_ROLE_OID})"
        )
        scoped = session.fetch(
            "SELECT c.table_name, t.table_type FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = ? AND c.column_name = 'company_id' AND c.table_name <> ? ORDER BY c.table_name",
            [store.schema_name, ANALYST_COMPANIES],
        )
        for name, kind in zip(scoped["table_name"], scoped["table_type"]):
            qualified = f"{schema}.{quote(name)}"
            if kind == "VIEW":
                session.execute(f"ALTER VIEW {qualified} SET (security_invoker = true)")
                continue
            session.execute(f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY")
            session.execute(f"DROP POLICY IF EXISTS {ANALYST_POLICY} ON {qualified}")
            # Both subqueries are uncorrelated: PostgreSQL runs them once per query (an InitPlan
            # and a hashed SubPlan), not once per row.
            session.execute(
                f"CREATE POLICY {ANALYST_POLICY} ON {qualified} FOR SELECT USING (company_id IN "
                f"(SELECT a.company_id FROM {mapping} a WHERE a.role_oid = {_CURRENT_ROLE_OID}))"
            )
    return list(scoped["table_name"])


def grant_company_analyst(store: WarehouseStore, role: str, company_id: str) -> AnalystGrant:
    """Let the existing PostgreSQL ``role`` read ``company_id``'s rows of every table and view,
    and no other company's. Idempotent; a role may be granted several companies.

    The grant is bound to the role that has this name now (its OID). A stale grant of the same
    name and company (made to an earlier role of that name, since dropped) is replaced: granting
    again is the admin binding the company to the role that exists now. Stale grants of the name
    for other companies stay stale; the result lists them.

    Refuses a superuser, a BYPASSRLS role or the tables' owner: row-level security does not
    apply to them, so they could never be limited to one company.
    """
    check_identifier(role, "role")
    if not isinstance(company_id, str) or not company_id:
        raise ValueError("company_id must be a non-empty string")
    enable_row_security(store)
    schema = quote(store.schema_name)
    mapping = f"{schema}.{quote(ANALYST_COMPANIES)}"
    with store.session(f"granting {role} the rows of one company") as session:
        session.serialize(f"protiv_dagster.warehouse schema {store.schema_name}")
        found = session.fetch(
            "SELECT oid::bigint AS role_oid, rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = ?", [role]
        )
        if found.empty:
            raise WarehouseError(
                f"role {role!r} does not exist; create it first (CREATE ROLE {role} LOGIN PASSWORD '...')"
            )
        owner = session.fetch(
            "SELECT 1 FROM pg_tables WHERE schemaname = ? AND tableowner = ?", [store.schema_name, role]
        )
        if bool(found["rolsuper"].iloc[0]) or bool(found["rolbypassrls"].iloc[0]) or not owner.empty:
            raise WarehouseError(
                f"role {role!r} is a superuser, has BYPASSRLS or owns the tables: row-level security "
                "cannot limit it to one company; use a plain role"
            )
        role_oid = int(found["role_oid"].iloc[0])
        session.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quote(role)}")
        # Every table and view of the schema: each one holding company rows has a policy.
        session.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {quote(role)}")
        _grant_marts(store, session, role)
        stale = f"a.role_name = ? AND {_STALE_GRANT}"
        replaced = _analyst_grants(store, session, f"{stale} AND a.company_id = ?", [role, company_id])
        session.execute(f"DELETE FROM {mapping} a WHERE {stale} AND a.company_id = ?", [role, company_id])
        session.execute(
            f"INSERT INTO {mapping} (role_name, company_id, role_oid) VALUES (?, ?, CAST(? AS oid)) "
            "ON CONFLICT (role_oid, company_id) DO NOTHING",
            [role, company_id, role_oid],
        )
        left = _analyst_grants(store, session, stale, [role])
    if not replaced.empty:
        log.info(
            "Granting %s company %r again bound it to the role %s that exists now (OID %d), replacing %s",
            role,
            company_id,
            role,
            role_oid,
            ", ".join(replaced["state"]),
        )
    return AnalystGrant(
        role, company_id, role_oid, replaced=tuple(replaced["state"]), stale_companies=tuple(left["company_id"])
    )


def revoke_company_analyst(store: WarehouseStore, role: str, company_id: str | None = None) -> pd.DataFrame:
    """Take ``company_id`` (every company when None) away from ``role``; return the grants
    removed, as ``company_analysts`` lists them.

    ``role`` names the role that has this name now and, as well, the stale grants left under
    this name by an earlier role (dropped, or dropped and created again): this is how stale
    grants are cleaned up, even when no role of that name exists any more. A role left with no
    company loses its SELECT grants on the schema too.
    """
    check_identifier(role, "role")
    enable_row_security(store)  # binds the grants of an earlier release before matching them
    schema = quote(store.schema_name)
    mapping = f"{schema}.{quote(ANALYST_COMPANIES)}"
    with store.session(f"revoking {role}'s companies") as session:
        session.serialize(f"protiv_dagster.warehouse schema {store.schema_name}")
        found = session.fetch("SELECT oid::bigint AS role_oid FROM pg_catalog.pg_roles WHERE rolname = ?", [role])
        role_oid = None if found.empty else int(found["role_oid"].iloc[0])
        condition = f"(a.role_name = ? AND {_STALE_GRANT})"
        params: list[object] = [role]
        if role_oid is not None:
            condition, params = f"({condition} OR a.role_oid = CAST(? AS oid))", [*params, role_oid]
        if company_id is not None:
            condition, params = f"{condition} AND a.company_id = ?", [*params, company_id]
        removed = _analyst_grants(store, session, condition, params)
        session.execute(f"DELETE FROM {mapping} a WHERE {condition}", params)
        if role_oid is None:
            if removed.empty:
                of = "" if company_id is None else f" for company {company_id!r}"
                raise WarehouseError(f"role {role!r} does not exist and has no grants{of}")
        elif session.fetch(f"SELECT 1 FROM {mapping} WHERE role_oid = CAST(? AS oid)", [role_oid]).empty:
            session.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA {schema} FROM {quote(role)}")
            session.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {quote(role)}")
            _grant_marts(store, session, role, revoke=True)
    return removed


def company_analysts(store: WarehouseStore) -> pd.DataFrame:
    """Every analyst grant: ``role_name``, ``company_id``, ``role_oid`` (the role it is bound to;
    NA for a grant of an earlier release whose role was already gone) and ``state``:

    - ``ok``: the role granted exists (``ok: role renamed to NAME`` when it was renamed since);
    - ``stale: role dropped``: no role has this OID any more;
    - ``stale: role re-created (new OID)``: a role of this name exists, but it is another role.

    Stale grants give no rows; ``revoke_company_analyst(role_name)`` removes them. Empty before
    the first grant. A table of an earlier release (names only) is upgraded first
    (``enable_row_security``), so its grants are listed, and enforced, by OID.
    """
    _require_postgres(store, "row-level security")
    with store.session("listing analyst roles") as session:
        columns = session.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [store.schema_name, ANALYST_COMPANIES],
        )
        if columns.empty:
            return pd.DataFrame(
                {
                    "role_name": pd.Series(dtype=str),
                    "company_id": pd.Series(dtype=str),
                    "role_oid": pd.Series(dtype="Int64"),
                    "state": pd.Series(dtype=str),
                }
            )
    if "role_oid" not in set(columns["column_name"]):
        enable_row_security(store)
    with store.session("listing analyst roles") as session:
        return _analyst_grants(store, session)


def _bind_analyst_grants(store: WarehouseStore, session: Session) -> None:
    """Bring ``analyst_companies`` to the OID-bound shape, once (idempotent), and let the names
    shown follow renamed roles. Runs inside ``enable_row_security``'s transaction and lock."""
    mapping = f"{quote(store.schema_name)}.{quote(ANALYST_COMPANIES)}"
    columns = session.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [store.schema_name, ANALYST_COMPANIES],
    )
    if "role_oid" not in set(columns["column_name"]):
        # Only here, once: filling OIDs later would hand a role created afterwards with the
        # same name its predecessor's companies, which is the hole this column closes.
        session.execute(f"ALTER TABLE {mapping} ADD COLUMN role_oid OID")
        # The role that has the name now is the one that was granted, as far as anyone can tell.
        session.execute(
            f"UPDATE {mapping} a SET role_oid = r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = a.role_name"
        )
        # The old key (role_name, company_id) would stop a re-created role's grant from sitting
        # beside its predecessor's stale one; a grant is one role (OID) and one company.
        keys = session.fetch(
            "SELECT k.conname FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = ? AND t.relname = ? AND k.contype IN ('p', 'u')",
            [store.schema_name, ANALYST_COMPANIES],
        )
        for name in keys["conname"]:
            session.execute(f"ALTER TABLE {mapping} DROP CONSTRAINT {quote(name)}")
        session.execute(f"ALTER TABLE {mapping} ADD CONSTRAINT {quote(ANALYST_BINDING)} UNIQUE (role_oid, company_id)")
        unbound = session.fetch(f"SELECT role_name, company_id FROM {mapping} WHERE role_oid IS NULL ORDER BY 1, 2")
        log.warning(
            "Bound the analyst grants of %s to role OIDs; %d grant(s) of roles that no longer exist are "
            "kept, inert (stale): %s",
            store.describe(),
            len(unbound),
            ", ".join(f"{r.role_name}/{r.company_id!r}" for r in unbound.itertuples()) or "none",
        )
    # Display only: the grant stays with the role (its OID) when the role is renamed.
    session.execute(
        f"UPDATE {mapping} a SET role_name = r.rolname FROM pg_catalog.pg_roles r "
        "WHERE r.oid = a.role_oid AND a.role_name <> r.rolname"
    )


def _analyst_grants(
    store: WarehouseStore, session: Session, condition: str = "TRUE", params: Sequence[object] = ()
) -> pd.DataFrame:
    """The grants of ``analyst_companies`` (aliased ``a``) matching ``condition``, with their state."""
    mapping = f"{quote(store.schema_name)}.{quote(ANALYST_COMPANIES)}"
    return session.fetch(
        "SELECT a.role_name, a.company_id, a.role_oid::bigint AS role_oid, CASE "
        f"WHEN live.oid IS NOT NULL AND live.rolname = a.role_name THEN '{GRANT_OK}' "
        f"WHEN live.oid IS NOT NULL THEN '{GRANT_OK}: role renamed to ' || live.rolname "
        f"WHEN named.oid IS NOT NULL THEN '{GRANT_RECREATED}' ELSE '{GRANT_DROPPED}' END AS state "
        f"FROM {mapping} a LEFT JOIN pg_catalog.pg_roles live ON live.oid = a.role_oid "
        "LEFT JOIN pg_catalog.pg_roles named ON named.rolname = a.role_name "
        f"WHERE {condition} ORDER BY a.role_name, a.company_id, a.role_oid",
        params,
    )


def _grant_marts(store: WarehouseStore, session: Session, role: str, *, revoke: bool = False) -> None:
    """Let ``role`` read the analysts' marts (dbt views in the schema ``analytics_schema``), or no more.

    dbt replaces a view on every build, and a new view has none of the old one's grants: default
    privileges give SELECT on every view the pipeline's role creates there later. The marts are
    ``security_invoker`` views (a dbt post-hook), so the tables' policies limit them as above."""
    marts = quote(analytics_schema(store.schema_name))
    grantee = quote(role)
    if revoke:
        if session.fetch(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [analytics_schema(store.schema_name)]
        ).empty:
            return
        session.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {marts} REVOKE SELECT ON TABLES FROM {grantee}")
        session.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA {marts} FROM {grantee}")
        session.execute(f"REVOKE USAGE ON SCHEMA {marts} FROM {grantee}")
        return
    session.execute(f"CREATE SCHEMA IF NOT EXISTS {marts}")
    session.execute(f"GRANT USAGE ON SCHEMA {marts} TO {grantee}")
    session.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {marts} TO {grantee}")
    session.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {marts} GRANT SELECT ON TABLES TO {grantee}")


def _require_postgres(store: WarehouseStore, what: str) -> None:
    if store.backend != "postgres":
        raise WarehouseError(f"{what} needs PostgreSQL: DuckDB has no roles ({store.describe()})")


# -- internals -----------------------------------------------------------------------------
