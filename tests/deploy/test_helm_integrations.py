"""deploy/helm/integrations.yaml (the integrations service beside the chart's release), checked
without kubectl, helm or a cluster.

- Each manifest through the Kubernetes client's own models, as dagster-k8s checks the Kubernetes
  config users give it (``k8s_model_from_dict``): a misspelled key or a value of the wrong type fails.
- The Deployment against its own Service (selectors, ports, probes), its command parsed by the
  installed ``protiv`` CLI, its image against deploy/helm/values.yaml's.
- Its environment against the docker-compose ``integrations`` service's, variable by variable (the
  deliberate differences listed below with their reason), against the Secrets the headers of
  deploy/helm/values.yaml and deploy/helm/integrations.yaml tell operators to create, and against the
  instance the chart renders (tests/deploy/test_helm_values.py's transcription): that instance loads
  with the pod's environment, and the syncs the service runs in its process never build its
  K8sRunLauncher (the pod has no service account token to build it with).

Not checked: the manifests against a real API server (admission, defaults), the chart's actual
rendering (names transcribed in tests/deploy/test_helm_values.py), the Ingress in front.
"""

from __future__ import annotations

import inspect
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.launcher import RunLauncher
from dagster._serdes import ConfigurableClass
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
from kubernetes.client import V1Deployment, V1Service

from protiv_dagster.integrations.service import IntegrationService
from tests.deploy.commands import parse_command
from tests.deploy.test_compose import COMPOSE, compose, example_env, interpolated
from tests.deploy.test_helm_values import CHART_ENV, VALUES, check_classes, load_rendered, render_instance, values

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "helm" / "integrations.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NAME = "protiv-integrations"
MODELS: dict[tuple[str, str], type] = {("apps/v1", "Deployment"): V1Deployment, ("v1", "Service"): V1Service}
# Variables docker-compose gives the service that Kubernetes deliberately does not, with the reason,
# and the variable that stands for each on Kubernetes.
DIFFERENCES = {
    "DAGSTER_PG_URL": (
        "DAGSTER_PG_PASSWORD",
        "the chart's instance (its dagster.yaml) names the host, user and database from the values and "
        "reads only the password from the environment",
    ),
}
SECRET_WORDS = ("SECRET", "PASSWORD", "KEY")


# -- reading the files ---------------------------------------------------------------------------------
def documents() -> list[dict]:
    return [document for document in yaml.safe_load_all(MANIFEST.read_text()) if document is not None]


def of_kind(kind: str) -> dict:
    [document] = [document for document in documents() if document["kind"] == kind]
    return document


def pod_spec(deployment: dict | None = None) -> dict:
    return (deployment or of_kind("Deployment"))["spec"]["template"]["spec"]


def container(deployment: dict | None = None) -> dict:
    [only] = pod_spec(deployment)["containers"]
    return only


def env_entries() -> dict[str, dict]:
    return {entry["name"]: entry for entry in container().get("env", [])}


def secret_ref(entry: dict) -> dict:
    """An env entry's secretKeyRef, empty if it has none."""
    return (entry.get("valueFrom") or {}).get("secretKeyRef") or {}


def mount(path_in_pod: str) -> tuple[dict, dict]:
    """(the volume mount at ``path_in_pod``, the pod volume it mounts)."""
    [found] = [item for item in container().get("volumeMounts", []) if item["mountPath"] == path_in_pod]
    [volume] = [item for item in pod_spec()["volumes"] if item["name"] == found["name"]]
    return found, volume


def port_number(port: int | str) -> int:
    """A probe's or the Service's target port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    [named] = [item["containerPort"] for item in container()["ports"] if item.get("name") == port]
    return named


def commented_commands(text: str) -> list[str]:
    """The shell commands of a file's comment lines, continuation lines (ending in \\) joined."""
    commands, current = [], ""
    for line in text.splitlines():
        if not line.startswith("#"):
            continue
        part = line.lstrip("#").strip()
        current = " ".join(filter(None, [current, part.removesuffix("\\").strip()]))
        if not part.endswith("\\"):
            commands.append(current)
            current = ""
    return commands


def documented_keys(text: str, kind: str, name: str) -> set[str]:
    """The keys ``kubectl create secret generic NAME --from-literal=KEY=...`` (or ``create configmap
    NAME --from-file=KEY=...``) in the comments of ``text`` puts in NAME."""
    prefix = f"kubectl create {'secret generic' if kind == 'Secret' else 'configmap'} {name} "
    [command] = [command for command in commented_commands(text) if command.startswith(prefix)]
    return {argument.split("=")[1] for argument in shlex.split(command) if argument.startswith("--from-")}


