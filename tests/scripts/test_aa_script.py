"""scripts/aa.py, the A/A check behind `make aa`, on two synthetic runs with a
known truth (written here, not measured): two runs of the same thing give few
verdicts, B scaled by 15% is found, a whole run 10% slower shows as the
run-wide shift, and the second half of a run drifting shows as drift."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
HEADER = ("machine,chip,os,arch,page_size,scenario,strategy,variant,threads,victims,size_bytes,batch,core_class,"
          "repetition,iterations,ns_per_op,cycles_per_op,tlb_shootdowns_per_op,status,reason")


def write_run(path, rng, factor=1.0, cv=0.02, reps=10, configs=60, drift=1.0):
    """A run of `configs` configurations x `reps` processes; every value x factor,
    processes started in the second half of the run x drift."""
    path.mkdir(parents=True)
    medians = np.random.default_rng(1).uniform(10, 5000, configs)  # the same truth in every run
    starts = {}
    with open(path / "results.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER.split(","))
        for i, m in enumerate(medians):
            order = rng.permutation(reps)
            for rep in range(1, reps + 1):
                t = float(order[rep - 1] * 10 + i * 0.01)
                starts[(f"s{i % 3}", "mprotect", rep)] = starts.get((f"s{i % 3}", "mprotect", rep), t)
                t = starts[(f"s{i % 3}", "mprotect", rep)]
                late = drift if t >= reps * 5 else 1.0
                v = m * factor * late * np.exp(rng.normal(0, cv))
                w.writerow(["synthetic", "Synthetic", "Linux 6.1", "x86_64", 4096, f"s{i % 3}", "mprotect", "flip",
                            1, 0, 4096 * (i + 1), 1, "any", rep, 1000, f"{v:.4f}", "", "", "ok", ""])
    with open(path / "processes.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["order", "scenario", "strategy", "repetition", "layout_pages", "pid", "start_s", "wall_s", "end",
                    "ok_rows", "other_rows"])
        for k, ((scen, strat, rep), t) in enumerate(sorted(starts.items(), key=lambda kv: kv[1])):
            w.writerow([k + 1, scen, strat, rep, 0, 100 + k, f"{t:.3f}", "0.1", "exited with status 0", 20, 0])


def aa(tmp_path, a, b):
    p = subprocess.run([PY, str(ROOT / "scripts" / "aa.py"), str(a), str(b), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout, list(csv.DictReader(open(tmp_path / "out" / "aa.csv")))


def line(text, start):
    return next(l for l in text.splitlines() if l.strip().startswith(start))


def test_same_thing_twice_gives_few_verdicts_and_the_shift_is_found(tmp_path):
    rng = np.random.default_rng(11)
    write_run(tmp_path / "a", rng)
    write_run(tmp_path / "b", rng)
    out, rows = aa(tmp_path, tmp_path / "a", tmp_path / "b")
    assert len(rows) == 60
    flagged = sum(r["verdict"] in ("faster", "slower") for r in rows)
    assert flagged <= 3, out
    assert "false positives: %d of 60" % flagged in out
    scaled = sum(r["verdict_scaled_15pct"] == "slower" for r in rows)
    assert scaled >= 48, out  # at 2% noise a 15% shift is found nearly everywhere
    assert f"{scaled} of 60 called slower" in out
    shift = float(line(out, "run-wide shift").split("=")[1].split()[0])
    assert 0.98 <= shift <= 1.02, out


def test_a_whole_run_slower_and_drift_inside_a_run(tmp_path):
    rng = np.random.default_rng(12)
    write_run(tmp_path / "a", rng, drift=1.08)
    write_run(tmp_path / "b", rng, factor=1.10)
    out, _ = aa(tmp_path, tmp_path / "a", tmp_path / "b")
    shift = float(line(out, "run-wide shift").split("=")[1].split()[0])
    assert 1.0 < shift < 1.12, out  # B 10% above A, whose second half is 8% above its first
    drifts = line(out, "drift inside each run")
    da = float(drifts.split("A ")[1].split(",")[0])
    db = float(drifts.split("B ")[1].split()[0])
    assert abs(da - 1.08) < 0.02 and abs(db - 1.0) < 0.02, drifts


def test_split_compares_a_run_with_itself(tmp_path):
    """--split: the odd repetitions against the even ones of one run."""
    rng = np.random.default_rng(13)
    write_run(tmp_path / "a", rng, reps=12)
    p = subprocess.run([PY, str(ROOT / "scripts" / "aa.py"), str(tmp_path / "a"), "--split", "--out",
                        str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "odd repetitions vs even ones" in p.stdout and "6-6 processes each" in p.stdout, p.stdout
    rows = list(csv.DictReader(open(tmp_path / "out" / "aa.csv")))
    assert len(rows) == 60 and all(r["n_a"] == "6" and r["n_b"] == "6" for r in rows)
    assert sum(r["verdict"] in ("faster", "slower") for r in rows) <= 3
    bad = subprocess.run([PY, str(ROOT / "scripts" / "aa.py"), str(tmp_path / "a"), str(tmp_path / "a"), "--split"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--split" in bad.stderr
