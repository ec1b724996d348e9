"""commands: one module per command family, each a few short coroutines that resolve their
targets once (common.py) and hand over to the engine, as Alembic's command.py does. The CLI, the
noxfile, the Makefile and Piccolo's CLI only call these. May import: importing, engine, server,
core."""
