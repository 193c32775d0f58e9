"""deploy/docker-compose.yaml, checked without a Docker engine or the compose plugin.

- The file against the Compose Specification's JSON schema, as vendored by check-jsonschema
  (``--builtin-schema vendor.compose-spec``); a misspelled key fails it.
- Every command a service runs, parsed by the click command of the console script it names (the
  installed dagster, dagster-webserver, dagster-daemon), with the image's paths mapped to the repo
  files deploy/Dockerfile copies there; the workspace the webserver and daemon load, through
  Dagster's workspace schema, pointing at the user code service and port.
- Interpolation: every variable has a placeholder in deploy/.env.example, and the secrets reach
  only the services that use them.
- The one-shot instance_setup script, run for real against a fresh PostgreSQL database.

``docker compose config`` (the compose engine's own loader) runs too where docker compose v2 is
installed; it is not on this project's machines, so there the test skips. Not done: building the
image or starting the stack.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster._core.workspace.config_schema import ensure_workspace_config

from tests.deploy.commands import parse_command

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def interpolated(text: str, env: dict[str, str]) -> str:
    """${NAME}, ${NAME:-default} and ${NAME:?error} replaced as compose does (no nesting)."""

    def value(match: re.Match) -> str:
        name, rest = match[1], match[0][2 + len(match[1]) : -1]
        if name in env:
            return env[name]
        assert not rest.startswith((":?", "?")), f"compose would stop: {name} is required"
        return rest[2:] if rest.startswith(":-") else rest[1:] if rest.startswith("-") else ""

    return VARIABLE.sub(value, text)


def example_env() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def image_files() -> dict[str, Path]:
    """Path in the image -> file of the repository, from the COPY lines of deploy/Dockerfile."""
    files = {}
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "/opt/" in line:
            source, target = line.split()[1:]
            files[target] = ROOT / source
    return files


def commands() -> dict[str, list[list[str]]]:
    """Each service's command lines as the container runs them (a `sh -c` script split on &&)."""
    result = {}
    for name, service in compose()["services"].items():
        command = service.get("command")
        if command is None:
            continue
        if service.get("entrypoint") == ["sh", "-c"]:
            (script,) = command
            result[name] = [shlex.split(part) for part in script.split("&&")]
        else:
            result[name] = [command]
    return result


def check_compose_schema(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_follows_the_compose_specification():
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["daemon"].update(depends_onn=c["services"]["daemon"].pop("depends_on")),
        lambda c: c["services"]["postgres"]["healthcheck"].update(interval=5),
        lambda c: c["services"]["user_code"].update(restart=["always"]),
    ],
    ids=["misspelled key", "interval not a duration string", "restart not a string"],
)
def test_a_broken_compose_file_fails_the_schema(tmp_path, break_it):
    config = compose()
    break_it(config)
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(yaml.safe_dump(config))
    result = check_compose_schema(broken)
    assert result.returncode == 1 and "Schema validation errors" in result.stdout, result.stdout + result.stderr


def test_the_stack_is_postgres_the_code_server_the_webserver_the_daemon_and_the_integrations_service():
    services = compose()["services"]
    assert set(services) == {"postgres", "instance_setup", "user_code", "webserver", "daemon", "integrations"}
    assert services["postgres"]["volumes"][0].startswith("postgres_data:/var/lib/postgresql/data")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"] == {"user_code": {"condition": "service_healthy"}}
    assert services["user_code"]["depends_on"] == {"instance_setup": {"condition": "service_completed_successfully"}}
    # Compute logs written by the runs (in user_code) are read by the webserver from the same volume.
    storage = "dagster_storage:/opt/dagster/home/storage"
    assert storage in services["user_code"]["volumes"] and storage in services["webserver"]["volumes"]
    # tini as PID 1 forwards `docker compose stop`'s SIGTERM and reaps the run processes.
    assert all(services[name]["init"] is True for name in ("user_code", "webserver", "daemon", "integrations"))
    # The UI has no login: never published beyond the host's loopback; the service neither (a proxy
    # with TLS publishes it).
    assert all(port.startswith("127.0.0.1:") for port in services["webserver"]["ports"])
    assert all(port.startswith("127.0.0.1:") for port in services["integrations"]["ports"])
    integrations = services["integrations"]
    assert integrations["depends_on"] == {"user_code": {"condition": "service_healthy"}}
    assert "/health" in str(integrations["healthcheck"]["test"])
    assert integrations["environment"]["PROTIV_SERVICE_JWKS"].startswith("/opt/dagster/service/")
    assert "./service:/opt/dagster/service:ro" in integrations["volumes"]


def test_every_service_command_is_a_real_command_of_the_installed_clis():
    files = {str(target): str(source) for target, source in image_files().items()}
    parsed = {}
    for service, lines in commands().items():
        for argv in lines:
            path, params = parse_command([files.get(arg, arg) for arg in argv])
            parsed.setdefault(service, []).append((" ".join(path), params))

    [(user_code, server)] = parsed["user_code"]
    # The plain gRPC server: it lists the runs it executes, which run monitoring asks it for
    # (protiv_dagster/run_launcher.py); the `dagster code-server start` proxy cannot answer that.
    assert user_code == "dagster api grpc"
    assert (server["module_name"], server["port"], server["host"]) == ("protiv_dagster.definitions", 4000, "0.0.0.0")
    [(webserver, ui)] = parsed["webserver"]
    assert webserver == "dagster-webserver" and ui["workspace"] == (str(DEPLOY / "workspace.yaml"),)
    [(daemon, run)] = parsed["daemon"]
    assert daemon == "dagster-daemon run" and run["workspace"] == (str(DEPLOY / "workspace.yaml"),)
    [(integrations, serve)] = parsed["integrations"]
    assert integrations == "protiv serve" and (serve["host"], serve["port"]) == ("0.0.0.0", 8000)
    setup = parsed["instance_setup"]
    assert [name for name, _ in setup] == ["dagster instance migrate"] + ["dagster instance concurrency set"] * 2
    assert {params["key"]: params["limit"] for _, params in setup[1:]} == {"vendor_api": 10, "propay_engine": 2}


