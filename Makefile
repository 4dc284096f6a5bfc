# The two commands a newcomer needs: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USER ?= admin
DEMO_PASSWORD ?= admin-demo-password
DEVDB := $(PY) -m devdb

.PHONY: install run demo worker test test-fast lint check bench bench-full clean fuzz e2e db-start db-stop

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The development settings every `manage.py` command, the server and the tests read (python-dotenv, in
# issue_tracker/settings.py): DJANGO_DEBUG=1 and a generated secret key, written once, git-ignored.
.env:
	@umask 077; { \
	echo '# Development settings of this checkout, written by `make install`; git-ignored, never for production.'; \
	echo '# Read by issue_tracker/settings.py (manage.py, the server, the tests): a variable set in the environment'; \
	echo '# wins, and with DJANGO_DEBUG=0 in the environment none of this file applies. Delete it to start over.'; \
	echo 'DJANGO_DEBUG=1'; \
	echo "DJANGO_SECRET_KEY=dev-$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	} > $@.tmp && mv $@.tmp $@ && echo "wrote $@ (development settings: DJANGO_DEBUG=1, a generated secret key)"

install: $(STAMP) .env

# Shell lines that point DATABASE_URL at the embedded PostgreSQL (devdb/: data in .pgdata/, port EMBEDDED_PG_PORT,
# default 54329) when it is unset, starting it, and stopping it again on exit unless `make db-start` had started it.
define use_devdb
export DJANGO_DEBUG=$${DJANGO_DEBUG:-1}; \
if [ -z "$$DATABASE_URL" ]; then \
	if ! $(DEVDB) status >/dev/null 2>&1; then \
		trap '$(DEVDB) stop' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; \
	fi; \
	devdb_env=$$($(DEVDB) start); eval "$$devdb_env"; echo "$$devdb_env"; \
fi
endef

# Serve the API at http://$(HOST):$(PORT)/api/ with a demo admin, on DATABASE_URL if set, else on the embedded
# PostgreSQL, which it starts and, unless `make db-start` had started it, stops when the server stops (Ctrl-C).
run: install
	@set -e; $(use_devdb); \
	echo "$(PY) manage.py migrate --noinput"; \
	$(PY) manage.py migrate --noinput; \
	echo "Demo admin: $(DEMO_USER) / $(DEMO_PASSWORD) (staff: a maintainer in every project). Its API token is on the next line:"; \
	$(PY) manage.py create_api_user $(DEMO_USER) --role maintainer --staff --password $(DEMO_PASSWORD) | tail -n 1; \
	echo "Try: curl -H 'Authorization: Token <token>' http://$(HOST):$(PORT)/api/issues"; \
	echo "$(PY) manage.py runserver $(HOST):$(PORT)"; \
	$(PY) manage.py runserver $(HOST):$(PORT)

# Add demo data (1,000 issues, 20 users, 5 projects; e.g. DEMO_ARGS="--issues 5000 --reset") to the database `make run` serves.
demo: install
	@set -e; $(use_devdb); \
	$(PY) manage.py migrate --noinput; \
	$(PY) manage.py seed_demo $(DEMO_ARGS)

# A Celery worker for the broker of CELERY_BROKER_URL (required, e.g. redis://127.0.0.1:6379/0; the web processes
# need the same value), with beat (-B) for the periodic webhook sweep: run beat once per deployment, so further
# workers run `.venv/bin/celery -A issue_tracker worker` without -B (docs/deployment.md, "Background work").
# WORKER_ARGS adds options, e.g. WORKER_ARGS="--pool threads --concurrency 16" for many webhook deliveries.
WORKER_ARGS ?=
worker: install
	@if [ -z "$$CELERY_BROKER_URL" ]; then \
		echo "CELERY_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0); without it tasks run in the web process." >&2; \
		exit 2; \
	fi
	@set -e; $(use_devdb); \
	$(VENV)/bin/celery -A issue_tracker worker -B --schedule $(VENV)/celerybeat-schedule --loglevel INFO $(WORKER_ARGS)

# The whole suite (see pytest_on_postgres below: DATABASE_URL, else a throwaway embedded PostgreSQL).
# pytest with the given arguments on PostgreSQL: DATABASE_URL if set, else a throwaway
# embedded PostgreSQL (stopped and removed after the run; pytest's exit code is kept).
define pytest_on_postgres
@if [ -n "$$DATABASE_URL" ]; then \
	exec $(PY) -m pytest $(1); \
else \
	exec $(DEVDB) throwaway -- $(PY) -m pytest $(1); \
fi
endef

test: install
	$(call pytest_on_postgres,$(PYTEST_ARGS))

# Everything but the slow tests (fuzzing, stateful, races, browser, real servers), in under a minute.
test-fast: install
	$(call pytest_on_postgres,-m "not slow" -q $(PYTEST_ARGS))

# Keep the embedded PostgreSQL running (data in .pgdata/, port EMBEDDED_PG_PORT, default 54329) for other
# commands; it prints the DATABASE_URL to export. `make run` then leaves it running.
db-start: install
	@$(DEVDB) start

db-stop:
	@if [ -x $(PY) ]; then $(DEVDB) stop; fi

# A long, randomised run of the schema fuzzer and the stateful test (`make test` runs bounded, seeded ones).
FUZZ_EXAMPLES ?= 200
STATEFUL_EXAMPLES ?= 200
STATEFUL_STEPS ?= 50
fuzz: export FUZZ_RANDOM = 1
fuzz: export FUZZ_EXAMPLES := $(FUZZ_EXAMPLES)
fuzz: export STATEFUL_EXAMPLES := $(STATEFUL_EXAMPLES)
fuzz: export STATEFUL_STEPS := $(STATEFUL_STEPS)
fuzz: install
	$(call pytest_on_postgres,tests/hardening/test_schema_fuzz.py tests/hardening/test_stateful.py -q $(PYTEST_ARGS))

# The browser tests alone (Debian's chromium at /usr/bin/chromium; screenshots in test-artifacts/e2e/).
e2e: install
	$(call pytest_on_postgres,tests/e2e -q $(PYTEST_ARGS))

# Lint, types (mypy.ini), Django's checks and the migrations check.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=1 $(VENV)/bin/mypy
	DJANGO_DEBUG=1 $(PY) manage.py check
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# Benchmarks against PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432; creates bench_10k,
# bench_100k, bench_1m) with gunicorn and wrk (apt-get installs wrk if missing). See bench/README.md.
# `make bench`: 10k and 100k issues, < 5 minutes, into bench/results/quick/; `make bench-full` adds 1M, into bench/results/.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cksum bench/requirements.txt | cut -d' ' -f1)

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench.run --mode quick $(BENCH_ARGS)

bench-full: $(BENCH_STAMP)
	$(PY) -m bench.run --mode full $(BENCH_ARGS)

# Everything the commands made, except the embedded PostgreSQL's data (.pgdata/), which is stopped first.
clean: db-stop
	rm -rf $(VENV) .pytest_cache .ruff_cache
