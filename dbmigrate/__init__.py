"""Orion's database migrations: Piccolo migrations, made parallel-safe and atomic.

Layers, each importing only the ones above it:
    config, urls, errors  which databases, which environment, where each lives
    embedded, connection  the embedded server; connections with bounded waits and clear errors
    loader, recorder, lock, piccolo_engine, sql, executor
                          the engine: find migrations, record them, one runner at a time, run them
    commands, templates   migrate, down, create, status, create/drop databases, stop
    cli                   the interface the Makefile and noxfile alias
"""
