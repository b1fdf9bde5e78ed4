# Goldfish — `make help` lists the targets.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The whole suite runs against real PostgreSQL and Redis; these are the local defaults.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/goldfish
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

.DEFAULT_GOAL := help
.PHONY: help run test services test-sqlite lint typecheck format migrations-check browser bench clean worker beat bench-feedback \
	bench-smoke bench-lookup bench-lookup-smoke bench-import

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed ## Set up and run the service with demo data on embedded defaults (SQLite, in-process tasks)
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py seed_demo
	@echo ""
	@echo "Goldfish is starting on http://$(HOST):$(PORT)/  (agent page /agent/, admin /admin/, API docs /api/v1/docs/)"
	DEBUG=true $(PY) manage.py runserver $(HOST):$(PORT)

test: services $(VENV)/.installed browser ## Set up and run the whole test suite (PostgreSQL + Redis + Celery worker + Chromium)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(VENV)/bin/pytest $(PYTEST_ARGS)

services: ## Check PostgreSQL and Redis answer; as root on Debian, install and start them (GOLDFISH_NO_INSTALL=1: never)
	@DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PYTHON) scripts/services_check.py

test-sqlite: $(VENV)/.installed ## Run tests/unit and any unmarked test on the embedded defaults (SQLite, in-process tasks)
	env -u DATABASE_URL -u REDIS_URL $(VENV)/bin/pytest -m "not postgres and not worker and not browser" $(PYTEST_ARGS)

lint: $(VENV)/.installed typecheck ## ruff lint and format check, and the type check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed ## mypy with the Django and DRF stubs on crm/ and context/ ([tool.mypy] in pyproject.toml)
	$(VENV)/bin/mypy

format: $(VENV)/.installed ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: $(VENV)/.installed ## Fail when models and migrations disagree
	$(PY) manage.py makemigrations --check --dry-run

browser: ## Install Debian's Chromium for the browser tests when it is missing
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing chromium (Debian package) for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

worker: $(VENV)/.installed ## Run a Celery worker (needs REDIS_URL; DATABASE_URL for PostgreSQL)
	@test -n "$$REDIS_URL" || { echo "Set REDIS_URL: without it tasks run in-process and no worker is needed."; exit 1; }
	$(VENV)/bin/celery -A crm -q worker -l info

# --- issue 16: webhooks out are delivered from their own queue, so a slow receiver never holds up the workflows
.PHONY: webhook-worker
webhook-worker: $(VENV)/.installed ## Run the Celery worker that delivers webhooks (queue CRM_WEBHOOK_QUEUE, default "webhooks"; needs REDIS_URL)
	@test -n "$$REDIS_URL" || { echo "Set REDIS_URL: without it webhooks are sent in-process."; exit 1; }
	$(VENV)/bin/celery -A crm -q worker -Q $${CRM_WEBHOOK_QUEUE:-webhooks} --pool threads --concurrency 16 -l info
# --- end issue 16

beat: $(VENV)/.installed ## Run Celery beat, the one process that schedules the periodic tasks (escalation and the sweeps)
	@test -n "$$REDIS_URL" || { echo "Set REDIS_URL: beat sends periodic tasks through the broker."; exit 1; }
	mkdir -p var && $(VENV)/bin/celery -A crm beat -l info -s var/celerybeat-schedule

bench-feedback: $(VENV)/.installed ## Issue 14 targets: intake rate, 20/s latency, a 1,000 burst drained by 2 worker processes
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) bench/feedback.py --n 1000 --port $(PORT)

BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/goldfish_bench
BENCH_SMOKE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/goldfish_bench_smoke
# make bench: the bench's own PostgreSQL cluster (data kept in BENCH_PGDATA, loaded once),
# tuned vs default settings, the three servers, and the code at BENCH_BEFORE (issue 14's start).
BENCH_PGDATA ?= $(CURDIR)/var/bench-pg/data
BENCH_BEFORE ?= c741209
BENCH_FULL_ARGS = --own-postgres --pgdata $(BENCH_PGDATA) --pg-settings tuned default \
	--server granian gunicorn-gthread gunicorn-sync --before $(BENCH_BEFORE)

