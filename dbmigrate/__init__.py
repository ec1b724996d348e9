"""Orion's database migrations: Piccolo migrations, made parallel-safe and atomic.

The engine, in four parts (as Django's loader, executor and recorder, and dbmate's ParsedMigration):

    the migration interface  migration.py: `Migration`, which every kind of migration implements:
                             whether it is transactional, its statements (split by PostgreSQL's
                             own parser, statements.py), whether and why not it reverses, what
                             makes it unsafe to run (`problems()`), and how to run and preview
                             it. Two kinds: `SQLSteps` (sql.py's SQLMigration: its SQL is all that
                             runs) and `PiccoloOperations` (a Piccolo MigrationManager). Only the
                             loader (loader.py) tells them apart.
    the executor             executor.py: plans (state.py, pure) and applies or reverts one
                             database's migrations under its lock (lock.py, or lease.py behind a
                             pooler), working only through the interface, on a `Target` resolved
                             once at the edge (target.py: URL, files, timeouts). Every migration
                             it will run is loaded and checked before the first one runs.
    the recorder             recorder.py: the only writer of the bookkeeping (Piccolo's `migration`
                             table and `dbmigrate_history`), in the migration's own transaction;
                             for a non-transactional migration, a trail written as it runs.
    the reporter             reporting.py: `say()` sends progress lines to the current task's
                             reporter (stdout by default; `quiet()` for scratch runs); errors are
                             worded in failures.py, one line each.

Layers, each importing only the ones above it:
    errors, urls, config      what went wrong; URLs; which databases, which environment, .env files
    postgres_releases, postgres_install, embedded, pooling, connection, target
                              PostgreSQL builds, the embedded server; connections (direct or through
                              PgBouncer) with bounded waits and clear errors; the resolved Target
    statements, sql, loader, migration, recorder, lock, lease, state, piccolo_engine, reporting,
    failures, executor, bookkeeping, seeder, template_databases
                              the engine (above), repair and baseline, seeds, template databases
    catalog, schema_dump, verify, scaffold, status_report, importer, adopt, fleet, shell
                              db-verify's checks; the text of new migration files; status reports;
                              importing other tools' histories; fleets; psql
    commands                  one coroutine per command
    cli, piccolo_cli, pytest_plugin, testing
                              the interfaces: the command line the Makefile and noxfile alias;
                              Piccolo's own CLI routed through the engine; pytest fixtures and test
                              helpers for any Orion service

The path of `make db-migrate DB=rfq`: Makefile -> cli.main -> commands.migrate (resolve: prepare,
Target) -> executor.migrate (read_state, forwards_plan, locked, refuse_unsafe) -> executor.apply
-> SQLSteps.run -> asyncpg, with recorder.record_applied in the same transaction.
"""