def test_a_misspelled_command_does_not_parse():
    import click

    with pytest.raises(click.UsageError):
        parse_command(["dagster", "code-server", "start", "--module", "protiv_dagster.definitions", "--prot", "4000"])
    with pytest.raises(click.UsageError):
        parse_command(["dagster-daemon", "start"])


def test_the_workspace_loads_the_code_server_the_compose_file_runs():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    ensure_workspace_config(workspace, str(DEPLOY / "workspace.yaml"))
    [entry] = workspace["load_from"]
    server = compose()["services"]["user_code"]["command"]
    assert entry["grpc_server"]["host"] == "user_code"
    assert str(entry["grpc_server"]["port"]) == server[server.index("-p") + 1]
    assert entry["grpc_server"]["location_name"] == server[server.index("--location-name") + 1]


def test_the_image_copies_files_that_exist_and_the_instance_compose_uses():
    files = image_files()
    assert all(source.exists() for source in files.values()), files
    assert files["/opt/dagster/home/dagster.yaml"] == DEPLOY / "dagster.yaml"
    environment = compose()["x-dagster-instance"]
    assert environment["DAGSTER_HOME"] == "/opt/dagster/home"
    assert environment["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")


def test_every_variable_has_a_placeholder_and_secrets_reach_only_their_services():
    text = COMPOSE.read_text()
    example = example_env()
    optional = {
        line[2:].split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line.startswith("# PROTIV_")
    }
    assert set(VARIABLE.findall(text)) <= set(example) | optional
    assert all(value.startswith("replace-with") for value in example.values())
    # Compose resolves the file with the example's values and no required variable is missing.
    services = yaml.safe_load(interpolated(text, example))["services"]
    key = example["PROTIV_SECRET_KEY"]
    holders = {name for name, service in services.items() if key in str(service.get("environment", {}))}
    # The integrations service encrypts the credentials it verifies and runs force syncs: it holds the key too.
    assert holders == {"user_code", "integrations"}
    assert services["user_code"]["environment"]["PROTIV_SECRET_KEY"] == key
    assert services["webserver"]["environment"].keys() == {"DAGSTER_HOME", "DAGSTER_PG_URL"}
    assert services["daemon"]["environment"].keys() == {"DAGSTER_HOME", "DAGSTER_PG_URL"}
    assert services["user_code"]["environment"]["PROTIV_REFRESH_CRON"] == "0 */2 * * *"
    for name in ("PROTIV_REFRESH_CRON", "PROTIV_REFRESH_SPREAD"):  # the service's statuses say the same
        assert services["integrations"]["environment"][name] == services["user_code"]["environment"][name]
    assert services["user_code"]["environment"]["PROTIV_REFRESH_SPREAD"] == "1"
    assert services["webserver"]["image"] == "protiv-dagster:local"


def test_the_real_env_file_is_never_committed():
    result = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, timeout=30)
    assert result.returncode == 0, "deploy/.env must be git-ignored"


@pytest.mark.postgres
def test_instance_setup_commands_run_on_a_fresh_database_and_store_the_pool_limits(
    tmp_path, dagster_database, monkeypatch
):
    """The instance_setup service's commands, run as its container would (sh -c, this DAGSTER_HOME),
    against an empty PostgreSQL database: tables created and the limits stored where the daemon
    reads them."""
    import os
    import shutil

    import dagster as dg

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_database.replace("postgresql://", "postgresql+psycopg2://", 1))
    # The image's dagster is on PATH; here, the virtualenv's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    [script] = compose()["services"]["instance_setup"]["command"]
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limits = {pool.name: pool.limit for pool in instance.event_log_storage.get_pool_limits()}
    assert limits == {"vendor_api": 10, "propay_engine": 2}


def compose_cli() -> list[str] | None:
    """`docker compose` (the plugin) or a standalone `docker-compose`, if one of version 2 is installed."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) is None:
            continue
        version = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True, timeout=30)
        if version.returncode == 0 and version.stdout.strip().lstrip("v").startswith("2."):
            return argv
    return None


@pytest.mark.skipif(compose_cli() is None, reason="docker compose v2 is not installed")
def test_docker_compose_config_resolves_the_file_and_requires_the_secrets():
    cli = compose_cli()
    env = {name: value for name, value in os.environ.items() if name not in example_env()}

    def config(env_file: Path) -> subprocess.CompletedProcess:
        argv = [*cli, "-f", str(COMPOSE), "--env-file", str(env_file), "config", "--quiet"]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    resolved = config(DEPLOY / ".env.example")
    assert resolved.returncode == 0, resolved.stderr
    missing = config(Path(os.devnull))
    assert missing.returncode != 0 and "set POSTGRES_PASSWORD in deploy/.env" in missing.stderr
