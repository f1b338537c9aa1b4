# Two commands for a fresh clone: `make run` serves, `make test` tests.
# Both create .venv and install what they need on first use, from the lock files.
# `make help` lists every target.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# HOST and PORT (default 127.0.0.1:8000) reach gunicorn from the environment, from
# `make run PORT=8001` or from .env; the Makefile sets no default that would hide .env's.
export FLASK_APP := wsgi

.DEFAULT_GOAL := help
.PHONY: help run test test-fast lint format openapi db-upgrade db-check reset-db seed
.PHONY: clean install install-dev lock audit
.PHONY: compose-check tls-selfsigned nginx-check

## help: list the targets
help:
	@sed -n 's/^## \([a-z-]*\): \(.*\)/  \1|\2/p' $(MAKEFILE_LIST) | awk -F'|' '{printf "%-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every install is from a lock: the whole dependency tree, pinned, each file checked by hash.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@ $(VENV)/.installed

## install: create .venv with the runtime dependencies (from requirements.txt)
install: $(VENV)/.installed
## install-dev: create .venv with the runtime, test and lint tools (from requirements-dev.txt)
install-dev: $(VENV)/.installed-dev

# pip-compile keeps the existing pins; `make lock LOCK_FLAGS=--upgrade` moves every
# transitive pin to its newest release allowed by the *.in files.
LOCK_FLAGS ?=
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)

## lock: pin the whole dependency tree with hashes from the *.in files (after editing one)
lock: install-dev
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --output-file=requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) --output-file=bench/requirements.txt bench/requirements.in

## run: upgrade the database and serve on http://127.0.0.1:8000 (HOST, PORT; reads .env)
run: install
	$(BIN)/flask db upgrade
	exec $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

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
	$(BIN)/bandit --quiet --severity-level medium -r app config.py logformat.py wsgi.py tools
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

## format: fix what ruff can fix and format the code
format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## openapi: regenerate the committed openapi.json from the code
openapi: install
	$(BIN)/flask openapi write --format=json openapi.json

## db-upgrade: bring the database (DATABASE_URL or .env) to the newest migration
db-upgrade: install
	$(BIN)/flask db upgrade

## db-check: show the database's revision and check the models match the migrations
db-check: install
	$(BIN)/flask db current
	$(BIN)/flask db check

# Refuses anything but a SQLite database outside production unless FORCE=1 (tools/reset_db.py).
## reset-db: delete the development database and migrate a new one (FORCE=1 for others)
reset-db: install
	$(BIN)/python -m tools.reset_db $(if $(filter 1,$(FORCE)),--force)

## seed: upgrade the database and add the demo students and courses
seed: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo

## clean: remove .venv, the test and lint caches, the Node tools and the generated clients
clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov .ruff_cache .mypy_cache
	rm -rf $(NODE_DIR)/node_modules $(NODE_DIR)/src/generated clients/python/enrollment_client

# --- API contract ----------------------------------------------------------------
# The Node tools (Spectral, openapi-typescript, tsc) are pinned in clients/typescript's
# package-lock.json; generated code goes to git-ignored directories (README: API contract).
.PHONY: contract
NODE_DIR := clients/typescript

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund
	touch $@

## contract: openapi.json up to date, Spectral clean, TS and Python clients type-checked
contract: install-dev $(NODE_DIR)/node_modules/.installed
	@spec=$$(mktemp) && $(BIN)/flask openapi write --format=json $$spec && \
	  if cmp -s $$spec openapi.json; then rm $$spec; else rm $$spec; \
	  echo "openapi.json is out of date: run make openapi and commit it" >&2; exit 1; fi
	cd $(NODE_DIR) && npm run --silent lint-spec
	cd $(NODE_DIR) && npm run --silent generate && npm run --silent typecheck
	$(BIN)/python -m tools.python_client
	$(BIN)/mypy --strict clients/python/usage.py

# --- performance -----------------------------------------------------------------
.PHONY: bench bench-bodies
BENCH_ARGS ?=

$(VENV)/.installed-bench: bench/requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r bench/requirements.txt
	touch $@ $(VENV)/.installed

## bench: load benchmark under gunicorn + wrk (SQLite; BENCH_DATABASE_URL for PostgreSQL)
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## bench-bodies: worker CPU time of the costliest 1 MiB request bodies (docs/RELIABILITY.md)
bench-bodies: install
	$(BIN)/python -m bench.bodies

## audit: known vulnerabilities in the locked runtime tree (pip-audit; fails if unreachable)
AUDIT_FLAGS ?=
audit: install-dev
	$(BIN)/python -m tools.audit --requirement requirements.txt $(AUDIT_FLAGS)
