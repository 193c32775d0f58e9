"""deploy/helm/values.yaml, checked without helm, the chart or a cluster.

helm is not installable here and the chart is not in a package registry, so ``helm template`` does
not run. Instead, the instance config the chart renders from these values (its configmap-instance
template and helpers/instance/*.tpl, transcribed below for the values this file sets) goes through
Dagster's own instance loader, and each configurable class's config (the K8sRunLauncher of
dagster-k8s, the queued run coordinator, the PostgreSQL storages) through that class's own config
schema, as Dagster does when a pod loads the instance. The command the chart gives the user code
deployment is parsed by the installed dagster CLI.

Not validated: the values against the chart's values.schema.json, the Kubernetes manifests, or
anything a cluster would refuse.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData
from dagster._utils import camelcase
from dagster_k8s import K8sRunLauncher

from tests.deploy.commands import parse_command

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
RELEASE_NAMESPACE = "protiv"
# Set by the chart on every pod that loads the instance.
CHART_ENV = {
    "DAGSTER_HOME": "/opt/dagster/home",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "protiv-dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "protiv-dagster-postgresql",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "protiv-dagster-pipeline-env",
    "DAGSTER_PG_PASSWORD": "from-the-secret",
}
# K8sRunLauncher values the chart copies into the launcher's config under a snake_case name.
K8S_LAUNCHER_KEYS = {
    "imagePullPolicy",
    "loadInclusterConfig",
    "kubeconfigFile",
    "jobNamespace",
    "envConfigMaps",
    "envSecrets",
    "envVars",
    "volumeMounts",
    "volumes",
    "labels",
    "failPodOnRunFailure",
    "resources",
    "schedulerName",
    "securityContext",
    "runK8sConfig",
}


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def k8s_run_launcher(values: dict) -> dict:
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    unknown = set(launcher) - K8S_LAUNCHER_KEYS
    assert not unknown, f"not transcribed from the chart's run launcher template: {unknown}"
    config = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace") or RELEASE_NAMESPACE,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": "protiv-dagster",
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}]
        + [item["name"] for item in launcher.get("envConfigMaps", []) if "name" in item],
    }
    if launcher.get("envSecrets"):
        config["env_secrets"] = [item["name"] for item in launcher["envSecrets"] if "name" in item]
    for key in (
        "kubeconfigFile",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "resources",
        "schedulerName",
        "securityContext",
    ):
        if launcher.get(key):
            config[snake(key)] = launcher[key]
    if "failPodOnRunFailure" in launcher:
        config["fail_pod_on_run_failure"] = launcher["failPodOnRunFailure"]
    if launcher.get("runK8sConfig"):
        config["run_k8s_config"] = {snake(key): value for key, value in launcher["runK8sConfig"].items()}
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def render_instance(values: dict) -> dict:
    """The dagster.yaml of the chart's instance ConfigMap, for the parts these values use."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["computeLogManager"]["type"] == "NoOpComputeLogManager"
    postgresql = values["postgresql"]
    postgres_db = {
        "username": postgresql["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": postgresql["postgresqlHost"],
        "db_name": postgresql["postgresqlDatabase"],
        "port": postgresql["service"]["port"],
        "params": postgresql.get("postgresqlParams") or {},
    }
    if postgresql.get("postgresqlScheme"):
        postgres_db["scheme"] = postgresql["postgresqlScheme"]

    def storage(module: str, name: str) -> dict:
        return {"module": module, "class": name, "config": {"postgres_db": postgres_db}}

    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    config = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": storage("dagster_postgres.schedule_storage", "PostgresScheduleStorage"),
        "run_launcher": k8s_run_launcher(values),
        "run_storage": storage("dagster_postgres.run_storage", "PostgresRunStorage"),
        "event_log_storage": storage("dagster_postgres.event_log", "PostgresEventLogStorage"),
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {snake(key): value for key, value in queued.items()},
        },
        "compute_logs": {"module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    monitoring = daemon["runMonitoring"]
    if monitoring["enabled"]:
        config["run_monitoring"] = {snake(key): value for key, value in monitoring.items()}
    if daemon["runRetries"]["enabled"]:
        config["run_retries"] = {snake(key): value for key, value in daemon["runRetries"].items()}
    additional = values.get("additionalInstanceConfig") or {}
    assert not set(additional) & set(config), "additionalInstanceConfig repeats a key the chart writes"
    return {**config, **additional}


def load_rendered(instance: dict, folder: Path) -> dict:
    (folder / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(folder))
    return config


def check_classes(config: dict) -> None:
    """Each configurable class's own config schema, as rehydrating it on a pod would check."""
    for key in (
        "run_launcher",
        "run_coordinator",
        "compute_logs",
        "scheduler",
        "run_storage",
        "event_log_storage",
        "schedule_storage",
    ):
        # The module name as Dagster resolves it (dagster.core -> dagster._core); importing it is
        # what a pod does, so dagster_k8s must be installed.
        data = ConfigurableClassData(config[key]["module"], config[key]["class"], "{}")
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(klass.config_type()), config[key].get("config") or {})
        if not result.success:
            raise DagsterInvalidConfigError(f"{key}: {config[key]['class']}", result.errors, config[key])


