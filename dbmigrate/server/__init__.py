"""server: PostgreSQL itself: the pinned builds installed and run as the embedded server,
connections (direct or through PgBouncer) with bounded waits and one-line errors, the catalog
that verify compares, and schema dumps. May import: core."""
