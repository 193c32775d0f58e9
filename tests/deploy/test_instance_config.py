"""Every dagster.yaml under deploy/ loads through Dagster's own instance loader, and the pools it
limits are the pools the assets use.

Storage is not connected here (tests/test_instance_postgres.py and tests/test_daemon_e2e.py run
deploy/dagster.yaml against a real PostgreSQL); this checks, in well under a second, every key
against the schema of the installed Dagster and what the daemon's run queue will read from them.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import ConcurrencyConfig, PoolGranularity, dagster_instance_config
from dagster._core.launcher import RunLauncher
from dagster._serdes import ConfigurableClassData

from protiv_dagster.definitions import defs
from protiv_dagster.run_launcher import MonitoredRunLauncher

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTANCE_FILES = sorted(DEPLOY.rglob("dagster.yaml"))
PROVIDERS = {"quickbooks_time", "aspire", "busybusy"}


def load(folder: Path, filename: str = "dagster.yaml") -> dict:
    config, custom_class = dagster_instance_config(str(folder), filename)
    assert custom_class is None
    return config


def concurrency_of(config: dict) -> ConcurrencyConfig:
    """What the daemon's run queue and pools read: the run coordinator's own config merged with the
    `concurrency` block, as DagsterInstance.get_concurrency_config does."""
    coordinator = ConfigurableClassData(
        config["run_coordinator"]["module"],
        config["run_coordinator"]["class"],
        yaml.safe_dump(config["run_coordinator"]["config"]),
    ).rehydrate(as_type=dg.QueuedRunCoordinator)
    return ConcurrencyConfig.from_concurrency_settings(
        config.get("concurrency", {}), coordinator.get_run_queue_config()
    )


def asset_pools() -> set[str]:
    return {pool for node in defs.resolve_asset_graph().asset_nodes for pool in node.pools}


def test_the_instance_config_is_among_the_files_checked():
    assert DEPLOY / "dagster.yaml" in INSTANCE_FILES


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_instance_config_loads_with_dagsters_loader(path):
    config = load(path.parent, path.name)
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_run_queue_limits_each_vendor_and_pools_count_whole_runs():
    queue = concurrency_of(load(DEPLOY))
    assert queue.run_queue_config.max_concurrent_runs == 12
    limits = {limit["value"]: limit["limit"] for limit in queue.run_queue_config.tag_concurrency_limits}
    assert {limit["key"] for limit in queue.run_queue_config.tag_concurrency_limits} == {"protiv/provider"}
    assert limits == {"quickbooks_time": 4, "aspire": 2, "busybusy": 4}
    assert queue.pool_config.pool_granularity == PoolGranularity.RUN
    assert queue.pool_config.default_pool_limit == 2


def test_the_pools_set_up_are_the_pools_the_assets_use():
    """The limits the comment of deploy/dagster.yaml tells operators to set name exactly the pools
    of the code location; vendor_api is the sum of the vendors' run limits."""
    text = (DEPLOY / "dagster.yaml").read_text()
    documented = dict(re.findall(r"dagster instance concurrency set (\w+) (\d+)", text))
    assert set(documented) == asset_pools() == {"vendor_api", "propay_engine"}
    assert int(documented["vendor_api"]) == 4 + 2 + 4


def test_every_asset_that_calls_a_vendor_is_in_the_vendor_pool():
    pools = {node.key.to_user_string(): node.pools for node in defs.resolve_asset_graph().asset_nodes}
    for name in ("raw_timesheets", "workers", "jobs", "attendance"):
        assert pools[name] == {"vendor_api"}, name
    for name in ("propay_opportunities", "propay_worker_bonuses", "propay_overtime_weeks"):
        assert pools[name] == {"propay_engine"}, name


def test_a_run_whose_worker_died_is_failed_within_two_minutes():
    """The launcher of deploy/dagster.yaml lets run monitoring check run workers (Dagster's
    DefaultRunLauncher cannot), and the settings bound the time from a worker's death to its run
    failed: a poll finds it gone, or its code server unreachable for the grace period and then a
    poll; a worker dead before its run started waits for the start timeout and a poll."""
    config = load(DEPLOY)
    # Rehydrated as the daemon does, through the launcher's own config schema.
    launcher = ConfigurableClassData(
        config["run_launcher"]["module"],
        config["run_launcher"]["class"],
        yaml.safe_dump(config["run_launcher"]["config"]),
    ).rehydrate(as_type=RunLauncher)
    assert isinstance(launcher, MonitoredRunLauncher) and launcher.supports_check_run_worker_health
    monitoring = config["run_monitoring"]
    poll = monitoring["poll_interval_seconds"]
    assert poll + launcher.unreachable_grace_seconds + poll <= 120
    assert monitoring["start_timeout_seconds"] + poll <= 120
    # Resuming in a new worker is not supported by this launcher: run retries re-execute the run.
    assert monitoring["max_resume_run_attempts"] == 0 and not launcher.supports_resume_run
    assert config["run_retries"]["max_retries"] >= 1


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda c: c["run_monitoring"].update(poll_interval=30), "poll_interval"),
        (lambda c: c["concurrency"]["pools"].update(granularity="step"), "granularity"),
        (lambda c: c["concurrency"]["runs"]["tag_concurrency_limits"][0].pop("limit"), "limit"),
        # Limits in both places are refused: Dagster would not know which to apply.
        (lambda c: c["run_coordinator"]["config"].update(max_concurrent_runs=5), "max_concurrent_runs"),
    ],
    ids=["unknown key", "bad granularity", "limit missing", "limits twice"],
)
def test_a_broken_instance_config_is_refused(tmp_path, break_it, message):
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    break_it(config)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DagsterInvalidConfigError) as error:
        load(tmp_path)
    assert message in str(error.value) + "".join(str(e) for e in error.value.errors)
