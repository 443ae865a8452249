# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := wsgi

.PHONY: run test test-postgres test-browser install install-test chromium wrk bench-results bench-runtime bench-conversations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: install, migrate, create the demo data once, serve on http://$(HOST):$(PORT)
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask demo
	@echo
	@echo "  Open http://$(HOST):$(PORT)/ and log in with one of the demo logins above."
	@echo
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## Chromium for the browser tests: installed with apt when missing and we are root.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium with apt for the browser tests…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium not found and not root: browser tests will be skipped."; fi; \
	fi

## make test: install the test extras and run the whole suite on SQLite (browser tests included)
test: install-test chromium
	$(BIN)/pytest $(PYTEST_ARGS)

## the same suite on PostgreSQL (TEST_DATABASE_URL names a server database to create test databases from)
test-postgres: install-test chromium
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://root@127.0.0.1:5432/postgres} $(BIN)/pytest $(PYTEST_ARGS)

test-browser: install-test chromium
	REQUIRE_BROWSER=1 $(BIN)/pytest tests/browser $(PYTEST_ARGS)

## results at ~100,000 visitors / ~1M messages on SQLite and PostgreSQL (see benchmarks/README.md)
bench-results: install-test
	$(BIN)/python -m benchmarks.results_bench $(BENCH_ARGS)

## the Conversations tab's first page at 100,000 conversations on SQLite, against a bare COUNT + SELECT (goal < 200 ms)
bench-conversations: install-test
	$(BIN)/python -m benchmarks.conversations_bench $(BENCH_ARGS)

## wrk drives the runtime benchmark: installed with apt when missing and we are root.
wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing wrk with apt for the runtime benchmark…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk not found and not root: install wrk (e.g. apt-get install wrk) to run the benchmark."; exit 1; fi; \
	fi

## make bench-runtime: gunicorn (2 workers) on SQLite then PostgreSQL vs a bare Flask baseline, driven by wrk
bench-runtime: install-test wrk
	$(BIN)/python benchmarks/runtime_bench.py

clean:
	rm -rf $(VENV) instance test-output .pytest_cache
