"""``python -m protiv_dagster.analytics``: parse the dbt project's manifest when missing or stale."""

from protiv_dagster.analytics import ensure_manifest

print(ensure_manifest())
