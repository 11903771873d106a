"""Shared helpers and fixtures for the tests of scripts/ (run: /usr/bin/python3 -m pytest tests/scripts -q).

Not a conftest.py: `make test` runs pytest over all of tests/, whose own conftest.py
its test modules import by name; a second module called conftest would shadow it.
Each expensive script run is a session fixture in the one module that uses it."""

import csv
import math
import statistics
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
FIXTURES = ROOT / "tests" / "fixtures"
RUN_A = FIXTURES / "synthetic-chip-a" / "20250101T000000Z"  # arm64-like, P and E cores, 5 reps
RUN_B = FIXTURES / "synthetic-chip-b" / "20250102T000000Z"  # every ns value exactly 2x RUN_A
RUN_C = FIXTURES / "synthetic-chip-c" / "20250103T000000Z"  # the same values as RUN_A
RUN_X86 = FIXTURES / "synthetic-x86-linux" / "20250104T000000Z"  # 3 reps, no meta.json, one row short

sys.path.insert(0, str(SCRIPTS))

HEADER = ("machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,"
          "core_class,repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason")


def run_script(name, *args, cwd=None, env=None):
    """Run scripts/<name> with this interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=180)


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def ok_values(run_dir, column="ns_per_op", **match):
    """ns_per_op of the ok rows of a fixture matching column=value pairs, read with the csv module
    (independently of scripts/wxdata.py)."""
    with open(Path(run_dir) / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = [float(r[column]) for r in rows
           if r["status"] == "ok" and all(r[k] == str(v) for k, v in match.items())]
    assert out, f"no ok rows match {match}"
    return out


def median(values):
    return statistics.median(values)


def write_csv(path, lines, header=HEADER):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(line + "\n" for line in lines))
    return path


def row(scenario="toggle_latency", strategy="mprotect", variant="flip", rep=1, ns="100.0", status="ok",
        reason="", threads=1, victims=0, size=0, core="any", machine="synthetic-test"):
    """One results.csv line for hand-made test inputs (the reason quoted as RFC 4180 asks)."""
    if any(ch in reason for ch in ',"\n'):
        reason = '"' + reason.replace('"', '""') + '"'
    return (f"{machine},Synthetic Test CPU,Linux (synthetic),x86_64,4096,{scenario},{strategy},{variant},{threads},"
            f"{victims},{size},1,{core},{rep},1000,{ns},,,{status},{reason}")


PROCESS_HEADER = ["order", "scenario", "strategy", "repetition", "layout_pages", "pid", "start_s", "wall_s", "end",
                  "ok_rows", "other_rows"]
REF_COLUMNS = ["try", "ref_start_ns", "ref_end_ns"]


def write_synthetic_run(path, seed, configs=60, reps=10, scenarios=3, cv=0.02, factor=1.0, scale=None, drift=1.0,
                        host_sd=0.0, host=1.0, ref=False, retried=()):
    """A made-up run (results.csv, processes.csv) with a known truth: `configs` configurations
    (scenario s<i % scenarios>, strategy mprotect, one size each; the same medians in every run) x
    `reps` processes. A value is median x factor x scale.get(i, 1) x its process's host factor x
    drift (for processes started in the second half of the run) x exp(N(0, cv)). The host factor is
    host x exp(N(0, host_sd)), one per process (scenario, strategy, repetition), shared by its
    configurations. ref: processes.csv also gets try, ref_start_ns and ref_end_ns (a 1 ms loop slowed
    by the same host factor and drift); `retried` processes get an earlier try with a ref 10x off.
    Returns the folder."""
    path = Path(path)
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    medians = np.random.default_rng(1).uniform(10, 5000, configs)
    names = sorted({f"s{i % scenarios}" for i in range(configs)})
    procs = [(s, "mprotect", rep) for s in names for rep in range(1, reps + 1)]
    start = {p: float(t) for p, t in zip(procs, rng.permutation(len(procs)) * 10.0)}
    late = {p: drift if start[p] >= len(procs) * 5 else 1.0 for p in procs}
    hosts = {p: host * math.exp(rng.normal(0, host_sd)) * late[p] for p in procs}
    lines = []
    for i, m in enumerate(medians):
        for rep in range(1, reps + 1):
            p = (f"s{i % scenarios}", "mprotect", rep)
            v = m * factor * (scale or {}).get(i, 1.0) * hosts[p] * math.exp(rng.normal(0, cv))
            lines.append(row(p[0], "mprotect", "flip", rep, f"{v:.6f}", size=4096 * (i + 1), machine="synthetic"))
    write_csv(path / "results.csv", lines)
    with open(path / "processes.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PROCESS_HEADER + (REF_COLUMNS if ref else []))
        for k, p in enumerate(sorted(procs, key=start.get)):
            base = [k + 1, *p, 0, 100 + k, f"{start[p]:.3f}", "0.1", "exited with status 0", 20, 0]
            if not ref:
                w.writerow(base)
                continue
            if p in retried:
                w.writerow(base + [1, f"{1e7 * hosts[p]:.0f}", f"{1e7 * hosts[p]:.0f}"])
            refs = [1e6 * hosts[p] * math.exp(rng.normal(0, 0.003)) for _ in range(2)]
            w.writerow(base + [2 if p in retried else 1] + [f"{r:.0f}" for r in refs])
    return path