bench: $(VENV)/.installed ## Lookup at 1M customers on the bench's own PostgreSQL: tuned/default settings, 3 servers, before/after (~12 min; the first run loads the data, ~7 min more)
	$(PY) -m bench.lookup_run --customers 1000000 $(BENCH_FULL_ARGS) $(BENCH_ARGS)

bench-smoke: $(VENV)/.installed ## make bench at 2,000 customers, a few seconds per phase: proves it works, measures nothing
	$(PY) -m bench.lookup_run --customers 2000 --lookups 300 --rate 50 20 --open-seconds 2 --closed-seconds 2 \
		$(BENCH_FULL_ARGS) $(BENCH_ARGS)

bench-lookup: $(VENV)/.installed ## Screen-pop lookup at 1M customers / 10M interactions on BENCH_DATABASE_URL (loads the data when missing, ~10 min)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.lookup_run --customers 1000000 $(BENCH_ARGS)

bench-lookup-smoke: $(VENV)/.installed ## The lookup benchmark at 2,000 customers on BENCH_SMOKE_DATABASE_URL, a few seconds per phase
	DATABASE_URL=$(BENCH_SMOKE_DATABASE_URL) $(PY) -m bench.lookup_run --customers 2000 --lookups 300 \
		--rate 50 20 --open-seconds 2 --closed-seconds 2 $(BENCH_ARGS)

# --- issue 12: screenshots (scripts/screenshots.py; one function per page group) ---
.PHONY: screenshots
screenshots: $(VENV)/.installed browser screenshots-admin ## Take the pages' screenshots into docs/screens/: the agent desk (demo data, throwaway SQLite) and the supervisor desk (make screenshots-admin)
	$(PY) scripts/screenshots.py $(SCREENS)
# --- end issue 12 ---

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache

# --- issue 15: bulk import -------------------------------------------------------------------
# make bench-import runs on the bench's own cluster (tuned settings, data in var/bench-pg/import-data);
# BENCH_IMPORT_DATABASE_URL=postgres://... runs it on that database instead (its crm tables are emptied).
BENCH_IMPORT_DATABASE_URL ?=
bench-import: $(VENV)/.installed ## Bulk import: 1M customers and 10M interactions from generated files, on the bench's own PostgreSQL (~20 min)
	$(if $(BENCH_IMPORT_DATABASE_URL),DATABASE_URL=$(BENCH_IMPORT_DATABASE_URL),) $(PY) -m bench.import_run --customers 1000000 \
		$(if $(BENCH_IMPORT_DATABASE_URL),,--own-postgres) $(BENCH_ARGS)


# --- issue 13: the supervisor desk's screenshots (issue 12 adds the agent's; the lead joins the two) ---
.PHONY: screenshots-admin
screenshots-admin: services $(VENV)/.installed browser ## Screenshots of the supervisor desk into docs/screens/admin-*.png
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) scripts/screenshots_admin.py


# --- issue 11: fault experiments ---------------------------------------------------------------
.PHONY: bench-faults
bench-faults: $(VENV)/.installed ## Full-size fault runs (Redis crash during 1,000 posts; worker kill during 300 workflows) on DATABASE_URL
	$(PY) -m bench.faults outage
	$(PY) -m bench.faults kill


# Issue 11 (part B): fail fast under dependency faults, on its own PostgreSQL, Redis and gunicorn.
.PHONY: bench-fail-fast bench-import
bench-fail-fast: $(VENV)/.installed ## Redis frozen 15 s and PostgreSQL stopped 20 s under 20 lookups/s (docs/fail_fast.md)
	$(PY) -m bench.fail_fast $(BENCH_ARGS)

# --- issue 14: instructions per lookup (callgrind; steady whatever else the machine runs) ---
.PHONY: bench-instructions
bench-instructions: $(VENV)/.installed ## Instructions per in-process lookup for the working tree and REFS (git refs), on the smoke data set
	DATABASE_URL=$(BENCH_SMOKE_DATABASE_URL) $(PY) -m bench.lookup_instructions $(REFS)
