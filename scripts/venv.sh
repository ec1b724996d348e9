#!/bin/sh
# Creates .venv and installs the project into it, saying what it does; called by `make venv` (and
# so by every target, the first time). Python comes from DBMIGRATE_PYTHON (make's PYTHON, default
# python3); DBMIGRATE_PYTHON_SET=1 means the user chose it, so a .venv built with another Python
# is rebuilt. pip's output goes to .venv/install.log and is shown only when the install fails.
set -u
cd "$(dirname "$0")/.." || exit 1

python=${DBMIGRATE_PYTHON:-python3}
venv=.venv
log=$venv/install.log
stamp=$venv/.installed-stamp
needed=3.11
version_of='import sys; print("%d.%d" % sys.version_info[:2])'
new_enough='import sys; sys.exit(sys.version_info < (3, 11))'

say() { printf '%s\n' "$*" >&2; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

if ! command -v "$python" >/dev/null 2>&1; then
    fail "PYTHON=$python is not installed: this project needs Python $needed or newer (install it, or run make with PYTHON=python3.12)"
fi
version=$("$python" -c "$version_of" 2>/dev/null) || fail "PYTHON=$python does not run as Python: this project needs Python $needed or newer"
if ! "$python" -c "$new_enough" 2>/dev/null; then
    fail "$python is Python $version, this project needs Python $needed or newer: install it, or run make with PYTHON=python3.12 (or any 3.11+)"
fi

if [ -e "$venv" ] || [ -L "$venv/bin/python" ]; then
    have=$("$venv/bin/python" -c "$version_of" 2>/dev/null) || have=""
    reason=""
    if [ -z "$have" ]; then
        reason="its Python does not run"
    elif ! "$venv/bin/python" -c "$new_enough" 2>/dev/null; then
        reason="it has Python $have, and $needed or newer is needed"
    elif [ "${DBMIGRATE_PYTHON_SET:-}" = 1 ] && [ "$have" != "$version" ]; then
        reason="it has Python $have and PYTHON=$python is $version"
    fi
    if [ -n "$reason" ]; then
        say "rebuilding $venv: $reason"
        rm -rf "$venv"
    elif [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
        exit 0  # checked because PYTHON was set; it matches and is installed
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv with $python (Python $version)"
    mkdir -p "$venv"
    if ! "$python" -m venv "$venv" >"$venv.create.log" 2>&1; then
        out=$(tail -n 5 "$venv.create.log")
        rm -rf "$venv" "$venv.create.log"
        fail "$python -m venv failed (on Debian and Ubuntu: apt install python$version-venv): $out"
    fi
    rm -f "$venv.create.log"
fi

say "installing the pinned dependencies into $venv (about a minute the first time; pip's output goes to $log)"
"$venv/bin/python" -m pip install --disable-pip-version-check -e '.[dev]' >"$log" 2>&1
status=$?
if [ "$status" -ne 0 ]; then
    say "error: installing the dependencies failed (exit $status); the end of $log:"
    tail -n 30 "$log" >&2
    exit 1
fi
# The project's root on the path of every .venv Python, so that `piccolo ...` (which imports
# piccolo_conf) works from any subdirectory, as every make target does.
"$venv/bin/python" -c 'import pathlib, site, sys; pathlib.Path(site.getsitepackages()[0], "orion_project_root.pth").write_text(sys.argv[1] + "\n")' "$(pwd)"
touch "$stamp"
say "installed: $venv is ready"
