"""The vendor mapping page stays what the mapping modules' docstrings say."""

from pathlib import Path

from protiv_dagster.vendors.docs import PAGE, mapping_page
from protiv_dagster.vendors.registry import VENDORS

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_is_current():
    assert (ROOT / PAGE).read_text(encoding="utf-8") == mapping_page(), (
        "docs/vendor-mapping.md is stale: run `.venv/bin/python -m protiv_dagster.vendors.docs`"
    )


def test_every_vendor_documents_every_cleaned_table():
    page = mapping_page()
    for label in (spec.label for spec in VENDORS.values()):
        section = page.split(f"## {label}\n", 1)[1].split("\n## ", 1)[0]
        for column in (
            "workers.worker_id",
            "jobs.budget_hours",
            "attendance.work_date",
            "attendance.hours",
            "attendance.task_id",
            "jobs.created_date",
            "task_lines",
            "worker_wages",
            "job_assignments",
        ):
            assert column in section, f"{label} does not document {column}"
