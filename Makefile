# Thin aliases over the dbmigrate CLI (python -m dbmigrate); `make help` lists them.
# DB=orion|rfq|marketdata picks a database (or a list: DB=orion,rfq); migrate, down and create
# default to orion (as the story's npm scripts do), the others to all. The list of databases
# lives in dbmigrate/config.py.
#
# No variable a user sets ever reaches a shell. Each one goes to the CLI as an environment
# variable DBMIGRATE_<NAME> holding its raw text ($(value ...): make expands nothing in it either),
# and the CLI (`--make`, dbmigrate/cli.py) turns it into an argument, refusing values and
# variables that a target does not take. Every variable the recipes use is fixed here (override).

override SHELL := /bin/sh
override .SHELLFLAGS := -c
override MAKE_VARIABLES := DB NAME ID DOWN TO STEPS CONFIRM FORMAT BASE AUTO TRANSACTION LINT CHECK DRY_RUN \
        OUT_OF_ORDER PYTHON FROM FROM_TOOL TARGETS PARALLEL SHARD SUMMARY TRACE ROWS CLIENTS MAX_BLOCK FROM_DB PHASE
# (Make's own defaults, such as LINT = lint, are not the user's: they pass as unset.)
$(foreach v,$(MAKE_VARIABLES),$(eval export DBMIGRATE_$(v) := $(if $(filter default,$(origin $(v))),,$$(value $(v)))))
unexport $(MAKE_VARIABLES)
# Any other variable typed on make's command line (ORION_ENV=staging, ...) still reaches the CLI's
# environment, as typed: made simply-expanded first, so make never expands it ($(shell ...) is text).
$(foreach v,$(filter-out $(MAKE_VARIABLES),$(.VARIABLES)),$(if $(filter command line,$(origin $(v))),\
        $(eval override $(v) := $$(value $(v)))$(eval export $(v))))
# Which of them were typed on make's command line (a target refuses those it does not take).
export DBMIGRATE_COMMAND_LINE := $(foreach v,$(MAKE_VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
export DBMIGRATE_TARGET = $@
# PYTHON set by the user (not the default python3): .venv must be built with it.
override PYTHON_SET := $(if $(filter command line environment,$(origin PYTHON)),1)
export DBMIGRATE_PYTHON_SET := $(PYTHON_SET)
unexport PYTHON_SET

override VENV := .venv
override PY := $(VENV)/bin/python
override CLI := $(PY) -m dbmigrate --make
override STAMP := $(VENV)/.installed-stamp
# One target per migrated database (the Piccolo apps: folders holding piccolo_migrations/).
override DATABASES := $(sort $(patsubst %/piccolo_migrations/,%,$(wildcard */piccolo_migrations/)))
override DB_TARGETS := $(addprefix db-migrate-,$(DATABASES))
override GOALS := help venv db-migrate db-migrate-down db-migrate-create db-migrate-status db-migrate-sql db-migrate-renumber db-migrate-all \
        db-migrate-pause db-migrate-resume db-migrate-squash \
        $(DB_TARGETS) db-migrate-repair db-migrate-baseline db-seed db-reset db-verify db-rehearse db-schema-dump \
        db-create db-drop db-stop db-shell db-migrate-import db-migrate-fleet test lint docs bench

.DEFAULT_GOAL := help
.PHONY: $(GOALS) FORCE

help: ## list every target
	@echo 'Variables: DB=orion|rfq|marketdata or a list (DB=orion,rfq); unset means the default shown.'
	@echo 'CONFIRM=<databases> is needed by down, repair, baseline and db-drop with ORION_ENV=production'
	@echo 'and by db-reset with ORION_ENV=staging (db-reset never runs in production).'
	@awk -F':.*## ' -v dbs='$(DATABASES)' '/^[a-z-]+:.*## / {printf "  make %-22s %s\n", $$1, $$2} \
		/^\$$\(DB_TARGETS\):.*## / {n = split(dbs, db, " "); for (i = 1; i <= n; i++) \
		printf "  make %-22s %s\n", "db-migrate-" db[i], "migrate " db[i] " only [TO=003] [DRY_RUN=1]"}' Makefile

venv: $(STAMP) ## create .venv and install the pinned dependencies (every target does this first) [PYTHON=python3.12]

# Rebuilt when pyproject.toml changes, when .venv has no Python, and checked whenever PYTHON is set.
$(STAMP): pyproject.toml $(if $(wildcard $(PY)),,FORCE) $(if $(PYTHON_SET),FORCE)
	@sh scripts/venv.sh
	@$(PY) -m dbmigrate.server.install  # the pinned PostgreSQL of ORION_PG_VERSION (default 18)

FORCE:

db-migrate: $(STAMP) ## apply pending migrations of DB (default orion) [TO=003] [DRY_RUN=1] [OUT_OF_ORDER=1] [PHASE=pre: before the deploy]
	@$(CLI) migrate

db-migrate-down: $(STAMP) ## roll back the last migration of DB (default orion) [STEPS=2 | TO=001] [DRY_RUN=1] [CONFIRM=db]
	@$(CLI) down

db-migrate-create: $(STAMP) ## write the next migration: NAME=add_x [DB=orion] [AUTO=1 fills it from tables.py] [PHASE=post]
	@$(CLI) create

db-migrate-status: $(STAMP) ## show migrations of DB (default all), or of a fleet: TARGETS=file [CHECK=1 fails on anything unapplied, or tables.py drift] [FORMAT=json]
	@$(CLI) status

db-migrate-sql: $(STAMP) ## print a migration's SQL with no database (as Django's sqlmigrate): ID=003 [DB=orion] [DOWN=1]
	@$(CLI) sql

db-migrate-renumber: $(STAMP) ## move an unapplied migration after the last one (two branches wrote 004): ID=004_x [DB=orion]
	@$(CLI) renumber
db-migrate-squash: $(STAMP) ## write one baseline migration standing for DB's history up to TO=002 (new databases run it instead)
	@$(CLI) squash

db-migrate-pause: $(STAMP) ## stop a staged migration's batches after the current one: ID=004 [DB=orion]
	@$(CLI) pause

db-migrate-resume: $(STAMP) ## let a paused staged migration go on at the next db-migrate: ID=004 [DB=orion]
	@$(CLI) resume

db-migrate-repair: $(STAMP) ## accept modified or deleted migration files of DB as they are now [CONFIRM=db]
	@$(CLI) repair

db-migrate-baseline: $(STAMP) ## mark an existing DB as migrated up to TO=003, or as FROM_TOOL=dbmate|golang-migrate|flyway|node-pg-migrate's table says, running nothing [CONFIRM=db]
	@$(CLI) baseline

db-migrate-all: $(STAMP) ## migrate every database to the latest, concurrently (no DB or TO)
	@$(CLI) migrate all

$(DB_TARGETS): db-migrate-%: $(STAMP) ## one per database
	@$(CLI) migrate $*

db-verify: $(STAMP) ## prove DB's migrations (default all): up/down/up, lock trace and safety, drift, snapshot, squawk lint, immutability [BASE=ref] [FORMAT=json] [SUMMARY=file] [TRACE=0]
	@$(CLI) verify

db-rehearse: $(STAMP) ## apply DB's (default orion) pending migrations to a filled scratch copy under a workload; fail one that blocks it [ROWS=1000000] [CLIENTS=8] [MAX_BLOCK=1s] [BASE=ref | FROM_DB=name] [SUMMARY=file]
	@$(CLI) rehearse

db-schema-dump: $(STAMP) ## regenerate schema/<db>.sql from a database migrated from empty (commit it)
	@$(CLI) schema-dump

db-seed: $(STAMP) ## load seed data into DB (default all): reference everywhere, development data in dev and test
	@$(CLI) seed

db-reset: $(STAMP) ## drop, create, migrate (concurrently) and seed DB (default all); never in production [CONFIRM=db]
	@$(CLI) reset

db-create: $(STAMP) ## create the databases of DB (default all) that do not exist
	@$(CLI) create-databases

db-drop: $(STAMP) ## drop the databases of DB (default all) [CONFIRM=db]
	@$(CLI) drop-databases

db-stop: $(STAMP) ## stop the embedded PostgreSQL server, and the test cluster (its data in /dev/shm removed)
	@$(CLI) stop

db-shell: $(STAMP) ## psql on DB (default orion), embedded or configured; with piped input: run it, exit
	@$(CLI) shell

db-migrate-import: $(STAMP) ## write another tool's migrations as DB's, after its own: FROM=folder DB=orion [FORMAT=dbmate|golang-migrate|flyway|node-pg-migrate]
	@$(CLI) import

db-migrate-fleet: $(STAMP) ## migrate every database of TARGETS=file (lines `<kind> <url>`) [PARALLEL=8] [TO=003] [DRY_RUN=1] [SHARD=1/4] [PHASE=pre]
	@$(CLI) migrate-fleet

# Two pytest workers per core: the tests spend about half their time waiting on subprocesses and
# PostgreSQL (on 2 cores: 2 min with 4 workers, 2 min 50 s with 2).
# The tests marked timing bound how long a workload waits (100 ms): they run alone afterwards, so
# that the other tests' load on a small machine is not what they measure.
test: $(STAMP) ## run the test suite on every core, with progress (real PostgreSQL: the test cluster, started on first use)
	@echo 'make test: about 6 minutes on 2 idle cores (more on a busy machine); progress below'
	$(PY) -m pytest -n $$(( $$(nproc 2>/dev/null || echo 2) * 2 )) -m 'not timing'
	@echo 'make test: the timing tests, one at a time'
	$(PY) -m pytest -m timing

bench: $(STAMP) ## benchmarks: the framework against its baselines, measured side by side (bench/README.md)
	$(PY) bench/run.py

lint: $(STAMP) ## ruff, the import contracts of the package's layers (pyproject.toml), the docs in strict mode
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir .venv/site

docs: $(STAMP) ## build the documentation site (docs/, MkDocs, strict) into site/
	$(VENV)/bin/mkdocs build --strict

# Anything else is a typo, not a database: say so (make's own words would be "No rule to make target").
.DEFAULT:
	$(error unknown target '$@': the targets are $(strip $(GOALS)) (make help describes them))
