"""Every Make variable is declared twice, in the Makefile (which exports it) and in the CLI's table
(which turns it into an argument): the two lists are the same, and each argument is one the command
line has."""

from __future__ import annotations

import re

from support import ROOT

from dbmigrate.cli.make import MAKE_VARIABLES, _subparsers
from dbmigrate.cli.parser import build_parser


def test_the_makefile_and_the_cli_declare_the_same_variables():
    makefile = (ROOT / "Makefile").read_text()
    declared = re.search(r"override MAKE_VARIABLES := ((?:.*\\\n)*.*)", makefile).group(1)
    in_makefile = set(declared.replace("\\\n", " ").split())
    assert in_makefile - {"PYTHON"} == set(MAKE_VARIABLES)  # PYTHON is the Makefile's own (make venv)


def test_every_variable_becomes_an_argument_some_command_takes():
    taken = {
        action.dest if not action.option_strings else action.option_strings[0]
        for parser in _subparsers(build_parser()).values()
        for action in parser._actions
    }
    assert {argument for argument in MAKE_VARIABLES.values()} <= taken
