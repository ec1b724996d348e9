"""engine: one database's migrations: the files, their statements (PostgreSQL's parser), the
migration interface and its kinds, the loader, state and plans, the recorder (the only writer of
the bookkeeping), the lock and the lease, the target, planning, preflight, the runner, the executor
and the wording of its failures. It knows no command line. May import: server, core."""
