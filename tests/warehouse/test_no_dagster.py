"""The warehouse library knows nothing of Dagster: only the resource (`protiv_dagster.resources.warehouse`)
wires it in, so the library can be used and tested without it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import protiv_dagster.warehouse

PACKAGE = Path(protiv_dagster.warehouse.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code (a function's own imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_every_module_of_the_package_is_checked() -> None:
    assert {path.stem for path in MODULES} >= {"__init__", "declarations", "store", "schema", "security"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_warehouse_module_imports_dagster(path: Path) -> None:
    dagster = sorted(
        name
        for name in imported_modules(path)
        if name.split(".")[0].startswith("dagster") or name.startswith("protiv_dagster.resources")
    )
    assert not dagster, f"{path.relative_to(PACKAGE)} imports {dagster}"
