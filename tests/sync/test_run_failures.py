"""The reason a failed run gives the CLI, the sync state and the UI: the error the asset raised,
without Dagster's wrapping or class path."""

from __future__ import annotations

import dagster as dg

from protiv_dagster.sync.runs import run_failure_message


def _failed_run(error: Exception) -> tuple[dg.DagsterInstance, str]:
    @dg.op
    def fails() -> None:
        raise error

    @dg.job
    def failing() -> None:
        fails()

    instance = dg.DagsterInstance.ephemeral()
    result = failing.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return instance, result.run_id


def test_a_dagster_failure_reads_as_its_description():
    instance, run_id = _failed_run(dg.Failure(description="acme is red: the vendor refused the token."))
    assert run_failure_message(instance, run_id) == "acme is red: the vendor refused the token."


def test_another_error_reads_as_its_root_cause():
    instance, run_id = _failed_run(RuntimeError("the warehouse is locked"))
    assert run_failure_message(instance, run_id).endswith("RuntimeError: the warehouse is locked")
