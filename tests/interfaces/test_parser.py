"""Unit tests (no server): the command line builds only the parser of the command it names, and
parses every command line as the whole grammar does."""

from __future__ import annotations

import pytest

from dbmigrate.cli.parser import build_parser, parse

LINES = [
    ["migrate", "rfq", "--to", "003", "--dry-run"],
    ["--make", "status", "all", "--format", "json", "--check"],
    ["down", "orion", "--steps", "2"],
    ["create", "add_x", "rfq", "--transaction", "0"],
    ["import", "rfq", "--from", "/tmp/x", "--format", "dbmate"],
    ["pause", "004", "orion"],
    ["baseline", "orion", "--from-tool", "dbmate"],
    ["shell"],
]


@pytest.mark.parametrize("argv", LINES, ids=lambda argv: argv[0] if argv[0] != "--make" else argv[1])
def test_a_command_line_parses_as_the_whole_grammar_parses_it(argv):
    assert parse(argv) == build_parser().parse_args(argv)


def test_only_the_named_commands_parser_is_built():
    assert build_parser(only="migrate").built == ["migrate"]
    assert len(build_parser().built) == 22


def test_an_unknown_command_is_told_every_command(capsys):
    with pytest.raises(SystemExit) as exit:
        parse(["migrat", "rfq"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'migrat'" in error and "'migrate'" in error and "'shell'" in error
