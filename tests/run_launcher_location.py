"""A code location with one job that waits, served by a real `dagster api grpc` in
tests/test_run_launcher.py so that its run worker can be checked and killed mid-run."""

import time

import dagster as dg


@dg.op
def wait_to_be_killed() -> None:
    time.sleep(120)


@dg.job
def long_run():
    wait_to_be_killed()


defs = dg.Definitions(jobs=[long_run])
