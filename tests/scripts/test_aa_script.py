"""scripts/aa.py, the A/A check behind `make aa`, on synthetic runs with a known
truth (written here, not measured): two runs of the same thing give few verdicts
at either level and a whole run within the band; a fifth of B scaled by 15% is
found relative to the run, all of B scaled makes the whole run slower; a whole
run 10% slower shows as the run-wide shift, the second half of a run drifting
shows as drift; --band writes aa.json from several pairs; the reference loop's
adjustment is evaluated where processes.csv times it."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from wxplots_testlib import write_synthetic_run

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
sys.path.insert(0, str(ROOT / "scripts"))
import wxstats  # noqa: E402


def aa(*args, cwd=None):
    p = subprocess.run([PY, str(ROOT / "scripts" / "aa.py"), *map(str, args)], capture_output=True, text=True,
                       timeout=300, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return p.stdout


def pair(tmp_path, name="p", seed=11, a=None, b=None, **both):
    """Runs a and b of one A/A pair, analysed into tmp_path/name: (stdout, aa.csv rows, aa_pair.json)."""
    ra = write_synthetic_run(tmp_path / name / "a", seed, **{**both, **(a or {})})
    rb = write_synthetic_run(tmp_path / name / "b", seed + 1000, **{**both, **(b or {})})
    out = aa(ra, rb, "--out", tmp_path / name)
    rows = list(csv.DictReader(open(tmp_path / name / "aa.csv")))
    return out, rows, json.loads((tmp_path / name / "aa_pair.json").read_text())


def line(text, start):
    return next(l for l in text.splitlines() if l.strip().startswith(start))


def test_same_thing_twice_gives_few_verdicts_and_the_power_checks_find_the_shift(tmp_path):
    out, rows, doc = pair(tmp_path)
    assert len(rows) == 60
    for column in ("verdict", "verdict_vs_run"):
        assert sum(r[column] in ("faster", "slower") for r in rows) <= 3, out
    f = doc["raw"]
    assert f"false positives, absolute (the interval includes the band): {f['fp_absolute']} of 60" in out
    assert f"false positives, relative to the run: {f['fp_relative']} of 60" in out
    # a seeded 20% of B x1.15: found relative to the run nearly everywhere (2% noise), the others left alone
    scaled = [r for r in rows if r["scaled"] == "1"]
    assert len(scaled) == 12 and f["power_scaled"] == 12
    hits = sum(r["verdict_vs_run_scaled_15pct"] == "slower" for r in scaled)
    assert hits >= 11 and f"{hits} of 12 ({hits / 12:.1%}) called slower relative to the run" in out, out
    assert sum(r["verdict_vs_run_scaled_15pct"] in ("faster", "slower") for r in rows if r["scaled"] == "0") <= 3
    assert line(out, "whole run: B / A").endswith("within_band (expected: within_band)"), out
    assert line(out, "whole run with every configuration").endswith("slower (expected: slower)"), out
    assert 0.98 <= f["run_shift"]["ratio"] <= 1.02
    assert "default" in line(out, "configurations compared") and "not evaluated" in out


def test_a_whole_run_slower_and_drift_inside_a_run(tmp_path):
    out, _, doc = pair(tmp_path, seed=12, a={"drift": 1.08}, b={"factor": 1.10})
    shift = float(line(out, "whole run: B / A").split("=")[1].split(",")[0])
    assert 1.0 < shift < 1.12, out  # B 10% above A, whose second half is 8% above its first
    assert shift == pytest.approx(doc["raw"]["run_shift"]["ratio"], abs=5e-4)
    drifts = line(out, "drift inside each run")
    da = float(drifts.split("A ")[1].split(",")[0])
    db = float(drifts.split("B ")[1].split()[0])
    assert abs(da - 1.08) < 0.02 and abs(db - 1.0) < 0.02, drifts


def test_split_compares_a_run_with_itself(tmp_path):
    """--split: the odd repetitions against the even ones of one run."""
    run = write_synthetic_run(tmp_path / "a", 13, reps=12)
    out = aa(run, "--split", "--out", tmp_path / "out")
    assert "odd repetitions vs even ones" in out and "6-6 processes each" in out, out
    rows = list(csv.DictReader(open(tmp_path / "out" / "aa.csv")))
    assert len(rows) == 60 and all(r["n_a"] == "6" and r["n_b"] == "6" for r in rows)
    assert sum(r["verdict_vs_run"] in ("faster", "slower") for r in rows) <= 3
    bad = subprocess.run([PY, str(ROOT / "scripts" / "aa.py"), str(run), str(run), "--split"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--split" in bad.stderr


def test_band_from_three_pairs_is_written_to_aa_json(tmp_path):
    """Three pairs whose B sits 3% above, 2% below and level with A: the band follows the rule,
    and every pair's shift, false positives and the spread between runs are in aa.json."""
    dirs, docs = [], []
    for k, host in enumerate((1.03, 0.98, 1.0)):
        _, _, doc = pair(tmp_path, f"pair{k + 1}", seed=20 + k, b={"host": host}, configs=30, reps=8)
        dirs.append(tmp_path / f"pair{k + 1}")
        docs.append(doc)
    out = aa("--band", *dirs, cwd=tmp_path)  # default: data/<machine>/aa.json, from the working folder
    band = json.loads((tmp_path / "data" / "synthetic" / "aa.json").read_text())
    logs = [math.log(d["raw"]["run_shift"]["ratio"]) for d in docs]
    assert (band["band_low"], band["band_high"]) == pytest.approx(wxstats.band_rule(logs))
    assert band["band_high"] >= 1.03 and band["machine"] == "synthetic" and len(band["pairs"]) == 3
    for entry, doc in zip(band["pairs"], docs):
        assert entry["run_shift"]["ratio"] == pytest.approx(doc["raw"]["run_shift"]["ratio"])
        assert entry["run_shift"]["ci_low"] < entry["run_shift"]["ratio"] < entry["run_shift"]["ci_high"]
        assert set(entry["false_positives"]) >= {"absolute", "relative"}
    assert set(band["false_positives"]) >= {"absolute", "relative"} and band["false_positives"]["relative"] <= 0.05
    assert 0 <= band["config_spread_pct"] < 2  # no configuration of its own moves between these runs
    assert "band:" in out and "wrote data/synthetic/aa.json" in out
    aa("--band", *dirs, "--out", tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "aa.json").exists()


