"""Shared pytest fixtures: paths to the built binaries and a helper that runs
wxbench and reads back its results.csv and meta.json."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("WXBENCH_BUILD", ROOT / "build"))

HEADER = ("machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,"
          "core_class,repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason")


def _binary(name):
    path = BUILD / name
    if not path.exists():
        pytest.fail(f"{path} is not built: run `make all {path.relative_to(ROOT)}` (make test does)")
    return path


@pytest.fixture(scope="session")
def wxbench():
    """The user build of wxbench."""
    return _binary("wxbench")


@pytest.fixture(scope="session")
def wxbench_test():
    """The test build: test-only strategies and fault injection."""
    return _binary("wxbench-test")


class Run:
    """One finished wxbench run: exit code, output, rows and meta."""

    def __init__(self, proc, out):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.out = Path(out)

    @property
    def header(self):
        with open(self.out / "results.csv", newline="") as f:
            return f.readline().rstrip("\r\n")

    @property
    def rows(self):
        with open(self.out / "results.csv", newline="") as f:
            return list(csv.DictReader(f))

    @property
    def meta(self):
        with open(self.out / "meta.json") as f:
            return json.load(f)

    def select(self, **kw):
        return [r for r in self.rows if all(r[k] == str(v) for k, v in kw.items())]


def run_wxbench(binary, out, *args, env=None, timeout=300):
    """Run binary --out out args...; returns a Run."""
    e = dict(os.environ)
    if env:
        e.update(env)
    proc = subprocess.run([str(binary), "--out", str(out), *args], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=ROOT)
    return Run(proc, out)


@pytest.fixture(scope="session")
def quick_run(wxbench, tmp_path_factory):
    """`wxbench --quick` once per session, shared by the integration tests."""
    out = tmp_path_factory.mktemp("quick") / "run"
    return run_wxbench(wxbench, out, "--quick", timeout=600)
