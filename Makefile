# Two commands for a fresh clone: `make run` serves, `make test` tests.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export FLASK_APP := wsgi

.PHONY: run test test-fast lint format openapi migrate seed clean install install-dev
.PHONY: audit tls-selfsigned nginx-check compose-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: upgrade the database and serve on http://$(HOST):$(PORT)
run: install
	$(BIN)/flask db upgrade
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## test: the whole suite with coverage (SQLite; set TEST_DATABASE_URL for PostgreSQL)
test: install-dev
	$(BIN)/pytest --cov=app --cov-report=term-missing

## test-fast: the suite without the slow (real-server) tests
test-fast: install-dev
	$(BIN)/pytest -m "not slow"

## lint: ruff (lint and format check), bandit, hadolint (Dockerfiles), the compose file
lint: install-dev compose-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit --quiet --severity-level medium -r app config.py wsgi.py
	$(BIN)/hadolint Dockerfile deploy/nginx.Dockerfile

## compose-check: docker-compose.yml against the Compose specification's schema
compose-check: install-dev
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

## tls-selfsigned: a throwaway self-signed pair in deploy/tls/ (kept if one is there)
tls-selfsigned:
	@if [ -f deploy/tls/fullchain.pem ]; then echo "deploy/tls/ already holds a certificate"; \
	else mkdir -p deploy/tls && openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
	  -subj /CN=localhost -keyout deploy/tls/privkey.pem -out deploy/tls/fullchain.pem \
	  2>/dev/null && echo "deploy/tls/: self-signed pair for localhost (not for production)"; fi

## nginx-check: nginx -t on the committed deploy/nginx.conf (needs Debian's nginx)
nginx-check: tls-selfsigned
	nginx -t -c "$(CURDIR)/deploy/nginx.conf"

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## openapi: regenerate the committed openapi.json from the code
openapi: install
	$(BIN)/flask openapi write --format=json openapi.json

migrate: install
	$(BIN)/flask db upgrade

seed: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov .ruff_cache

# --- performance -----------------------------------------------------------------
.PHONY: bench bench-bodies
BENCH_ARGS ?=

$(VENV)/.installed-bench: requirements.txt bench/requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $@ $(VENV)/.installed

## bench: load benchmark under gunicorn + wrk (SQLite; BENCH_DATABASE_URL for PostgreSQL)
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## bench-bodies: worker CPU time of the costliest 1 MiB request bodies (docs/RELIABILITY.md)
bench-bodies: install
	$(BIN)/python -m bench.bodies

## audit: known vulnerabilities in the pinned runtime requirements (pip-audit, PyPI service)
AUDIT_FLAGS ?=
audit: install-dev
	$(BIN)/pip-audit --requirement requirements.txt --progress-spinner off $(AUDIT_FLAGS)
