"""importing: other tools' histories (dbmate, golang-migrate, Flyway, node-pg-migrate), one module
per format, read with the engine's own reader of SQL; the writer of our migration files; adopting
a database another tool migrated. May import: engine, server, core."""
