"""Shared helpers and fixtures for the tests of scripts/ (run: /usr/bin/python3 -m pytest tests/scripts -q).

Not a conftest.py: `make test` runs pytest over all of tests/, whose own conftest.py
its test modules import by name; a second module called conftest would shadow it.
Each expensive script run is a session fixture in the one module that uses it."""

import csv
import statistics
import struct
import subprocess
import sys
from pathlib import Path


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
