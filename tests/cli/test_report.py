"""`protiv report COMPANY_ID`: the company's report file from the warehouse a sync filled, its path
printed; a company the warehouse has no ProPays of gets a sentence and exit 1, not a traceback."""

from __future__ import annotations

from protiv_dagster.settings import DATA_DIR_VARIABLE, REGISTRY_URL_VARIABLE, WAREHOUSE_URL_VARIABLE
from tests.assets.conftest import (  # noqa: F401 (fixtures)
    COMPANY,
    instance_kind,
    pipeline,
    provider,
    warehouse_backend,
)
from tests.cli.commands import protiv


def test_protiv_report_writes_the_company_s_report(pipeline, tmp_path):
    pipeline.sync()
    env = {
        DATA_DIR_VARIABLE: str(tmp_path / "data"),
        WAREHOUSE_URL_VARIABLE: str(pipeline.warehouse.store.duckdb_file()),
        REGISTRY_URL_VARIABLE: f"sqlite:///{tmp_path / 'registry.sqlite3'}",
    }
    written = protiv("report", COMPANY, cwd=tmp_path, env_extra=env)
    assert written.returncode == 0, written.stderr
    default = tmp_path / "data" / "reports" / f"{COMPANY}.html"
    assert f"Wrote the ProPay report of {COMPANY}: {default}" in " ".join(written.stdout.split())
    assert "Final bonuses paid to workers" in default.read_text()

    chosen = protiv("report", COMPANY, "--output", "out/acme report.html", cwd=tmp_path, env_extra=env)
    assert chosen.returncode == 0, chosen.stderr
    assert (tmp_path / "out" / "acme report.html").stat().st_size > 50_000

    unknown = protiv("report", "nobody", cwd=tmp_path, env_extra=env)
    assert unknown.returncode == 1
    said = " ".join(unknown.stdout.split())
    assert "No ProPays of company nobody in the warehouse" in said and "protiv sync" in said
    assert "Traceback" not in unknown.stdout + unknown.stderr
    assert not (tmp_path / "data" / "reports" / "nobody.html").exists()
