"""Migration files for tests: the helpers live in dbmigrate.testing (this name stays for old imports)."""

from dbmigrate.testing.helpers import write_add_phone, write_python_migration, write_sql_migration  # noqa: F401
