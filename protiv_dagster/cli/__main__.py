"""`python -m protiv_dagster.cli`: the `protiv` command."""

from protiv_dagster.cli import main

main()
