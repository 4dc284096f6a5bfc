# The two commands a newcomer needs: `make run` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USER ?= admin
DEMO_PASSWORD ?= admin-demo-password

.PHONY: install run test lint check bench bench-full clean fuzz e2e

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Serve the API at http://$(HOST):$(PORT)/api/ (SQLite unless DATABASE_URL is set), with a demo admin.
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py migrate --noinput
	@echo "Demo admin: $(DEMO_USER) / $(DEMO_PASSWORD) (maintainer + staff). Its API token is on the next line:"
	@DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py create_api_user $(DEMO_USER) --role maintainer --staff --password $(DEMO_PASSWORD) | tail -n 1
	@echo "Try: curl -H 'Authorization: Token <token>' http://$(HOST):$(PORT)/api/issues"
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py runserver $(HOST):$(PORT)

# The whole suite; PostgreSQL when DATABASE_URL is set, else SQLite (PostgreSQL-only tests skip, saying why).
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# A long, randomised run of the schema fuzzer and the stateful test (`make test` runs bounded, seeded ones).
FUZZ_EXAMPLES ?= 200
STATEFUL_EXAMPLES ?= 200
STATEFUL_STEPS ?= 50
fuzz: install
	FUZZ_RANDOM=1 FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) STATEFUL_STEPS=$(STATEFUL_STEPS) \
		$(PY) -m pytest tests/hardening/test_schema_fuzz.py tests/hardening/test_stateful.py -q $(PYTEST_ARGS)

# The browser tests alone (Debian's chromium at /usr/bin/chromium; screenshots in test-artifacts/e2e/).
e2e: install
	$(PY) -m pytest tests/e2e -q $(PYTEST_ARGS)

# Lint, Django's checks and the migrations check.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
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

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* .pytest_cache .ruff_cache
