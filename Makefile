# Both entry points build the virtual environment from nothing when it is missing or stale.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test ui emulator bench clean

$(BIN)/.installed: pyproject.toml emulators/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The emulators (emulators/, a package of their own) serve the demo and the tests; the production
	# image installs protiv_dagster alone.
	$(BIN)/pip install --quiet -e ./emulators -e '.[dev]'
	# The analysts' dbt project's manifest (Dagster reads it when the definitions load; a load
	# parses it again by itself when the project changed).
	$(BIN)/python -m protiv_dagster.analytics
	touch $@

## Set up and run the main job: emulator, demo company, initial sync through Dagster, ProPay summary.
demo: $(BIN)/.installed
	$(BIN)/protiv demo

## Set up, lint, check formatting and types, then run the test suite (the first failure stops it).
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# The browser tests drive Debian's chromium package (tests/browser.py), never a browser build of
	# their own: installed here when missing where we may (root, as in CI); elsewhere they skip.
	@if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
		else \
			echo "chromium is not installed: the browser tests will skip (with CI=true they fail); install it with: sudo apt-get install chromium"; \
		fi; \
	fi
	$(BIN)/pytest

## The Dagster UI on the demo's instance and data (run `make emulator` beside it to re-materialize).
ui: $(BIN)/.installed
	$(BIN)/protiv ui

## The QuickBooks Time emulator serving the demo company, for materializations from the UI.
emulator: $(BIN)/.installed
	$(BIN)/protiv emulator

## Benchmarks (bench/README.md, figures in bench/RESULTS.md): loading the code location, our initial sync alone, then against the
## dlt peer baseline (builds bench/.venv-dlt once), the refresh tick over 1,000 companies, a two-hour
## cycle over 150, cleaning throughput (~250,000 rows per vendor), a 1,000,000-row sync's memory, the
## integrations service: status calls from 200 clients over 1,000 companies, a force sync to the ProPays,
## and the analysts' dbt marts refreshed over 1,000 companies on DuckDB and PostgreSQL.
# Each benchmark's wall time is printed after it (issue 20: the whole under 15 minutes).
define timed
	@echo "$(BIN)/python $(1)"; started=$$(date +%s); $(BIN)/python $(1) && echo "[bench] $$(( $$(date +%s) - started )) s: $(1)"
endef

bench: $(BIN)/.installed
	$(call timed,bench/definitions_load.py)
	$(call timed,bench/initial_sync.py)
	$(call timed,bench/peer_baseline.py --repeat 3)
	$(call timed,bench/refresh_tick.py)
	$(call timed,bench/two_hour_cycle.py)
	$(call timed,bench/cleaning_throughput.py --days 230 --repeat 2)
	$(call timed,bench/large_sync.py)
	$(call timed,bench/service_status.py --duration 10)
	$(call timed,bench/service_force_sync.py)
	$(call timed,bench/marts_refresh.py --repeat 2)

clean:
	rm -rf $(VENV) data bench/.venv-dlt
