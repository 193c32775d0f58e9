"""`protiv serve`'s Dagster instance: the deployment's storage, without compute-log capture."""

from __future__ import annotations

import dagster as dg
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager

from protiv_dagster.integrations.service import service_instance


@dg.op
def say_hello() -> str:
    print("hello from a step")  # noqa: T201 - what a capture would have taken
    return "hello"


@dg.job
def hello():
    say_hello()


def test_the_service_records_runs_where_the_ui_reads_them_and_captures_no_output(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    # A deployment that captures compute logs for its webserver and daemon (Dagster's default, spelled out).
    (home / "dagster.yaml").write_text(
        "compute_logs:\n"
        "  module: dagster._core.storage.local_compute_log_manager\n"
        "  class: LocalComputeLogManager\n"
        f"  config:\n    base_dir: {tmp_path / 'compute_logs'}\n"
        "telemetry:\n  enabled: false\n"
    )
    instance = service_instance(str(home))
    assert isinstance(instance.compute_log_manager, NoOpComputeLogManager)
    result = hello.execute_in_process(instance=instance)
    assert result.success
    # The webserver's instance, from the same folder, sees the run; nothing was captured to files.
    ui = dg.DagsterInstance.from_config(str(home))
    assert ui.get_run_by_id(result.run_id) is not None
    assert not (tmp_path / "compute_logs").exists() or not any((tmp_path / "compute_logs").rglob("*.out"))
