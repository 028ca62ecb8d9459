# Warden: one entry point for everything. `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests use a real PostgreSQL app database; `make test TEST_DATABASE_URL=` falls back to SQLite.
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/warden
TEST_ENV := DATABASE_URL="$(TEST_DATABASE_URL)" \
	DJANGO_SECRET_KEY=warden-test-secret-key-not-for-production-0000 \
	WARDEN_ENCRYPTION_KEYS=d2FyZGVuLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE= \
	WARDEN_PSEUDONYM_KEY=warden-test-pseudonym-key-not-for-production \
	WARDEN_AUDIT_SIGNING_KEY=d2FyZGVuLXRlc3QtYXVkaXQtc2lnbmluZy1rZXktMzI=

# mypy's Django plugin imports the settings, which need a secret key (any will do to type-check).
LINT_ENV := DJANGO_SECRET_KEY=warden-typecheck-key-not-a-secret-00000000

.PHONY: install demo test test-fast lint fmt typecheck bench load faults editor clean services

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The demo runs on the public built-in secret key, and says so on the console and every page.
DEMO_ENV := WARDEN_DEMO=1
demo: $(STAMP)  ## the running product on embedded defaults, with demo data
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo

test: $(STAMP) services  ## every test against real services (PostgreSQL, MariaDB, Redis, a Celery worker, Chromium)
	$(TEST_ENV) $(PY) -m pytest

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -m "not browser and not worker and not slow" -x -q

lint: $(STAMP)  ## ruff (lint + format check), mypy, import layering
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LINT_ENV) $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The benchmark records runs durably in a PostgreSQL app database, as production does.
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/warden_bench_app
BENCH_ENV := DATABASE_URL="$(BENCH_DATABASE_URL)" \
	DJANGO_SECRET_KEY=warden-bench-secret-key-not-for-production-00 \
	WARDEN_ENCRYPTION_KEYS=d2FyZGVuLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE= \
	WARDEN_PSEUDONYM_KEY=warden-bench-pseudonym-key-not-for-production \
	WARDEN_AUDIT_SIGNING_KEY=d2FyZGVuLWJlbmNoLWF1ZGl0LXNpZ25pbmcta2V5LTM=
bench: $(STAMP)  ## engine and gateway speed, as JSON ratios
	-psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE warden_bench_app" 2>/dev/null
	$(BENCH_ENV) $(PY) manage.py migrate -v0
	$(BENCH_ENV) $(PY) manage.py benchmark

# The load test runs gunicorn and two Celery workers against an app database and Redis of its own.
LOAD_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/warden_load_app
LOAD_ENV := $(BENCH_ENV) DATABASE_URL="$(LOAD_DATABASE_URL)" REDIS_URL=redis://127.0.0.1:6379/11
LOAD_ARGS ?= --users 32 --duration 300
load: $(STAMP) services  ## Locust: 32 users on the web editor and the API for 5 minutes, then a count of runs and events
	-psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE warden_load_app" 2>/dev/null
	$(LOAD_ENV) $(PY) manage.py migrate -v0
	$(LOAD_ENV) $(PY) manage.py collectstatic --noinput -v0
	$(LOAD_ENV) $(PY) manage.py loadtest $(LOAD_ARGS)

faults: $(STAMP) services  ## the fault drills alone: kill -9 a worker, restart Redis, restart a target, drop app connections
	$(TEST_ENV) $(PY) -m pytest tests/test_faults.py -v

editor:  ## rebuild static/js/editor.bundle.js (needs Node.js; the bundle is committed)
	static/editor/build.sh

services:  ## start local PostgreSQL, MariaDB and Redis if down; install missing ones and Chromium (Debian)
	.ci/services.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
