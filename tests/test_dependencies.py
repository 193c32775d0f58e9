"""Every third-party package the code imports is declared by the package that imports it.

A package that Dagster or pandas happens to install (sqlalchemy, pydantic, numpy, grpcio) is still
declared when we import it: its version range is ours to state, and it may leave their dependencies.
The import names are read from the source (AST, top-level names of absolute imports) and mapped to
their distributions with importlib.metadata, so the check follows the installed packages' own
metadata rather than a list kept by hand.
"""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Imports that are optional by design, each guarded by `except ModuleNotFoundError` (or ImportError)
# where it is made, with the reason it is not declared.
OPTIONAL = {
    "protiv_dagster": {
        # The demo's emulators are a development package (make installs it; the image does not):
        # `protiv demo` imports them inside the command and says how to install them.
        "protiv_emulators",
    },
    "protiv_emulators": set(),
}

PACKAGES = {
    # package (import name) -> (its source folder, its pyproject.toml)
    "protiv_dagster": (ROOT / "protiv_dagster", ROOT / "pyproject.toml"),
    "protiv_emulators": (ROOT / "emulators" / "protiv_emulators", ROOT / "emulators" / "pyproject.toml"),
}


def _normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them (case, and runs of -_. as one -)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    names = {_normalized(project["name"])}
    for requirement in project.get("dependencies", []):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match, f"{pyproject.name}: cannot read the requirement {requirement!r}"
        names.add(_normalized(match.group(1)))
    return names


def _guarded(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside a `try` that catches ModuleNotFoundError or ImportError."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught |= {t.id for t in types if isinstance(t, ast.Name)}
        if caught & {"ModuleNotFoundError", "ImportError"}:
            for statement in node.body:
                guarded |= {
                    id(inner) for inner in ast.walk(statement) if isinstance(inner, ast.Import | ast.ImportFrom)
                }
    return guarded


def _imports(folder: Path) -> dict[str, list[tuple[str, bool]]]:
    """Top-level name of every absolute import -> [(file:line, guarded by an ImportError handler)]."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        guarded = _guarded(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for name in names:
                found.setdefault(name.split(".")[0], []).append((where, id(node) in guarded))
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_imported_package_is_declared(package: str) -> None:
    folder, pyproject = PACKAGES[package]
    declared = _declared(pyproject)
    distributions = packages_distributions()
    undeclared = []
    for name, places in sorted(_imports(folder).items()):
        if name in sys.stdlib_module_names or name == package:
            continue
        if name in OPTIONAL[package]:
            unguarded = [where for where, guarded in places if not guarded]
            assert not unguarded, f"{name} is optional for {package} but imported unguarded at {unguarded}"
            continue
        owners = distributions.get(name)
        assert owners, f"{name} (imported at {places[0][0]}) belongs to no installed distribution"
        if not {_normalized(owner) for owner in owners} & declared:
            undeclared.append(f"{name} ({' or '.join(owners)}), imported at {places[0][0]}")
    assert not undeclared, f"{pyproject.name} of {package} does not declare: " + "; ".join(undeclared)


def test_optional_imports_are_still_imported() -> None:
    """An optional import that is gone no longer needs its exemption."""
    for package, optional in OPTIONAL.items():
        imported = set(_imports(PACKAGES[package][0]))
        assert optional <= imported, f"{package}: drop {sorted(optional - imported)} from OPTIONAL"
