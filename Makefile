# Targets named by the README. Every target is idempotent.
PYTHON ?= python3
DATA ?=
ARGS ?=

.PHONY: install system-packages demo test lint typecheck bench

install: system-packages
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# SWI-Prolog for pyswip (the Prolog engine of the reasoning guard)
system-packages:
	@if ! command -v swipl >/dev/null 2>&1; then \
		echo "installing SWI-Prolog (swi-prolog-nox) for the Prolog rules"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq swi-prolog-nox >/dev/null) || { \
			echo "error: could not install swi-prolog-nox with apt-get; install SWI-Prolog (swipl) yourself and rerun" >&2; exit 1; }; \
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
	$(PYTHON) -m ruff check core market execution trader reasoning tests bench
	$(PYTHON) -m mypy

lint:
	$(PYTHON) -m ruff check core market execution trader reasoning tests bench
	$(PYTHON) -m ruff format --check core market execution trader reasoning tests bench

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
