"""The command line: `python -m dbmigrate COMMAND [DATABASE] ...` (main.py), its grammar (parser.py),
and Make's variables turned into its arguments (make.py)."""

from dbmigrate.cli.main import main

__all__ = ["main"]