def image_env() -> dict[str, str]:
    """The variables deploy/Dockerfile sets with ENV (every process of the image has them)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for argument in shlex.split(line[4:]):
                name, _, value = argument.partition("=")
                env[name] = value
    return env


def kubernetes_env() -> dict[str, str]:
    """What the container's environment holds, by name: a literal value, ``secret:NAME/KEY`` for a
    Secret's key, or ``image`` for the image's own ENV that nothing here overrides."""
    provided = {name: "image" for name in image_env()}
    for source in container().get("envFrom", []):
        secret = source["secretRef"]["name"]
        for key in documented_keys(VALUES.read_text(), "Secret", secret):
            provided[key] = f"secret:{secret}/{key}"
    for name, entry in env_entries().items():
        ref = secret_ref(entry)
        provided[name] = f"secret:{ref['name']}/{ref['key']}" if ref else entry["value"]
    return provided


def compose_env() -> dict[str, str]:
    """The docker-compose integrations service's environment, resolved with deploy/.env.example."""
    return yaml.safe_load(interpolated(COMPOSE.read_text(), example_env()))["services"]["integrations"]["environment"]


def model_of(document: dict) -> Any:
    """The Kubernetes client's model of ``document``; raises on an unknown key or a wrong type."""
    model = MODELS[(document["apiVersion"], document["kind"])]
    return k8s_model_from_dict(model, k8s_snake_case_dict(model, document))


# -- the manifests themselves ------------------------------------------------------------------------
def test_the_file_is_a_deployment_and_a_service_the_kubernetes_models_accept():
    found = documents()
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in found] == [
        ("apps/v1", "Deployment", NAME),
        ("v1", "Service", NAME),
    ]
    for document in found:
        model = model_of(document)
        assert model.metadata.name == NAME and model.kind == document["kind"]


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: container(d).update(readinessProbes=container(d).pop("readinessProbe")), "readinessProbes"),
        (lambda d: container(d)["ports"][0].update(containerPort="eight thousand"), "eight thousand"),
        (lambda d: container(d).update(env={"PROTIV_SERVICE_ISSUER": "protiv-app"}), "must be a dict"),
        (lambda d: d["spec"].update(replicas="one"), "'one'"),
    ],
    ids=["misspelled key", "port not a number", "env not a list", "replicas not a number"],
)
def test_a_broken_deployment_is_refused_by_the_models(break_it, message):
    deployment = of_kind("Deployment")
    model_of(deployment)
    break_it(deployment)
    with pytest.raises(Exception) as error:  # noqa: PT011 - dagster-k8s raises bare Exception and ValueError
        model_of(deployment)
    assert message in str(error.value)