def test_band_wants_analysed_pairs(tmp_path):
    bad = subprocess.run([PY, str(ROOT / "scripts" / "aa.py"), "--band", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "not an analysed A/A pair" in bad.stderr


def test_reference_loop_adjustment_is_evaluated_where_processes_time_it(tmp_path):
    """Each process on a host that scatters by 8% (the reference loop sees it), B's host 6% slower
    for the whole run: the adjustment takes both out, narrowing the noise floor and raising the
    power; the row of the highest try is the one used."""
    out, _, doc = pair(tmp_path, seed=31, ref=True, host_sd=0.08, reps=10, b={"host": 1.06},
                       a={"retried": [("s0", "mprotect", 1)]})
    raw, adj = doc["raw"], doc["ref_adjusted"]
    assert adj is not None and "with the reference-loop adjustment" in out
    assert abs(adj["run_shift"]["ratio"] - 1) < 0.02 < abs(raw["run_shift"]["ratio"] - 1)
    assert adj["floor"][0] < raw["floor"][0] / 2
    assert adj["power_rate"] >= raw["power_rate"] and adj["power_rate"] >= 0.9
    assert adj["fp_relative_rate"] <= 0.05
    assert all(0.9 < s < 1.1 for slopes in adj["slopes"].values() for s in slopes)
