"""What the product is made of: library code without Dagster, and no emulator in the image.

- The ProPay engine, the vendors' shared HTTP base and the vendor spec load without Dagster (the
  warehouse library has its own check in tests/warehouse).
- dbt-core's Python modules are not loaded with the code location (dbt runs as its own process).
- The emulators and the company generator (``protiv_emulators``, a development package) are never
  imported when the code location loads, and deploy/Dockerfile copies and installs the product alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("protiv_dagster.propay", "protiv_dagster.vendors.http", "protiv_dagster.vendors.spec")


def loaded_modules(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing ``modules``."""
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(' '.join(sorted({{n.split('.')[0] for n in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stdout.split())


@pytest.mark.parametrize("module", LIBRARIES)
def test_library_code_loads_without_dagster(module):
    loaded = loaded_modules(module)
    assert "protiv_dagster" in loaded
    assert "dagster" not in loaded


def test_the_code_location_loads_no_emulator():
    loaded = loaded_modules("protiv_dagster.definitions", "protiv_dagster.cli")
    assert "dagster" in loaded
    assert "protiv_emulators" not in loaded and "graphql" not in loaded


def test_the_code_location_loads_without_dbt_core():
    """dbt builds run the dbt executable in a process of their own: dbt-core's 900 modules are not
    loaded by the webserver, the daemon, each run worker and each command (assets/dbt_library.py)."""
    loaded = loaded_modules("protiv_dagster.definitions", "protiv_dagster.cli")
    assert "dagster_dbt" in loaded
    assert "dbt" not in loaded and "dbt_common" not in loaded and "mashumaro" not in loaded


def test_the_code_location_names_the_dbt_it_drives():
    code = (
        "import importlib.metadata, json, protiv_dagster.definitions\n"
        "from dagster._core.libraries import DagsterLibraryRegistry\n"
        "print(json.dumps(DagsterLibraryRegistry.get()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    libraries = json.loads(result.stdout.strip().splitlines()[-1])
    assert libraries["dbt-core"] == importlib.metadata.version("dbt-core")
    assert "dbt-fusion" not in libraries


def test_the_image_holds_the_product_alone():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    sources = {source for line in copied for source in line if not source.startswith("--")}
    assert "protiv_dagster" in sources
    assert not any("emulators" in source for source in sources), sources
    assert not any("emulators" in line for line in dockerfile.splitlines() if "pip install" in line)