@pytest.fixture
def chart_env(monkeypatch):
    for name, value in CHART_ENV.items():
        monkeypatch.setenv(name, value)


def test_rendered_instance_loads_and_each_class_accepts_its_config(tmp_path, chart_env):
    config = load_rendered(render_instance(values()), tmp_path)
    check_classes(config)
    launcher = config["run_launcher"]["config"]
    assert launcher["resources"]["limits"]["memory"] == "2Gi" and launcher["fail_pod_on_run_failure"] is True
    # psycopg2, not psycopg 3 (see deploy/dagster.yaml).
    assert config["run_storage"]["config"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_kubernetes_has_the_same_limits_pools_and_retries_as_one_machine():
    deploy = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    additional = values()["additionalInstanceConfig"]
    assert additional["concurrency"] == deploy["concurrency"]
    assert additional["run_retries"] == deploy["run_retries"]


def test_kubernetes_fails_a_run_whose_pod_died_within_two_minutes():
    """The K8sRunLauncher checks each run's Job; a killed or out-of-memory pod fails its Job at once
    (no restarts), so one poll bounds the time to the run failed, as on one machine."""
    monitoring = values()["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] and monitoring["maxResumeRunAttempts"] == 0
    assert monitoring["pollIntervalSeconds"] <= 30
    assert monitoring["freeSlotsAfterRunEndSeconds"] + monitoring["pollIntervalSeconds"] <= 120
    assert K8sRunLauncher.supports_check_run_worker_health.fget(None)


@pytest.mark.parametrize(
    "break_it, field",
    [
        (
            lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(failPodOnRunFailure="yes"),
            "fail_pod_on_run_failure",
        ),
        (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(envVars="PROTIV_REFRESH_CRON"), "env_vars"),
        (lambda v: v["dagsterDaemon"]["runMonitoring"].update(pollIntervalSeconds="30s"), "poll_interval_seconds"),
        (
            lambda v: v["additionalInstanceConfig"]["concurrency"]["runs"].update(max_concurent_runs=12),
            "max_concurent_runs",
        ),
    ],
    ids=["bool as text", "env vars not a list", "interval with a unit", "misspelled concurrency key"],
)
def test_values_that_render_a_broken_instance_are_refused(tmp_path, chart_env, break_it, field):
    broken = values()
    break_it(broken)
    with pytest.raises(DagsterInvalidConfigError) as error:
        check_classes(load_rendered(render_instance(broken), tmp_path))
    assert field in str(error.value) + "".join(str(e) for e in error.value.errors)


def test_user_code_deployment_serves_the_code_location_with_its_secrets():
    user = values()["dagster-user-deployments"]
    assert user["enabled"]
    [deployment] = user["deployments"]
    # The chart's command for codeServerArgs (dagster-user-deployments/templates/deployment-user.yaml).
    argv = [
        "dagster",
        "code-server",
        "start",
        "-h",
        "0.0.0.0",
        "-p",
        str(deployment["port"]),
        *deployment["codeServerArgs"],
    ]
    path, params = parse_command(argv)
    assert path == ["dagster", "code-server", "start"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert params["module_name"] == project["tool"]["dagster"]["module_name"]
    # Runs inherit the deployment's Secrets; nothing else in the release gets the encryption key.
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["envSecrets"] == [{"name": "protiv-secrets"}]
    assert not values()["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]


def test_one_image_everywhere_and_no_secret_in_the_values():
    v = values()
    images = [v["dagsterWebserver"]["image"], v["dagsterDaemon"]["image"]]
    images += [d["image"] for d in v["dagster-user-deployments"]["deployments"]]
    assert len({(image["repository"], image["tag"]) for image in images}) == 1
    assert v["generatePostgresqlPasswordSecret"] is False and v["global"]["postgresqlSecretName"]
    assert v["postgresql"]["enabled"] is False and v["postgresql"]["postgresqlPassword"] == ""


def test_pods_use_the_images_dagster_home():
    """The chart sets DAGSTER_HOME on every pod; it must be the folder deploy/Dockerfile prepares
    for the unprivileged user, or Dagster cannot create its storage there."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"DAGSTER_HOME={values()['global']['dagsterHome']}" in dockerfile
    assert f"mkdir -p {values()['global']['dagsterHome']}/storage" in dockerfile


def test_snake_case_matches_dagsters_own_conversion():
    # The renderer's name mapping, checked against Dagster's inverse for every key it converts.
    for key in K8S_LAUNCHER_KEYS | {"pollIntervalSeconds", "freeSlotsAfterRunEndSeconds", "dequeueIntervalSeconds"}:
        assert camelcase(snake(key)).lower() == key.lower()
