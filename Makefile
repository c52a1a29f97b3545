# Targets named by the README. Every target is idempotent.
PYTHON ?= python3
DATA ?=
ARGS ?=

.PHONY: install demo test lint typecheck bench

install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# The main job: a backtest with its report (real data with DATA=dir, else synthetic).
demo: install
	@if [ -n "$(DATA)" ]; then \
		cryptoscalp backtest --data "$(DATA)" $(ARGS); \
	else \
		cryptoscalp backtest --synthetic --days 30 --seed 7 $(ARGS); \
	fi

test: install
	$(PYTHON) -m pytest -q
	$(PYTHON) -m ruff check core market execution trader tests bench
	$(PYTHON) -m mypy

lint:
	$(PYTHON) -m ruff check core market execution trader tests bench
	$(PYTHON) -m ruff format --check core market execution trader tests bench

typecheck:
	$(PYTHON) -m mypy

bench: install
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(PYTHON) bench/backtest.py
