# riskprof — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

setup: $(BIN)/.installed ## create .venv and install the pinned dependencies

browser: ## install Debian's chromium + chromium-driver for the HTML report test (needs root)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

postgres: ## install Debian's PostgreSQL 15 server binaries for the store tests (needs root)
	@test -x /usr/lib/postgresql/15/bin/initdb || \
	  { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

demo: setup ## generate the default data, train, register, report and score (the main job)
	$(BIN)/riskprof demo

lint: setup ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup browser postgres ## lint, type-check and run the whole test suite (what CI runs)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

test-fast: setup ## the quick tier (< 30 s): no model training, no servers, no browser; one worker per core
	$(BIN)/python -m pytest -q -p no:cacheprovider -p no:schemathesis -p no:anyio -m "not slow and not integration" -n 2; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

reliability: setup postgres ## the reliability figures: fuzzing, access matrix, short load run, crash/fault tests
	$(BIN)/python benchmarks/reliability.py

mlflow-ui: setup ## browse the local MLflow store on http://127.0.0.1:5000
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --workers 1 --host 127.0.0.1 --port 5000 \
	  --backend-store-uri sqlite:///$(abspath models/mlflow.db) --default-artifact-root $(abspath models/artifacts)

.PHONY: help setup browser postgres demo lint test test-fast mlflow-ui reliability
