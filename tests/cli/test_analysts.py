"""The ProPay summary a sync prints, read from the analysts' view `company_propay_summary`."""

from __future__ import annotations

import io

from rich.console import Console

from protiv_dagster.assets.common import prepare_warehouse
from protiv_dagster.cli import output
from protiv_dagster.cli.analysts import print_propay_summary
from protiv_dagster.resources.warehouse import Warehouse


def test_a_company_without_propays_is_summarized_with_zeros(data_dir, monkeypatch):
    # The view has no row for such a company: the summary says 0, as the sums over no rows did.
    prepare_warehouse(Warehouse())
    shown = io.StringIO()
    # A console of the test's own: setting ``file`` on the shared one would leave it bound to this
    # test's stream after the undo (the property reads back sys.stdout of the moment, not "none").
    monkeypatch.setattr(output, "console", Console(file=shown, width=200))
    print_propay_summary("nobody")
    lines = shown.getvalue().splitlines()
    assert "nobody: 0 attendance rows, 0 workers, 0 jobs and milestones, 0 records set aside" in lines
    assert any(
        line.startswith(
            "0 ProPays (0 started), 0.0 worker-hours; bonus pools final $0.00, provisional $0.00; 0 pay nothing"
        )
        for line in lines
    ), lines
