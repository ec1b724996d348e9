"""Orion's database migrations: Piccolo migrations, made parallel-safe and atomic.

Layers, each importing only the ones above it:
    errors, urls, config  what went wrong; URLs; which databases, which environment, .env files
    embedded, connection  the embedded server; connections with bounded waits and clear errors
    loader, recorder, lock, state, piccolo_engine, sql, executor, seeder, templates_db
                          the engine: find migrations, record them, one runner at a time, plan
                          and run them, load seeds, clone migrated templates
    catalog, schema_dump, verify, templates
                          db-verify's checks; the text of new migration files
    commands              one coroutine per command
    cli, pytest_plugin    the interfaces: the command line the Makefile and noxfile alias, and
                          pytest fixtures for any Orion service
"""
