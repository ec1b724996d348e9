# Thin aliases over the dbmigrate CLI (python -m dbmigrate); `make help` lists them.
# DB=orion|rfq|marketdata picks a database; migrate, down and create default to orion (as the
# story's npm scripts do), status to all. The list of databases lives in dbmigrate/config.py.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(PY) -m dbmigrate
STAMP := $(VENV)/.installed-stamp

# Optional variables, passed on as CLI flags to the targets that take them.
yes = $(filter 1 yes true,$(1))
TO_FLAG = $(if $(TO),--to "$(TO)")
STEPS_FLAG = $(if $(STEPS),--steps "$(STEPS)")
DRY_RUN_FLAG = $(if $(call yes,$(DRY_RUN)),--dry-run)
OUT_OF_ORDER_FLAG = $(if $(call yes,$(OUT_OF_ORDER)),--out-of-order)
CONFIRM_FLAG = $(if $(CONFIRM),--confirm "$(CONFIRM)")

.DEFAULT_GOAL := help
.PHONY: help venv db-migrate db-migrate-down db-migrate-create db-migrate-status db-migrate-all \
        db-migrate-repair db-migrate-baseline db-seed db-reset db-verify db-schema-dump \
        db-create db-drop db-stop db-shell db-migrate-import test lint bench

help: ## list every target
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv and install the pinned dependencies (every target does this first)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@$(PY) -m dbmigrate.postgres_install  # the pinned PostgreSQL of ORION_PG_VERSION (default 18)
	@touch $@

db-migrate: $(STAMP) ## apply pending migrations of DB (default orion) [TO=003] [DRY_RUN=1] [OUT_OF_ORDER=1]
	@$(CLI) migrate $(or $(DB),orion) $(TO_FLAG) $(DRY_RUN_FLAG) $(OUT_OF_ORDER_FLAG)

db-migrate-down: $(STAMP) ## roll back the last migration of DB (default orion) [STEPS=2 | TO=001] [DRY_RUN=1]
	@$(CLI) down $(or $(DB),orion) $(STEPS_FLAG) $(TO_FLAG) $(DRY_RUN_FLAG) $(CONFIRM_FLAG)

db-migrate-create: $(STAMP) ## write the next migration: NAME=add_x [DB=orion] [AUTO=1 fills it from tables.py]
	@$(CLI) create "$(NAME)" $(or $(DB),orion) $(if $(filter 1 yes true,$(AUTO)),--auto)

db-migrate-status: $(STAMP) ## show migrations of DB (default all) [CHECK=1 fails on anything unapplied] [FORMAT=json]
	@$(CLI) status $(DB) $(if $(call yes,$(CHECK)),--check) $(if $(FORMAT),--format "$(FORMAT)")

db-migrate-repair: $(STAMP) ## accept modified or deleted migration files of DB as they are now (Flyway's repair)
	@$(CLI) repair $(DB) $(CONFIRM_FLAG)

db-migrate-baseline: $(STAMP) ## mark an existing DB as migrated up to TO=003, or as FROM_TOOL=dbmate|golang-migrate|flyway|node-pg-migrate's table says, running nothing
	@$(CLI) baseline $(or $(DB),orion) $(TO_FLAG) $(CONFIRM_FLAG) $(if $(FROM_TOOL),--from-tool "$(FROM_TOOL)")

db-migrate-all: $(STAMP) ## migrate every database, concurrently
	@$(CLI) migrate all

db-migrate-%: $(STAMP) ## migrate one database: db-migrate-orion, db-migrate-rfq, db-migrate-marketdata
	@$(CLI) migrate $*

db-verify: $(STAMP) ## prove DB's migrations (default all): up/down/up, drift, snapshot, squawk lint, immutability [BASE=ref]
	@$(CLI) verify $(DB) $(if $(BASE),--base "$(BASE)")

db-schema-dump: $(STAMP) ## regenerate schema/<db>.sql from a database migrated from empty (commit it)
	@$(CLI) schema-dump $(DB)

db-seed: $(STAMP) ## load seed data into DB (default all): reference everywhere, development data in dev and test
	@$(CLI) seed $(DB)

db-reset: $(STAMP) ## drop, create, migrate (concurrently) and seed DB (default all); never in production
	@$(CLI) reset $(DB) $(CONFIRM_FLAG)

db-create: $(STAMP) ## create the databases of DB (default all) that do not exist
	@$(CLI) create-databases $(DB)

db-drop: $(STAMP) ## drop the databases of DB (default all)
	@$(CLI) drop-databases $(DB) $(CONFIRM_FLAG)

db-stop: $(STAMP) ## stop the embedded PostgreSQL server
	@$(CLI) stop

db-shell: $(STAMP) ## psql on DB (default orion), embedded or configured; with piped input: run it, exit
	@$(CLI) shell $(or $(DB),orion)

db-migrate-import: $(STAMP) ## write another tool's migrations as DB's, after its own: FROM=folder DB=orion [FORMAT=dbmate|golang-migrate|flyway|node-pg-migrate]
	@$(CLI) import $(DB) $(if $(FROM),--from "$(FROM)") $(if $(FORMAT),--format "$(FORMAT)")

test: $(STAMP) ## run the test suite (real PostgreSQL; starts the embedded server when none is configured)
	$(PY) -m pytest -n 2 -q

bench: $(STAMP) ## benchmarks: the framework against its baselines, measured side by side (bench/README.md)
	$(PY) bench/run.py

lint: $(STAMP) ## ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
