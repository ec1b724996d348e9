"""The package's layers are checked, not described: `make lint`'s import contracts fail when a lower
layer imports a higher one, no module imports another in a cycle (function-level imports
included), and no module outgrows 400 lines. No server needed."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

PACKAGE = ROOT / "dbmigrate"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _package_copy(folder: Path) -> Path:
    """The package and the contracts (pyproject.toml) in a folder of their own."""
    shutil.copytree(PACKAGE, folder / "dbmigrate", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    return folder


def _lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    # PYTHONPATH puts the copy before the editable install, so the copy is what is analysed.
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    chosen = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *chosen], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_import_contracts_hold_on_the_package_as_it_is(tmp_path: Path):
    result = _lint_imports(_package_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden", "contract"),
    [
        ("core/errors.py", "from dbmigrate.engine import executor  # noqa", "layers"),  # a lower layer reaching up
        ("engine/state.py", "from dbmigrate.cli import main  # noqa", "layers"),  # the engine knowing the CLI
        ("server/connection.py", "import piccolo  # noqa", "fast-path"),  # Piccolo in the fast path
    ],
)
def test_breaking_a_contract_fails_make_lint(tmp_path: Path, module: str, forbidden: str, contract: str):
    root = _package_copy(tmp_path / "broken")
    target = root / "dbmigrate" / module
    target.write_text(target.read_text() + f"\n{forbidden}\n")
    assert _lint_imports(_package_copy(tmp_path / "untouched"), contract).returncode == 0
    result = _lint_imports(root, contract)
    assert result.returncode != 0 and "0 kept, 1 broken" in result.stdout, result.stdout


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports, anywhere in it (function-level imports too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return found


def test_no_module_imports_another_in_a_cycle():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {name: _imports(path, set(paths)) for name, path in paths.items()}

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in edges[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    cycles = sorted(name for name in edges if name in reachable(name))
    assert cycles == []


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_every_module_states_its_job_in_a_docstring():
    missing = [
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if p.name != "__main__.py" and not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert missing == []
