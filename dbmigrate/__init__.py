"""Orion's database migrations: Piccolo migrations, made parallel-safe and atomic.

The public surface (what migration files, services and tests import) is the top level:

    dbmigrate.sql        SQLMigration, NOTHING_TO_UNDO: the authoring API of SQL migrations
    dbmigrate.batched    StagedMigration, require_finished: stages and batched updates, resumable
    dbmigrate.expand     expand/contract helpers: rename, change type, NOT NULL, foreign keys, live
    dbmigrate.columns    column types Piccolo lacks (Inet), for the apps' tables.py
    dbmigrate.cli        `python -m dbmigrate COMMAND`, which the Makefile and the noxfile alias
    dbmigrate.piccolo_cli  Piccolo's own CLI routed through the engine (installed by piccolo_conf.py)
    dbmigrate.testing    the pytest plugin (orion_db, ...: tables bound to a fresh database per
                         test), template databases, helpers for a service's tests

The package installs the apps it migrates too (orion, rfq, marketdata, common: tables and
migrations), so a service imports `orion.tables` and its tests' plugin finds the migrations
with no checkout (core.config.find_project_root). The framework's own work never needs a
piccolo_conf.py: Piccolo finds the framework's engine and app registry inside it
(engine.piccolo_engine); the checkout's piccolo_conf.py serves Piccolo's own CLI.

Beneath it, one subpackage per layer; each imports only the layers below it (checked by
import-linter, `make lint`; the contracts are in pyproject.toml):

    interfaces   cli/, piccolo_cli, testing/, sql, columns, batched, expand
        |
    commands/    one module per command family: migrate (and down), status, create (scaffold),
        |        sql (migration_sql), renumber, verify (model_drift, vcs, lint, safety, base_branch,
        |        its phases check), rehearse (fill, workload, its report), fleet, seed, reset, repair
        |        (and baseline), squash, batches (pause, resume), databases, shell, imports
    importing/   other tools' formats (dbmate, golang-migrate, flyway, node-pg-migrate), reading,
        |        the writer of our files, adopting a live database
    engine/      migration files, deploy phases, statements (PostgreSQL's parser), the migration
        |        interface and its kinds (staged ones with their batches and progress table), the
        |        loader, state and plans, baselines, the recorder, the lock and the lease, the target,
        |        the executor, failures' wording, Piccolo's engine routed to the locked connection,
        |        the lock trace (verify's instrument) and the safety rules that judge it
    server/      the embedded PostgreSQL (install, embedded), connections and poolers, catalog, dumps
        |
    core/        errors, settings and the one list of databases, URLs, reporting, polling, releases

Settings are read once, at the edge (commands/common.py resolves each database into a Target);
below it nothing reads settings or the environment. Every migration a run will apply is loaded and
checked before the first one runs.

The path of `make db-migrate DB=rfq`: Makefile -> cli.main -> commands.migrate (common.resolve:
connection.prepare, Target.resolve) -> engine.executor.migrate: planning.planned (the state, the
plan, the lock, the plan again under it) -> preflight.checked (all loaded and checked) ->
runner.apply_all (consecutive SQL migrations sent together, each in its own transaction with its
bookkeeping, record_statements.applied_statement) -> asyncpg.
"""
