"""Where dbmigrate's time goes on the peer history: from empty, and a no-op.

    .venv/bin/python bench/profile.py [--migrations 330] [--top 20] [--project DIR]

For each of the two runs, on a fresh bench_* database of the server run.py uses: the wall time of
the whole process, `python -X importtime` summed per top-level package (self times, so nothing
counts twice), and cProfile's top functions by cumulative and by own time. Prints a report; writes
nothing into the project (PYTHONDONTWRITEBYTECODE, copies in a temporary folder).
"""

from __future__ import annotations

import argparse
import collections
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import history
import run  # bench/run.py: the server, the databases, project copies


def importtime(stderr: str) -> tuple[float, list[tuple[str, float]]]:
    """(total ms, [(top-level package, self ms)] by cost) of `-X importtime` output."""
    per_package: collections.Counter[str] = collections.Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line[len("import time:") :].split("|")
        self_us, name = int(fields[0]), fields[2].strip()
        per_package[name.split(".")[0]] += self_us / 1000
    return sum(per_package.values()), per_package.most_common()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--migrations", type=int, default=330)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--project", type=Path, default=run.ROOT)
    args = parser.parse_args()
    project_root = args.project.resolve()
    sys.path[:0] = [str(project_root)]
    url, started_here, bin_dir = run.server(project_root)
    bench = run.Bench(url, project_root, 1, False, Path(tempfile.mkdtemp(prefix="orion-profile-")), bin_dir)
    try:
        bench.install_package()
        steps = history.realistic(args.migrations)
        folder = history.write_dbmate(steps, bench.scratch / "dbmate")
        project = bench.copy_project("profile", empty=("rfq",))
        bench.import_dbmate(project, "rfq", folder)
        print(f"# dbmigrate migrate rfq on the generated history: {len(steps)} migrations\n")
        for label, fresh in (("from empty", True), ("no-op", False)):
            measured = []
            dbs = [bench.create_db("prof") for _ in range(3)]
            if not fresh:
                for db in dbs:
                    run.run(bench.dbmigrate("migrate", "rfq"), project, bench.env(rfq=db))
            wall = bench.timed(bench.dbmigrate("migrate", "rfq"), cwd=project, env=bench.env(rfq=dbs[0]))
            measured.append(f"wall {wall:.0f} ms")
            env = bench.env(rfq=dbs[1])
            result = subprocess.run(
                [*bench.python, "-X", "importtime", "-m", "dbmigrate", "migrate", "rfq"],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
            )
            total, packages = importtime(result.stderr)
            prof = bench.scratch / f"{label.replace(' ', '_')}.prof"
            subprocess.run(
                [*bench.python, "-m", "cProfile", "-o", str(prof), "-m", "dbmigrate", "migrate", "rfq"],
                cwd=project,
                env=bench.env(rfq=dbs[2]),
                capture_output=True,
                check=True,
            )
            print(f"## {label}: {', '.join(measured)}; imports {total:.0f} ms (-X importtime, self times)\n")
            print("| package | import ms |\n| --- | ---: |")
            for name, ms in packages[:12]:
                print(f"| {name} | {ms:.1f} |")
            for order in ("cumulative", "tottime"):
                text = io.StringIO()
                stats = pstats.Stats(str(prof), stream=text)
                stats.strip_dirs().sort_stats(order).print_stats(args.top)
                body = text.getvalue()
                start = body.find("   ncalls")
                print(f"\ncProfile, top {args.top} by {order}:\n```\n{body[start:].rstrip()}\n```")
            print()
            for db in dbs:
                bench.drop_db(db)
    finally:
        bench.cleanup()
        shutil.rmtree(bench.scratch, ignore_errors=True)
        if started_here:
            run.internals()[1].stop(started_here)
    return 0


if __name__ == "__main__":
    sys.exit(main())
