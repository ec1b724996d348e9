# Thin aliases over the dbmigrate CLI (python -m dbmigrate); `make help` lists them.
# DB=orion|rfq|marketdata picks a database; migrate, down and create default to orion (as the
# story's npm scripts do), status to all. The list of databases lives in dbmigrate/config.py.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(PY) -m dbmigrate
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help venv db-migrate db-migrate-down db-migrate-create db-migrate-status db-migrate-all \
        db-create db-drop db-stop test lint

help: ## list every target
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv and install the pinned dependencies (every target does this first)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

db-migrate: $(STAMP) ## apply pending migrations of DB (default orion; DB=all for every database)
	@$(CLI) migrate $(or $(DB),orion)

db-migrate-down: $(STAMP) ## roll back the last applied migration of DB (default orion)
	@$(CLI) down $(or $(DB),orion)

db-migrate-create: $(STAMP) ## write the next migration: NAME=add_x [DB=orion] [AUTO=1 fills it from tables.py]
	@$(CLI) create "$(NAME)" $(or $(DB),orion) $(if $(filter 1 yes true,$(AUTO)),--auto)

db-migrate-status: $(STAMP) ## show applied and pending migrations of DB (default all databases)
	@$(CLI) status $(DB)

db-migrate-all: $(STAMP) ## migrate every database, concurrently
	@$(CLI) migrate all

db-migrate-%: $(STAMP) ## migrate one database: db-migrate-orion, db-migrate-rfq, db-migrate-marketdata
	@$(CLI) migrate $*

db-create: $(STAMP) ## create the databases of DB (default all) that do not exist
	@$(CLI) create-databases $(DB)

db-drop: $(STAMP) ## drop the databases of DB (default all)
	@$(CLI) drop-databases $(DB)

db-stop: $(STAMP) ## stop the embedded PostgreSQL server
	@$(CLI) stop

test: $(STAMP) ## run the test suite (real PostgreSQL; starts the embedded server when none is configured)
	$(PY) -m pytest -n 2 -q

lint: $(STAMP) ## ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
