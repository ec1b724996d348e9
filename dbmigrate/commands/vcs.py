"""git, as the commands that compare migrations with the base branch read it (verify's
immutability check, renumber's refusal to touch a merged migration): read-only calls, each with a
timeout, None where git has no answer.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dbmigrate.core.errors import UserError


def in_checkout(root: Path) -> bool:
    return bool(shutil.which("git")) and git(root, "rev-parse", "--is-inside-work-tree") == "true"


def default_base(root: Path) -> str | None:
    """The merge base with origin/main, else main, else None."""
    merge_base = git(root, "merge-base", "HEAD", "origin/main")
    if merge_base:
        return merge_base[:12]
    return "main" if git(root, "rev-parse", "--verify", "--quiet", "main") else None


def files_at(root: Path, base: str, folder: Path) -> list[str] | None:
    """The paths (relative to the repository) under `folder` at commit `base`; None if git does not know `base`."""
    listed = git(root, "ls-tree", "-r", "--name-only", base, "--", str(folder))
    return None if listed is None else listed.splitlines()


def git(root: Path, *args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    return result.stdout.strip() if result.returncode == 0 else None


def git_show(root: Path, revision_path: str) -> bytes:
    result = subprocess.run(["git", "show", revision_path], cwd=root, capture_output=True, timeout=30)
    if result.returncode != 0:
        raise UserError(f"git show {revision_path} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout
