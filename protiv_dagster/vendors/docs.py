"""The per-vendor mapping page (docs/vendor-mapping.md), built from the mapping modules' docstrings.

The docstrings are the one place each mapping is written down, next to the code that does it; this
page gathers them for readers who do not open the code. ``python -m protiv_dagster.vendors.docs``
rewrites it, and a test fails when the page and the docstrings disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from protiv_dagster.vendors.registry import VENDORS

PAGE = Path("docs") / "vendor-mapping.md"
INTRODUCTION = """\
# How each vendor's records become the shared tables

Every vendor's records are mapped into the same cleaned tables (`workers` with their wage histories
in `worker_wages`, `jobs` with milestones and budgets, their line items in `task_lines` and the
people assigned to them in `job_assignments`, `attendance`), validated by the same pandera models
(`protiv_dagster/schemas.py`). A vendor that keeps no such data (QuickBooks Time has no wage
history, line items or assignments) leaves those tables empty for its companies.
Records that cannot be mapped are set aside in `rejected_rows` with the reason, never dropped.
Every start and end is stored in UTC and every work date in the company's local time.

This page is generated from the docstrings of `protiv_dagster/vendors/*/mapping.py`; edit those, then run
`.venv/bin/python -m protiv_dagster.vendors.docs`.
"""


def mapping_page() -> str:
    sections = [INTRODUCTION]
    for spec in VENDORS.values():
        label, module = spec.label, spec.mapping_module()
        body = (module.__doc__ or "").strip()
        _, _, rest = body.partition("\n")  # the first line restates the module's purpose
        sections.append(f"## {label}\n\nModule `{module.__name__}`.\n\n{rest.strip()}\n")
    return "\n".join(sections)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PAGE
    target.write_text(mapping_page(), encoding="utf-8")
    print(f"wrote {target}")
