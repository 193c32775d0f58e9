"""A code location of the sync pipeline alone (``build_defs(analysts_layer=False)``): the daemon tests
about runs, where the dbt marts, reports and analysts' copy would only be more run workers on the
machine (tests/sync_pipeline_workspace.yaml)."""

from protiv_dagster.definitions import build_defs

defs = build_defs(analysts_layer=False)
