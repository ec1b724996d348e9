"""core: what every layer needs and nothing of dbmigrate's own: the one error type users see,
settings and the one list of databases, PostgreSQL URLs (shown without passwords), reporting,
polling for a lock, and the pinned PostgreSQL releases. May import: nothing of dbmigrate outside
core."""