def test_the_service_selects_the_deployments_pods_on_the_port_its_probes_check():
    deployment, service = of_kind("Deployment"), of_kind("Service")
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()
    assert service["spec"]["selector"] == selector
    assert service["spec"]["type"] == "ClusterIP"
    [port] = service["spec"]["ports"]
    [container_port] = container()["ports"]
    assert port["port"] == 80 and port_number(port["targetPort"]) == container_port["containerPort"] == 8000
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container()[probe]["httpGet"]
        assert check["path"] == "/health" and port_number(check["port"]) == container_port["containerPort"], probe
    # A failing liveness check restarts the service: never sooner than docker-compose's (4 x 15 s).
    liveness = container()["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_the_command_is_protiv_serve_on_the_container_port_as_in_compose():
    argv = [*container()["command"], *container().get("args", [])]
    path, params = parse_command(argv)
    assert path == ["protiv", "serve"]
    [container_port] = container()["ports"]
    assert (params["host"], params["port"]) == ("0.0.0.0", container_port["containerPort"])
    assert argv == compose()["services"]["integrations"]["command"]


def test_the_image_is_the_one_of_every_image_of_the_values():
    v = values()
    images = [v["dagsterWebserver"]["image"], v["dagsterDaemon"]["image"]]
    images += [d["image"] for d in v["dagster-user-deployments"]["deployments"]]
    assert all(container()["image"] == f"{image['repository']}:{image['tag']}" for image in images)
    assert {image["pullPolicy"] for image in images} == {container()["imagePullPolicy"]}


# -- the environment ----------------------------------------------------------------------------------
def test_every_variable_compose_gives_the_service_is_provided_on_kubernetes():
    composed, provided = compose_env(), kubernetes_env()
    missing = set(composed) - set(provided) - set(DIFFERENCES)
    assert not missing, f"docker-compose gives the service {missing}; Kubernetes does not"
    # The differences are real, and what stands for each is there.
    assert set(DIFFERENCES) <= set(composed) and not set(DIFFERENCES) & set(provided)
    assert {stand_in for stand_in, _ in DIFFERENCES.values()} <= set(provided)
    # Nothing more than compose gives, but the stand-ins and the image's own variables.
    extra = set(provided) - set(composed) - {stand_in for stand_in, _ in DIFFERENCES.values()}
    assert extra <= {name for name, source in provided.items() if source == "image"}, extra
    # Where both write a value (not a Secret's), it is the same.
    for name, value in provided.items():
        literal = image_env()[name] if value == "image" else value
        if name in composed and not value.startswith("secret:"):
            assert literal == composed[name], name


def test_the_secrets_are_the_ones_the_headers_tell_operators_to_create():
    entries = env_entries()
    header = MANIFEST.read_text()
    # The service's own Secret: every key referenced is in the header's command and the reverse.
    own = {secret_ref(e)["key"] for e in entries.values() if secret_ref(e).get("name") == NAME}
    assert own == documented_keys(header, "Secret", NAME)
    # Its keys are the variables' own names, and each is optional: an unused feature stays unset,
    # as docker-compose's empty defaults leave it.
    for name, entry in entries.items():
        ref = secret_ref(entry)
        if ref.get("name") == NAME:
            assert ref["key"] == name and ref["optional"] is True, name
    # The release's Secret, whole: the keys of the values' header.
    [source] = container()["envFrom"]
    assert source == {"secretRef": {"name": "protiv-secrets"}}
    assert documented_keys(VALUES.read_text(), "Secret", "protiv-secrets") == {
        "PROTIV_SECRET_KEY",
        "PROTIV_WAREHOUSE_URL",
        "PROTIV_REGISTRY_URL",
    }


def test_no_secret_value_is_written_in_the_file():
    for name, entry in env_entries().items():
        if any(word in name for word in SECRET_WORDS):
            assert "value" not in entry and secret_ref(entry), f"{name} must come from a Secret"
    # Nor anything a Secret holds: each literal value is a path, a name, a cron or a number.
    literals = [entry["value"] for entry in env_entries().values() if "value" in entry]
    assert all(re.fullmatch(r"[\w./* -]+", value) for value in literals), literals


def test_dagster_pg_password_comes_from_the_charts_postgresql_secret():
    ref = secret_ref(env_entries()["DAGSTER_PG_PASSWORD"])
    assert ref["name"] == values()["global"]["postgresqlSecretName"] == CHART_ENV["DAGSTER_K8S_PG_PASSWORD_SECRET"]
    assert ref["key"] in documented_keys(VALUES.read_text(), "Secret", ref["name"]) == {"postgresql-password"}
    assert not ref.get("optional"), "without the password the service cannot reach its instance"


def test_the_refresh_cron_resources_and_user_are_the_releases():
    v = values()
    [user_code] = v["dagster-user-deployments"]["deployments"]
    env = {item["name"]: item["value"] for item in user_code["env"]}
    for name in ("PROTIV_REFRESH_CRON", "PROTIV_REFRESH_SPREAD"):
        assert env_entries()[name]["value"] == env[name]
    # A sync in the service's process peaks as a run pod does.
    assert container()["resources"] == v["runLauncher"]["config"]["k8sRunLauncher"]["resources"]
    assert container()["resources"]["limits"]["memory"] and container()["resources"]["requests"]
    # deploy/Dockerfile's unprivileged user, no way back to root, no Kubernetes API token.
    [uid] = re.findall(r"^USER (\d+)$", DOCKERFILE.read_text(), re.MULTILINE)
    spec = pod_spec()
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == int(uid)
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False
    assert container()["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["automountServiceAccountToken"] is False


# -- one process, its files --------------------------------------------------------------------------
def test_one_replica_replaced_never_beside_another():
    deployment = of_kind("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # SIGTERM lets a sync under way end for up to IntegrationService.stop's timeout: the pod's grace
    # period must outlast it, or the sync is killed just then.
    timeout = inspect.signature(IntegrationService.stop).parameters["timeout"].default
    assert pod_spec()["terminationGracePeriodSeconds"] > timeout


def test_the_jwks_configmap_is_mounted_in_the_folder_protiv_service_jwks_names():
    jwks = PurePosixPath(env_entries()["PROTIV_SERVICE_JWKS"]["value"])
    found, volume = mount(str(jwks.parent))
    # A folder mount, not subPath: a new JWKS reaches the running pod, which re-reads the file.
    assert found.get("readOnly") is True and "subPath" not in found
    assert volume["configMap"]["name"] == "protiv-service-jwks"
    [item] = volume["configMap"]["items"]
    assert item["path"] == jwks.name
    assert documented_keys(MANIFEST.read_text(), "ConfigMap", "protiv-service-jwks") == {item["key"]}


def test_the_charts_instance_is_mounted_in_dagster_home():
    home = values()["global"]["dagsterHome"]
    assert env_entries()["DAGSTER_HOME"]["value"] == home == CHART_ENV["DAGSTER_HOME"]
    # As the chart mounts it on its pods: dagster.yaml alone, over the image's own.
    found, volume = mount(f"{home}/dagster.yaml")
    assert found["subPath"] == "dagster.yaml"
    assert volume["configMap"]["name"] == CHART_ENV["DAGSTER_K8S_INSTANCE_CONFIG_MAP"]
    # The chart's name for a release `protiv`, as the header says.
    assert "`<release>-dagster-instance`" in MANIFEST.read_text()


# -- the instance, as the service uses it ------------------------------------------------------------
BUILT: list[str] = []


class RefusingLauncher(RunLauncher, ConfigurableClass):
    """Stands for the chart's K8sRunLauncher, which the pod could not build (no service account token
    mounted): records that it was built, and refuses."""

    def __init__(self, inst_data: Any = None):
        BUILT.append("run launcher")
        raise RuntimeError("the service built the instance's run launcher")

    @classmethod
    def config_type(cls) -> dict:
        return {}

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> RefusingLauncher:
        return cls(inst_data)

    @property
    def inst_data(self) -> Any:
        return None

    def launch_run(self, context: Any) -> None:
        raise NotImplementedError

    def terminate(self, run_id: str) -> bool:
        raise NotImplementedError


REFUSING_LAUNCHER = {"module": __name__, "class": RefusingLauncher.__name__}


def test_the_charts_instance_loads_with_the_pods_environment(tmp_path, monkeypatch):
    """The instance ConfigMap's dagster.yaml, with nothing but the variables this pod gets: every
    class the service builds accepts its config (the storages read DAGSTER_PG_PASSWORD); the run
    launcher's chart variables (DAGSTER_K8S_*) are not given, as the service never builds it."""
    for name in CHART_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, source in kubernetes_env().items():
        if name.startswith("DAGSTER_"):
            monkeypatch.setenv(name, image_env()[name] if source == "image" else source)
    config = load_rendered(render_instance(values()), tmp_path)
    assert config["run_storage"]["config"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    check_classes({**config, "run_launcher": REFUSING_LAUNCHER})

    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    with pytest.raises(DagsterInvalidConfigError) as error:
        check_classes({**config, "run_launcher": REFUSING_LAUNCHER})
    assert "DAGSTER_PG_PASSWORD" in str(error.value) + "".join(str(e) for e in error.value.errors)


def test_syncs_in_the_services_process_never_build_the_instances_run_launcher(tmp_path, monkeypatch):
    """Why the pod mounts no service account token: a force sync executes its jobs in process
    (protiv_dagster/sync/company.py) and reads runs and events, none of which builds the run launcher.
    The chart's instance, with SQLite storages in place of PostgreSQL and a launcher that refuses."""
    instance = {key: value for key, value in render_instance(values()).items() if not key.endswith("storage")}
    instance["run_launcher"] = REFUSING_LAUNCHER
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    companies = dg.DynamicPartitionsDefinition(name="companies")

    @dg.asset(partitions_def=companies)
    def synced(context) -> None:
        if context.partition_key == "broken":
            raise RuntimeError("the vendor refused")

    defs = dg.Definitions(assets=[synced], jobs=[dg.define_asset_job("sync", [synced])])
    BUILT.clear()
    with dg.DagsterInstance.get() as dagster:
        dagster.add_dynamic_partitions("companies", ["acme", "broken"])
        job = defs.resolve_job_def("sync")
        results = [
            job.execute_in_process(
                instance=dagster, partition_key=key, raise_on_error=False, tags={"protiv/company": key}
            )
            for key in ("acme", "broken")
        ]
        assert [result.success for result in results] == [True, False]
        # Run retries are on in the chart's instance: the failed run is judged for a retry.
        assert dagster.run_retries_enabled
        records = dagster.get_run_records(dg.RunsFilter(tags={"protiv/company": "broken"}))
        assert records[0].dagster_run.tags.get("dagster/will_retry") is not None
        assert dagster.all_logs(results[0].run_id)
        dagster.report_runless_asset_event(dg.AssetMaterialization("analysts_copy"))
    assert not BUILT
