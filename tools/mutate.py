#!/usr/bin/python3
"""Mutation testing: put one small, realistic bug into a scratch copy of
wxbench, build it, run the tests that should catch it, and say whether they
did; one mutant at a time, every mutant in tests/mutants/.

Usage:
    tools/mutate.py [--only NAME[,NAME]] [--keep] [--jobs N]

A mutant is a file tests/mutants/<name>.mutant:

    # what the bug is, in one line (more comment lines allowed)
    file: path/to/file.c
    tests: tests/test_x.py tests/scenarios/test_y.py    (pytest paths; "unit" = build/unit_tests)
    --- search
    the exact lines to replace (must occur exactly once in the file)
    +++ replace
    what to put instead

The scratch copy is the working tree's tracked files plus its build/ folder
(so make rebuilds only what the mutant touches), under build/mutate/<name>/.
A mutant is caught when its tests fail; it survives when they pass; it is
stale when its search text is no longer in the file (keep the mutants current
when code moves) and broken when the mutated copy does not build. Exit 0 only
when every mutant was caught. The last line is "N caught, N survived".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "tests" / "mutants"
SCRATCH = ROOT / "build" / "mutate"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


@dataclass
class Mutant:
    name: str
    what: str
    file: str
    tests: list
    search: str
    replace: str


def parse(path: Path) -> Mutant:
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition("--- search\n")
    if not sep:
        raise SystemExit(f"{path}: no '--- search' line")
    search, sep, replace = rest.partition("+++ replace\n")
    if not sep:
        raise SystemExit(f"{path}: no '+++ replace' line")
    what, fields = [], {}
    for line in head.splitlines():
        if line.startswith("#"):
            what.append(line.lstrip("# ").rstrip())
        elif ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    for k in ("file", "tests"):
        if k not in fields:
            raise SystemExit(f"{path}: no '{k}:' line")
    return Mutant(path.stem, " ".join(what), fields["file"], fields["tests"].split(), search, replace)


def copy_tree(dest: Path) -> None:
    """The tracked files of the working tree as they are now, and build/ (minus mutate/)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = ROOT / f.decode()
        if src.is_file():
            out = dest / f.decode()
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    build = ROOT / "build"
    if build.is_dir():
        shutil.copytree(build, dest / "build", symlinks=True,
                        ignore=lambda d, names: ["mutate", "cross", "aa"] if Path(d) == build else [])


def run(cmd, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def try_mutant(m: Mutant, keep: bool, jobs: int) -> tuple[str, str, float]:
    """(outcome, detail, seconds): outcome caught, survived, stale or broken."""
    t0 = time.monotonic()
    dest = SCRATCH / m.name
    copy_tree(dest)
    target = dest / m.file
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    count = text.count(m.search)
    if count != 1:
        return "stale", f"{m.file}: the search text occurs {count} times (expected once)", time.monotonic() - t0
    target.write_text(text.replace(m.search, m.replace), encoding="utf-8")
    built = run(["make", f"-j{jobs}", "all", "build/wxbench-test", "build/unit_tests", "build/reftime"], dest)
    if built.returncode != 0:
        return "broken", "does not build:\n" + built.stderr[-2000:], time.monotonic() - t0
    env = dict(os.environ, WXBENCH_BUILD=str(dest / "build"))
    failed = []
    unit = [t for t in m.tests if t == "unit"]
    py = [t for t in m.tests if t != "unit"]
    if unit:
        u = run([str(dest / "build" / "unit_tests")], dest, env)
        if u.returncode != 0:
            failed.append("unit tests: " + "; ".join(l for l in u.stdout.splitlines() if l.startswith("FAIL")))
    if py:
        p = run([PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *py], dest, env)
        if p.returncode not in (0, 5):
            lines = [l for l in p.stdout.splitlines() if l.startswith(("FAILED", "ERROR"))]
            failed.append("pytest: " + ("; ".join(lines[:3]) or p.stdout[-500:]))
    if not keep:
        shutil.rmtree(dest, ignore_errors=True)
    seconds = time.monotonic() - t0
    if failed:
        return "caught", " | ".join(failed), seconds
    return "survived", f"tests {' '.join(m.tests)} passed with the bug in", seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="only these mutants (comma-separated names)")
    ap.add_argument("--keep", action="store_true", help="keep each scratch copy (build/mutate/<name>)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="make -j")
    args = ap.parse_args(argv)
    mutants = [parse(p) for p in sorted(MUTANTS.glob("*.mutant"))]
    if args.only:
        want = set(args.only.split(","))
        unknown = want - {m.name for m in mutants}
        if unknown:
            print(f"mutate: no such mutant: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.name in want]
    if not mutants:
        print(f"mutate: no mutants in {MUTANTS}", file=sys.stderr)
        return 2
    counts = {"caught": 0, "survived": 0, "stale": 0, "broken": 0}
    t0 = time.monotonic()
    for i, m in enumerate(mutants, 1):
        print(f"[{i}/{len(mutants)}] {m.name}: {m.what}", flush=True)
        outcome, detail, secs = try_mutant(m, args.keep, args.jobs)
        counts[outcome] += 1
        print(f"    {outcome.upper()} in {secs:.0f} s: {detail}", flush=True)
    print(f"mutate: {len(mutants)} mutants in {time.monotonic() - t0:.0f} s"
          + (f"; {counts['stale']} stale, {counts['broken']} broken (fix them)" if counts["stale"] or
             counts["broken"] else ""))
    print(f"{counts['caught']} caught, {counts['survived'] + counts['stale'] + counts['broken']} survived")
    return 0 if counts["caught"] == len(mutants) else 1


if __name__ == "__main__":
    sys.exit(main())
