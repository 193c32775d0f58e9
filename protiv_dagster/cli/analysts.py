"""What analysts read, and who may read it: the ProPay summary printed after a sync, a company's
report with charts (`protiv report`), and the analyst roles of a PostgreSQL warehouse
(`protiv analyst-role`).

The summary is read from the analysts' views (`company_propay_summary`, `propay_savings`), so the
CLI shows the figures an analyst's SQL shows, computed in one place (`protiv_dagster/views.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from protiv_dagster.cli import output
from protiv_dagster.cli.common import CompanyId
from protiv_dagster.cli.output import literal, print_table, say, say_error, table


def print_propay_summary(company_id: str) -> None:
    """The company's data after a sync: rows synced, its line of `company_propay_summary`, and its
    five largest bonus pools."""
    import pandas as pd

    from protiv_dagster.resources.warehouse import Warehouse
    from protiv_dagster.views import COMPANY_PROPAY_SUMMARY, PROPAY_SAVINGS

    with Warehouse().reading() as read:
        summary = read.read_table(COMPANY_PROPAY_SUMMARY.name, where={"company_id": company_id})
        counts = read.query(
            "select (select count(*) from {schema}.attendance where company_id = ?) as attendance, "
            "(select count(*) from {schema}.workers where company_id = ?) as workers, "
            "(select count(*) from {schema}.jobs where company_id = ?) as jobs, "
            "(select count(*) from {schema}.rejected_rows where company_id = ?) as set_aside",
            [company_id] * 4,
        ).iloc[0]
        top = read.query(
            "select name, budget_hours, actual_hours, saved_amount, bonus_pool, pay_state "
            f"from {{schema}}.{PROPAY_SAVINGS.name} where company_id = ? order by bonus_pool desc, name limit 5",
            [company_id],
        )
    # The view has no row for a company without ProPays: its figures are zeros.
    totals = summary.iloc[0] if len(summary) else pd.Series(0, index=summary.columns)
    say(
        "\n",
        literal(company_id, "bold"),
        f": {int(counts.attendance)} attendance rows, {int(counts.workers)} workers, "
        f"{int(counts.jobs)} jobs and milestones, {int(counts.set_aside)} records set aside",
    )
    # Final (completed) and provisional (started) money are never added together (rules §9).
    output.console.print(
        f"[bold]{int(totals.propays)} ProPays[/bold] ({int(totals.started_propays)} started), "
        f"{float(totals.actual_hours):,.1f} worker-hours; bonus pools final [bold green]${float(totals.final_bonus_pool):,.2f}"
        f"[/bold green], provisional ${float(totals.provisional_bonus_pool):,.2f}; {int(totals.unpaid_propays)} pay nothing "
        "(see jobs_without_propay and no_bonus_reason)"
    )

    def number(value: Any, places: int) -> str:
        return "-" if value is None or pd.isna(value) else f"{float(value):,.{places}f}"

    top_table = table(title="Top jobs by bonus pool")
    for column in ("ProPay", "budget h", "actual h", "saved $", "pool $", "money"):
        top_table.add_column(column, overflow="fold", justify="left" if column in ("ProPay", "money") else "right")
    for row in top.itertuples():
        top_table.add_row(
            literal(row.name, cell=True),
            number(row.budget_hours, 1),
            number(row.actual_hours, 1),
            number(row.saved_amount, 2),
            number(row.bonus_pool, 2),
            literal(row.pay_state, cell=True),
        )
    output.console.print(top_table)


def report(
    company_id: CompanyId,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="Where to write the report; default reports/COMPANY_ID.html in the data folder.",
        ),
    ] = None,
) -> None:
    """Write COMPANY_ID's ProPay report: one HTML file with its summary and four charts (budget
    against actual hours per ProPay, bonus per worker, hours gained per week, efficiency over time),
    self-contained (open it offline, attach it to a mail). Read from the analysts' copy of a DuckDB
    warehouse, so it never waits for a sync. Exit 1 when the warehouse has no ProPays of the company."""
    from datetime import UTC, datetime

    from protiv_dagster.reports import read_company, report_file_name, write_report
    from protiv_dagster.resources.warehouse import Warehouse
    from protiv_dagster.settings import data_dir

    data = read_company(Warehouse().store, company_id)
    if not data.has_data:
        say(
            "No ProPays of company ",
            literal(company_id, "bold"),
            " in the warehouse: check the id (`protiv connections` lists the connected companies), or sync it "
            "first (`protiv sync COMPANY_ID`); a company's ProPays are computed by its first sync.",
            style="red",
        )
        raise typer.Exit(1)
    path = output_file or data_dir() / "reports" / report_file_name(company_id)
    written = write_report(data, path.expanduser().resolve(), datetime.now(UTC), _current_as_of(company_id))
    say("Wrote the ProPay report of ", literal(company_id, "bold"), ": ", literal(written))


def _current_as_of(company_id: str):
    """When the company's data was last current (the sync state); None when it cannot be read."""
    from protiv_dagster.sync.state import SyncStateStore

    try:
        return SyncStateStore().state(company_id).current_as_of
    except Exception:  # a courtesy line of the report: its absence must not stop the report
        return None


analyst_role = typer.Typer(
    help="Analyst roles on a PostgreSQL warehouse: each reads its own companies' rows only (row-level security).",
    no_args_is_help=True,
)


def _analyst_warehouse():
    from protiv_dagster.resources.warehouse import Warehouse

    return Warehouse()


@analyst_role.command("grant", cls=output.Command)
def analyst_role_grant(
    role: Annotated[
        str, typer.Argument(metavar="ROLE", help="An existing PostgreSQL role (plain, not superuser or table owner).")
    ],
    company_id: Annotated[str, typer.Argument(metavar="COMPANY_ID", help="The company whose rows the role may read.")],
) -> None:
    """Let ROLE read COMPANY_ID's rows of every warehouse table and view, and nothing else.

    The grant is bound to the role that has this name now (its OID): if the role is dropped and
    created again, the new role reads nothing until it is granted again.
    """
    from protiv_dagster.warehouse.session import WarehouseError

    try:
        granted = _analyst_warehouse().grant_company_analyst(role, company_id)
    except (WarehouseError, ValueError) as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    output.console.print(
        f"{role} (OID {granted.role_oid}) reads the rows of company {company_id!r} "
        "(row-level security on every table and view).",
        markup=False,
    )
    if granted.replaced:
        output.console.print(
            f"Replaced a stale grant of {company_id!r} under the name {role} ({'; '.join(granted.replaced)}): "
            f"it belonged to an earlier role of that name. By granting again you bound the company to the "
            f"role {role} that exists now (OID {granted.role_oid}); make sure it is the person meant to read it.",
            markup=False,
            style="yellow",
        )
    if granted.stale_companies:
        output.console.print(
            f"{role} also has stale grants, which give no rows, of {', '.join(map(repr, granted.stale_companies))} "
            f"from an earlier role of that name: remove them with `protiv analyst-role revoke {role} <company>`, "
            "or grant them again to bind them to the role that exists now.",
            markup=False,
            style="yellow",
        )


@analyst_role.command("revoke", cls=output.Command)
def analyst_role_revoke(
    role: str,
    company_id: Annotated[
        str | None, typer.Argument(metavar="[COMPANY_ID]", help="The company to take away; all when omitted.")
    ] = None,
) -> None:
    """Take a company (or all) away from ROLE; a role left with none loses its grants on the schema.

    Also removes stale grants left under the name ROLE by a role that was dropped (and maybe
    created again) outside this command, even when no role of that name exists any more.
    """
    from protiv_dagster.warehouse.session import WarehouseError

    try:
        removed = _analyst_warehouse().revoke_company_analyst(role, company_id)
    except (WarehouseError, ValueError) as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    stale = int(removed["state"].str.startswith("stale").sum())
    note = f", {stale} of them stale (an earlier role of that name)" if stale else ""
    what = "companies" if company_id is None else repr(company_id)
    output.console.print(f"Revoked {role}'s {what}: {len(removed)} grant(s) removed{note}.", markup=False)


@analyst_role.command("list", cls=output.Command)
def analyst_role_list() -> None:
    """Each analyst grant: role, company, the role's OID it is bound to, and whether it is stale."""
    import pandas as pd

    from protiv_dagster.warehouse.session import WarehouseError

    try:
        grants = _analyst_warehouse().company_analysts()
    except WarehouseError as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    rows = table("role", "company", "role OID", "state")
    for row in grants.itertuples():
        oid = "" if pd.isna(row.role_oid) else str(row.role_oid)
        rows.add_row(
            literal(row.role_name, cell=True),
            literal(row.company_id, cell=True),
            oid,
            literal(row.state, cell=True),
            style="yellow" if row.state.startswith("stale") else None,
        )
    print_table(rows, whole=(0, 1))
    stale = sorted(set(grants.loc[grants["state"].str.startswith("stale"), "role_name"]))
    if stale:
        output.console.print(
            f"Stale grants (of {', '.join(stale)}) give no rows: their role was dropped, or dropped and created "
            "again (a new role with a new OID), outside `protiv analyst-role revoke`. Clean up with "
            "`protiv analyst-role revoke <role>` (or `revoke <role> <company>`); to let a re-created role read "
            "a company, grant it again explicitly with `protiv analyst-role grant <role> <company>`.",
            markup=False,
            style="yellow",
        )
