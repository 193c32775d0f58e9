"""Only the admin path changes connections: nothing a Dagster UI user can launch writes credentials.

The code location (``protiv_dagster.definitions.defs``: its jobs, sensors, schedules, assets and
asset checks) reaches the registry only through ``ConnectionRegistryResource``, which reads
connections and stores rotated OAuth tokens but has no way to connect, disconnect or change
settings; no resource's config and no job's run config has a field that could carry a credential.
Connecting and disconnecting are ``protiv connect/disconnect`` with the encryption key (see
tests/cli/test_admin.py and tests/connections/test_registry.py for the key being required).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource
from protiv_dagster.definitions import defs

ROOT = Path(__file__).resolve().parents[1]
# Names a credential could hide behind in config (a URL could carry a password too).
CREDENTIAL_NAME = re.compile(
    r"pass|secret|token|credential|api_?key|client_id|username|auth|^key$|fernet", re.IGNORECASE
)
READ_AND_ROTATE = {"get", "list", "rotate_credentials", "sync_state"}
# What the admin API has that the code location must never reach.
ADMIN_ONLY = {"connect", "disconnect", "_store", "engine", "table"}


def config_field_names(config_type: Any, seen: set[str] | None = None) -> list[str]:
    """Every field name anywhere in a Dagster config type (shapes, selectors, arrays, maps, ...)."""
    seen = set() if seen is None else seen
    if config_type.key in seen:
        return []
    seen.add(config_type.key)
    names: list[str] = []
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        names.append(name)
        names += config_field_names(field.config_type, seen)
    for attribute in ("inner_type", "key_type", "scalar_type", "non_scalar_type"):
        inner = getattr(config_type, attribute, None)
        if inner is not None and hasattr(inner, "key"):
            names += config_field_names(inner, seen)
    return names


def test_the_registry_resource_can_read_and_rotate_tokens_only():
    base = set(dir(dg.ConfigurableResource))
    public = {name for name in dir(ConnectionRegistryResource) if not name.startswith("_")} - base
    assert public - {"url"} == READ_AND_ROTATE
    assert not ADMIN_ONLY & set(dir(ConnectionRegistryResource))
    assert set(ConnectionRegistryResource.model_fields) == {"url"}
    # The admin API has what the resource lacks: connect and disconnect.
    assert {"connect", "disconnect"} <= set(dir(ConnectionRegistry))


def test_every_use_of_the_registry_in_the_definitions_is_the_read_resource():
    repository = defs.get_repository_def()
    with dg.build_resources({"registry": defs.resources["registry"]}) as built:
        registry_resource = built.registry
    assert type(registry_resource) is ConnectionRegistryResource
    assert registry_resource.url == ""  # the location comes from the environment, never from config
    users = [
        *repository.assets_defs_by_key.values(),
        *repository.asset_checks_defs_by_key.values(),
        *repository.sensor_defs,
        *repository.schedule_defs,
        *repository.get_all_jobs(),
    ]
    keys_in_use = set()
    for definition in users:
        keys = getattr(definition, "required_resource_keys", set()) or set()
        keys_in_use |= set(keys)
    assert "registry" in keys_in_use
    for key in keys_in_use:
        assert not isinstance(defs.resources.get(key), ConnectionRegistry)


def code_location_modules() -> list[str]:
    """Modules loaded when Dagster loads the code location, from a fresh interpreter."""
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, protiv_dagster.definitions; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('protiv_dagster'))))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(listed.stdout.strip().splitlines()[-1])


def offending_uses(modules: list[str]) -> list[str]:
    """Each use of the admin registry API in ``modules``' source (their syntax trees)."""
    offenders = []
    for name in modules:
        if name in ("protiv_dagster.connections.registry",):
            continue
        module = sys.modules.get(name) or __import__(name, fromlist=["_"])
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            continue
        for node in ast.walk(ast.parse(source)):
            # ConnectionRegistry (not ...Resource) is the admin API; _registry() reaches it from the resource.
            if isinstance(node, ast.Name) and node.id in ("ConnectionRegistry", "EnvReference", "generate_secret_key"):
                offenders.append(f"{name}: {node.id}")
            if isinstance(node, ast.Attribute) and node.attr in (
                "ConnectionRegistry",
                "_registry",
                "disconnect",
                "_store",
            ):
                offenders.append(f"{name}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "protiv_dagster.connections.registry":
                imported = {alias.name for alias in node.names}
                if imported & {"ConnectionRegistry", "EnvReference", "generate_secret_key"}:
                    offenders.append(f"{name}: imports {sorted(imported)}")
    return offenders


def test_no_code_location_module_touches_the_admin_registry_api():
    modules = code_location_modules()
    assert not [name for name in modules if name == "protiv_dagster.cli" or name.startswith("protiv_dagster.cli.")]
    # Parsed in a fresh interpreter: in a pytest worker where hypothesis has moved the recursion
    # limit, CPython 3.11's ast.parse can fail with "AST constructor recursion depth mismatch".
    scanned = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from tests.test_admin_only import offending_uses; "
            "print(json.dumps(offending_uses(json.loads(sys.argv[1]))))",
            json.dumps(modules),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(scanned.stdout.strip().splitlines()[-1]) == []


def test_no_resource_or_run_config_can_carry_a_credential():
    for key, resource in defs.resources.items():
        definition = resource if isinstance(resource, dg.ResourceDefinition) else resource.get_resource_definition()
        schema = definition.config_schema.config_type
        names = config_field_names(schema)
        assert not [n for n in names if CREDENTIAL_NAME.search(n)], f"resource {key} config: {names}"
    jobs = [defs.resolve_job_def(job.name) for job in defs.get_repository_def().get_all_jobs()]
    assert {"sync_company_reference", "sync_company_week", "compute_propay"} <= {job.name for job in jobs}
    for job in jobs:
        names = config_field_names(job.run_config_schema.config_type)
        assert names, job.name
        suspicious = [n for n in names if CREDENTIAL_NAME.search(n)]
        assert suspicious == [], f"job {job.name} run config has {suspicious}"


@pytest.mark.parametrize("field", ["access_token", "password", "secret", "client_secret"])
def test_a_credential_in_run_config_is_rejected(field):
    job = defs.resolve_job_def("sync_company_reference")
    for resource in ("registry", "vendors", "warehouse"):
        config = {"resources": {resource: {"config": {field: "smuggled"}}}}
        with pytest.raises(dg.DagsterInvalidConfigError, match=f'unexpected config entry "{field}"'):
            dg.validate_run_config(job, config)


@pytest.mark.parametrize(
    "resource, field, value",
    [
        ("warehouse", "url", "postgresql://attacker.example/loot"),
        ("warehouse", "schema_name", "elsewhere"),
        ("registry", "url", "sqlite:///forged-registry.sqlite3"),
    ],
)
def test_the_launchpad_cannot_point_the_warehouse_or_registry_elsewhere(resource, field, value):
    # Where ProPay rows go and which connections are read is set in code and the environment only.
    for job_name in ("sync_company_reference", "sync_company_week", "compute_propay", "check_connection"):
        job = defs.resolve_job_def(job_name)
        config = {"resources": {resource: {"config": {field: value}}}}
        with pytest.raises(dg.DagsterInvalidConfigError, match=f'unexpected config entry "{field}"'):
            dg.validate_run_config(job, config)
    # The vendor clients' tuning stays a launchpad setting (a force sync may want more patience).
    tuned = {"resources": {"vendors": {"config": {"step_retries": 5}}}}
    assert dg.validate_run_config(defs.resolve_job_def("sync_company_week"), tuned)
