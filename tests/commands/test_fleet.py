"""A fleet: databases on two servers (the embedded one and a private one with a password), each of
a kind, migrated at most PARALLEL at a time; a failing one fails the run by name, password
masked, while the rest are migrated; a rerun does only what is left; shards split one file."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from migration_files import write_sql_migration
from support import Databases, migration_ids
from tcp_servers import counting_proxy

from dbmigrate.cli.make import make_argv
from dbmigrate.commands.status import SCHEMA_PATH
from dbmigrate.core.config import DATABASES

LEAKED = "hunter2-in-the-fleet"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return: nothing listens there


def _fleet_file(path: Path, *groups: Databases, extra: str = "") -> Path:
    lines = ["# the fleet", ""]
    for dbs in groups:
        lines += [f"{name} {dbs.url(name)}   # {name}" for name in DATABASES]
        lines.append("")
    path.write_text("\n".join(lines) + extra)
    return path


def _latest(name: str) -> str:
    return migration_ids(name)[-1]


def test_a_fleet_on_two_servers_migrates_every_database_and_a_rerun_does_only_what_is_left(dbs, tcp_dbs, tmp_path):
    targets = _fleet_file(tmp_path / "fleet.txt", dbs, tcp_dbs)
    result = dbs.cli("migrate-fleet", "--targets", str(targets), "--parallel", "3")
    for group in (dbs, tcp_dbs):
        for name in DATABASES:
            assert group.applied(name) == migration_ids(name)
    assert "6 database(s): 6 ok, 0 failed" in result.stdout
    assert f"(none) → {_latest('rfq')}" in result.stdout
    assert tcp_dbs.url("orion") not in result.stdout  # its password is masked
    assert "orion:***@127.0.0.1" in result.stdout

    again = subprocess.run(
        ["make", "-s", "db-migrate-fleet", f"TARGETS={targets}", "PARALLEL=2"],
        cwd=dbs.cwd,
        env=dbs.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("up to date") == 6
    assert "0 migration(s) applied" in again.stdout
    assert f"{_latest('orion')} → {_latest('orion')}" in again.stdout

    status = dbs.cli("status", "--targets", str(targets), "--format", "json", "--check")
    document = json.loads(status.stdout)
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    assert [r["database"] for r in document["databases"]] == ["orion", "rfq", "marketdata"] * 2
    assert all(r["ok"] for r in document["databases"])
    text = dbs.cli("status", "--targets", str(targets))
    assert "6 database(s): 6 up to date, 0 not" in text.stdout


def test_an_unreachable_target_fails_the_run_by_name_without_its_password_and_the_rest_is_migrated(
    dbs, tcp_dbs, tmp_path
):
    port = _closed_port()
    gone = f"postgresql://orion:{LEAKED}@127.0.0.1:{port}/gone"
    targets = _fleet_file(tmp_path / "fleet.txt", dbs, tcp_dbs, extra=f"orion {gone}\n")
    result = dbs.cli("migrate-fleet", "--targets", str(targets), expect=1)
    output = result.stdout + result.stderr
    assert LEAKED not in output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    shown = f"postgresql://orion:***@127.0.0.1:{port}/gone"
    assert f"1 of 7 database(s) failed: {shown} (line 10)" in result.stderr
    assert "FAILED: cannot reach PostgreSQL at 127.0.0.1" in result.stdout
    for group in (dbs, tcp_dbs):
        for name in DATABASES:
            assert group.applied(name) == migration_ids(name)

    status = dbs.cli("status", "--targets", str(targets), expect=1)
    assert LEAKED not in status.stdout + status.stderr
    assert "UNREACHABLE" in status.stdout


def test_shards_split_the_fleet_between_jobs_and_cover_it_together(dbs, tcp_dbs, tmp_path):
    targets = _fleet_file(tmp_path / "fleet.txt", dbs, tcp_dbs)
    first = dbs.cli("migrate-fleet", "--targets", str(targets), "--shard", "1/2")
    assert "3 database(s): 3 ok" in first.stdout
    # Lines in file order: dbs orion, rfq, marketdata, tcp_dbs orion, rfq, marketdata; shard 1/2 takes every other.
    assert dbs.applied("orion") == migration_ids("orion") and dbs.applied("rfq") == []
    dbs.cli("migrate-fleet", "--targets", str(targets), "--shard", "2/2")
    for group in (dbs, tcp_dbs):
        for name in DATABASES:
            assert group.applied(name) == migration_ids(name)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("orion\n", "line 1 is not a target: write `<kind> <url>`"),
        ("# fleet\n\nbilling postgresql://u:pw-secret@h/db\n", "line 3: unknown kind 'billing'"),
        (f"postgresql://u:{LEAKED}@h/db orion\n", "line 1: unknown kind 'postgresql://u:***@h/db'"),
        (f"orion mysql://u:{LEAKED}@h/db\n", "line 1 must start with postgresql://"),
        (
            "orion postgresql://u:p@h/a\nrfq postgresql://u:p@h/a\n",
            "line 2 (rfq, postgresql://u:***@h/a) and line 1 (orion, postgresql://u:***@h/a) name one database",
        ),
        ("orion postgresql://u:p@h/a\norion postgres://v@H:5432/a?sslmode=disable\n", "line 2 names the same database"),
        ("orion postgresql://u@localhost/a\norion postgresql://u@127.0.0.1:5432/a\n", "line 2 names the same database"),
        ("orion postgresql://u@[::1]/a\norion postgresql://u@localhost/a\n", "line 2 names the same database"),
        ("orion host=h dbname=a user=u password='x y'\norion postgresql://u@h/a\n", "line 2 names the same database"),
        ("orion postgresql://u@h/a\norion host=h dbname=a password='x y\n", "no closing quote"),
        ("orion postgresql://u@h/a  other\n", "line 1 is not a target"),
        ("# only a comment\n\n", "lists no targets"),
    ],
)
def test_a_bad_targets_file_is_refused_in_one_line_naming_the_line(dbs, tmp_path, content, expected):
    targets = tmp_path / "fleet.txt"
    targets.write_text(content)
    result = dbs.cli("migrate-fleet", "--targets", str(targets), expect=2)
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert LEAKED not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["migrate-fleet"], "a fleet needs TARGETS"),
        (["migrate-fleet", "--targets", "no/such/file.txt"], "TARGETS file no/such/file.txt does not exist"),
        (["migrate-fleet", "--targets", "{x}", "--parallel", "0"], "PARALLEL='0' is not a whole number from 1"),
        (["migrate-fleet", "--targets", "{x}", "--shard", "3/2"], "SHARD='3/2' is not i/n"),
        (["status", "orion", "--targets", "{x}"], "status takes DB or TARGETS, not both"),
    ],
)
def test_fleet_command_lines_that_cannot_work_are_refused_in_one_line(dbs, tmp_path, args, expected):
    (tmp_path / "x").write_text(f"orion {dbs.url('orion')}\n")
    result = dbs.cli(*(arg.format(x=tmp_path / "x") for arg in args), expect=2)
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


def test_make_passes_targets_parallel_and_shard_to_the_fleet():
    environ = {"DBMIGRATE_TARGETS": "fleet.txt", "DBMIGRATE_PARALLEL": "3", "DBMIGRATE_SHARD": "2/4"}
    assert make_argv(["migrate-fleet"], environ) == [
        "migrate-fleet",
        "--targets=fleet.txt",
        "--parallel=3",
        "--shard=2/4",
    ]
    assert make_argv(["status"], {"DBMIGRATE_TARGETS": "fleet.txt", "DBMIGRATE_FORMAT": "json"}) == [
        "status",
        "--format=json",
        "--targets=fleet.txt",
    ]


def test_a_fleet_dry_run_prints_each_databases_sql_and_changes_nothing_and_to_stops_at_a_migration(dbs, tmp_path):
    targets = tmp_path / "orion-fleet.txt"
    targets.write_text(f"orion {dbs.url('orion')}\n")
    first = migration_ids("orion")[0]
    dry = dbs.cli("migrate-fleet", "--targets", str(targets), "--dry-run")
    assert f"-- orion: {first} (forwards)" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert dbs.applied("orion") == []
    to = dbs.cli("migrate-fleet", "--targets", str(targets), "--to", first.split("_")[0])
    assert f"(none) → {first}" in to.stdout
    assert dbs.applied("orion") == [first]


def test_overlapping_fleet_jobs_both_succeed_and_apply_each_migration_once(dbs, tcp_dbs, tmp_path):
    targets = _fleet_file(tmp_path / "fleet.txt", dbs, tcp_dbs)
    jobs = [dbs.popen("migrate-fleet", "--targets", str(targets), "--parallel", "3") for _ in range(2)]
    for job in jobs:
        out, err = job.communicate(timeout=180)
        assert job.returncode == 0, err
        assert "6 database(s): 6 ok, 0 failed" in out
    for group in (dbs, tcp_dbs):
        for name in DATABASES:
            assert group.applied(name) == migration_ids(name)


def _by_socket(private_server, dbs, name: str) -> str:
    """The URL of `name` on the private server through its Unix socket: the database its TCP URL
    names, spelled so no URL normalisation could tell."""
    dbname = dbs.url(name).rsplit("/", 1)[1]
    secret = quote(private_server.password, safe="")
    return f"postgresql://orion:{secret}@/{dbname}?host={private_server.data_dir}&port={private_server.port}"


def test_one_database_listed_twice_under_two_spellings_is_refused_before_anything_is_migrated(
    tcp_dbs, private_server, tmp_path
):
    targets = tmp_path / "fleet.txt"
    socket_url = _by_socket(private_server, tcp_dbs, "orion")
    targets.write_text(f"orion {tcp_dbs.url('orion')}\nrfq {tcp_dbs.url('rfq')}\norion {socket_url}\n")
    result = tcp_dbs.cli("migrate-fleet", "--targets", str(targets), expect=2)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (
        "fleet.txt line 3 names the same database as line 1 (their servers say they are one database" in result.stderr
    )
    assert "nothing was migrated" in result.stderr
    assert private_server.password not in result.stdout + result.stderr
    assert tcp_dbs.applied("orion") == [] and tcp_dbs.applied("rfq") == []
    status = tcp_dbs.cli("status", "--targets", str(targets), expect=2)
    assert "line 3 names the same database as line 1" in status.stderr


def test_two_kinds_on_one_database_are_refused_naming_both_lines_and_nothing_runs(tcp_dbs, private_server, tmp_path):
    targets = tmp_path / "fleet.txt"
    targets.write_text(f"rfq {tcp_dbs.url('rfq')}\norion {_by_socket(private_server, tcp_dbs, 'rfq')}\n")
    for args in (
        ["migrate-fleet", "--targets", str(targets)],
        ["migrate-fleet", "--targets", str(targets), "--dry-run"],
    ):
        result = tcp_dbs.cli(*args, expect=2)
        line = result.stderr.strip()
        assert result.stderr.count("\n") == 1
        assert (
            "line 2 (orion, postgresql://orion:***@/" in line
            and "and line 1 (rfq, postgresql://orion:***@127.0.0.1" in line
        )
        assert "a database has the migrations of one kind" in line
    assert tcp_dbs.applied("rfq") == []
    assert tcp_dbs.sql("rfq", "SELECT to_regclass('migration') IS NULL AS none")[0]["none"]  # not even bookkeeping


def test_a_targets_file_starting_with_a_byte_order_mark_is_read(dbs, tmp_path):
    targets = tmp_path / "fleet.txt"
    targets.write_bytes(b"\xef\xbb\xbf" + f"orion {dbs.url('orion')}\n".encode())
    result = dbs.cli("migrate-fleet", "--targets", str(targets))
    assert "1 database(s): 1 ok, 0 failed" in result.stdout
    assert dbs.applied("orion") == ["001_initial_schema", "002_audit_log_append_only"]


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null/x", "{folder}"])
def test_targets_that_is_not_a_text_file_is_refused_in_one_line(dbs, tmp_path, path):
    path = path.format(folder=tmp_path)
    result = dbs.cli("migrate-fleet", "--targets", path, expect=2, timeout=30)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "give a" in result.stderr and path in result.stderr


@pytest.mark.parametrize("parallel", [1, 2])
def test_parallel_bounds_how_many_databases_are_connected_at_once(tcp_dbs, private_server, tmp_path, parallel):
    """Six databases through a proxy that counts the connections open at once: never more than
    PARALLEL, and with PARALLEL=6 (each migration sleeping a while) all six at once."""
    names = [f"{tcp_dbs.prefix}_fleet{n}" for n in range(6)]
    slow = f"{len(migration_ids('rfq')) + 1:03d}_slow"
    write_sql_migration(tcp_dbs.cwd, "rfq", slow, "SELECT pg_sleep(0.5)", "SELECT 1")
    for name in names:
        private_server.psql(f'CREATE DATABASE "{name}"')
    try:
        with counting_proxy(private_server.port) as proxy:
            secret = quote(private_server.password, safe="")
            fleet = tmp_path / "fleet.txt"
            fleet.write_text("".join(f"rfq postgresql://orion:{secret}@127.0.0.1:{proxy.port}/{n}\n" for n in names))
            bounded = tcp_dbs.cli("migrate-fleet", "--targets", str(fleet), "--parallel", str(parallel))
            assert f"6 database(s) from {fleet}, {parallel} at a time" in bounded.stdout
            assert "6 database(s): 6 ok, 0 failed; 18 migration(s) applied" in bounded.stdout
            assert proxy.total >= 12  # each database: its state read, then its migration
            assert proxy.open_now == 0
            assert proxy.most_at_once <= parallel, "\n".join(map(str, proxy.events))
            for name in names:  # start again from empty databases, with room for all six at once
                private_server.psql(f'DROP DATABASE "{name}" WITH (FORCE)')
                private_server.psql(f'CREATE DATABASE "{name}"')
            proxy.most_at_once = 0
            unbounded = tcp_dbs.cli("migrate-fleet", "--targets", str(fleet), "--parallel", "6")
            assert "6 database(s): 6 ok" in unbounded.stdout
            assert proxy.most_at_once == 6  # the proxy does see them at once: the bound above was PARALLEL's
    finally:
        for name in names:
            private_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
