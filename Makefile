# Targets named by the README. Every target is idempotent.
PYTHON ?= python3
DATA ?=
ARGS ?=

.PHONY: install system-packages demo test lint typecheck bench

install: system-packages
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# SWI-Prolog for pyswip (the Prolog engine of the reasoning guard); PostgreSQL 15's server
# binaries, which the tests start a throwaway server from (the proof log's PostgreSQL store)
system-packages:
	@MISSING=; \
	command -v swipl >/dev/null 2>&1 || MISSING="$$MISSING swi-prolog-nox"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || MISSING="$$MISSING postgresql-15"; \
	if [ -n "$$MISSING" ]; then \
		echo "installing system packages:$$MISSING"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$MISSING >/dev/null) || { \
			echo "error: could not install$$MISSING with apt-get; install them yourself (SWI-Prolog's swipl, PostgreSQL 15's server) and rerun" >&2; exit 1; }; \
	fi

# The main job: a backtest with its report (real data with DATA=dir, else synthetic).
demo: install
	@if [ -n "$(DATA)" ]; then \
		cryptoscalp backtest --data "$(DATA)" $(ARGS); \
	else \
		cryptoscalp backtest --synthetic --days 30 --seed 7 $(ARGS); \
	fi

test: install
	$(PYTHON) -m pytest -q
	$(PYTHON) -m ruff check core market execution trader reasoning api tests bench
	$(PYTHON) -m mypy

lint:
	$(PYTHON) -m ruff check core market execution trader reasoning api tests bench
	$(PYTHON) -m ruff format --check core market execution trader reasoning api tests bench

typecheck:
	$(PYTHON) -m mypy

bench: install
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(PYTHON) bench/backtest.py
	$(PYTHON) bench/datalog.py
	$(PYTHON) bench/limits.py
	$(PYTHON) bench/engines.py
	$(PYTHON) bench/guard.py
	$(PYTHON) bench/prooflog.py
	$(PYTHON) bench/api.py
	$(PYTHON) bench/signals.py
