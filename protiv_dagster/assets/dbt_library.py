"""dagster-dbt, imported without loading dbt-core's Python modules into the code location.

dbt itself never runs in our processes: ``DbtCliResource`` starts the ``dbt`` executable for every
build. Yet ``dagster_dbt/compat.py`` imports dbt-core at module level for a handful of enums and type
aliases, and that import (925 modules, most of it mashumaro compiling dbt's dataclasses) was 2.5-2.9 s
of CPU in every definitions load: the webserver's, the daemon's, every run worker's and every
``protiv`` command's, syncs that never touch the marts included (issue 20, target 2).

dagster-dbt supports running without dbt-core installed (for dbt Fusion): ``compat`` then defines
those enums itself with the same values. So dbt is hidden while dagster-dbt is imported, and only
then. What still needs dbt-core in-process imports it when it runs: a marts build initialises dbt's
adapter (``DbtCliResource._initialize_adapter``, dbt 1.x), after the hiding is over. Our
``InstalledDbt`` reads the dbt version from the installed package, so dagster-dbt still knows it
drives dbt-core 1.11, not Fusion.

If something in the process imported dbt before this module, nothing is hidden: the import costs
what it did before and behaves the same.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import sys
from collections.abc import Sequence
from types import ModuleType


class _DbtCoreHidden(importlib.abc.MetaPathFinder):
    """Answers every import of ``dbt`` or ``dbt.*`` as not installed."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None):
        if fullname == "dbt" or fullname.startswith("dbt."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden while dagster_dbt loads)", name=fullname)
        return None


def _import_dagster_dbt_hiding_dbt_core() -> None:
    if "dagster_dbt" in sys.modules or "dbt" in sys.modules:
        # Too late to hide (dagster-dbt would see half of dbt-core): imported as it is.
        import dagster_dbt  # noqa: F401

        return
    hidden = _DbtCoreHidden()
    sys.meta_path.insert(0, hidden)
    try:
        import dagster_dbt  # noqa: F401
    finally:
        sys.meta_path.remove(hidden)
    # dagster-dbt told Dagster's library list (the code location's versions in the UI) that it drives
    # dbt Fusion of an unknown version: it drives the dbt-core installed here.
    from dagster._core.libraries import DagsterLibraryRegistry

    DagsterLibraryRegistry._libraries.pop("dbt-fusion", None)
    DagsterLibraryRegistry.register("dbt-core", importlib.metadata.version("dbt-core"), is_dagster_package=False)


_import_dagster_dbt_hiding_dbt_core()

# Already imported above, with dbt-core hidden: these bind its names.
from dagster_dbt import (  # noqa: E402
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

__all__ = ["DagsterDbtTranslator", "DagsterDbtTranslatorSettings", "DbtCliResource", "dbt_assets"]
