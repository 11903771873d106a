"""scripts/compare.py: every configuration of two runs with its verdicts (compare.csv),
the whole run against the band (compare_summary.json), the headline ratios with
bootstrap intervals and Mann-Whitney U, outputs; synthetic runs with a known truth."""

import csv
import json
import math
import shutil

import numpy as np
import pytest
from wxplots_testlib import RUN_A, RUN_B, RUN_C, RUN_X86, png_size, run_script, write_synthetic_run

import compare
import wxdata
import wxstats

NS_METRICS = ["flip", "patch", "mprotect_1p_0v", "mprotect_1p_most", "icache_64", "icache_4k"]


@pytest.fixture(scope="session")
def compare_abc(tmp_path_factory):
    """compare.py run once on RUN_A (base), RUN_B and RUN_C."""
    out = tmp_path_factory.mktemp("compare_abc")
    done = run_script("compare.py", RUN_A, RUN_B, RUN_C, "--out", out)
    assert done.returncode == 0, done.stderr
    with open(out / "compare_headline.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return out, done, rows


COMPARE_COLUMNS = ("scenario,strategy,variant,threads,victims,size_bytes,batch,core_class,base_median,median,"
                   "ratio,ci_low,ci_high,p_value,n_base,n,verdict,"
                   "ratio_vs_run,ci_low_vs_run,ci_high_vs_run,verdict_vs_run,mde_pct").split(",")


def read_compare(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        return header, [dict(zip(header, row)) for row in r]


def test_compare_csv_has_every_configuration_of_both_runs(compare_abc):
    out, done, _ = compare_abc
    header, rows = read_compare(out / "compare.csv")  # RUN_B against RUN_A
    assert header == COMPARE_COLUMNS
    a = {c.key for c in wxdata.load_run(RUN_A).configs}
    b = {c.key for c in wxdata.load_run(RUN_B).configs}
    got = {tuple(r[k] for k in COMPARE_COLUMNS[:8]) for r in rows}
    assert got == {tuple("" if v is None else str(v) for v in k) for k in a & b}
    for r in rows:
        if r["verdict"] == "missing":
            assert r["ratio"] == "" and (r["n_base"] == "0" or r["n"] == "0") and r["verdict_vs_run"] == "missing"
            continue
        # every ns value of RUN_B is exactly twice RUN_A's: 5 processes a side, all apart
        assert float(r["ratio"]) == pytest.approx(2.0, rel=1e-9), r
        assert float(r["ci_low"]) > 1 and float(r["p_value"]) < 0.05
        assert r["verdict"] == "slower", r
        # ... and so is the whole run: relative to it, nothing moved
        assert float(r["ratio_vs_run"]) == pytest.approx(1.0, rel=1e-9)
        assert float(r["ci_low_vs_run"]) <= 1 <= float(r["ci_high_vs_run"]) and r["verdict_vs_run"] in ("same", "noisy")
        assert float(r["mde_pct"]) >= 5.0
    assert any(r["verdict"] == "slower" for r in rows)
    # the third run gets its own file: identical values, so no configuration is faster or slower, absolutely
    # (the band widens the interval, but "noisy" is judged on the sampling interval) or relative to the run
    header, same = read_compare(out / "compare_vs_synthetic-chip-c.csv")
    assert header == COMPARE_COLUMNS
    assert same and all(r["verdict"] in ("same", "noisy", "missing") for r in same)
    assert all(r["verdict_vs_run"] in ("same", "noisy", "missing") for r in same)
    assert sum(r["verdict_vs_run"] == "same" for r in same) > 0.9 * len(same)
    assert sum(r["verdict"] == "same" for r in same) > 0.9 * len(same)
    assert all(float(r["ratio"]) == pytest.approx(1.0) for r in same if r["verdict"] != "missing")
    assert "synthetic-chip-b vs synthetic-chip-a" in done.stderr


def test_compare_summary_json(compare_abc):
    out, done, _ = compare_abc
    doc = json.loads((out / "compare_summary.json").read_text())
    assert set(doc["run_shift"]) == {"ratio", "ci_low", "ci_high", "band_low", "band_high", "verdict", "band_source"}
    s = doc["run_shift"]
    assert s["ratio"] == pytest.approx(2.0) and 1.9 < s["ci_low"] < 2.0 < s["ci_high"] < 2.1
    assert s["verdict"] == "slower" and s["band_source"] == "default"
    assert (s["band_low"], s["band_high"]) == pytest.approx(wxstats.DEFAULT_BAND)
    rows = read_compare(out / "compare.csv")[1]
    for key, column in (("verdicts", "verdict"), ("verdicts_vs_run", "verdict_vs_run")):
        assert doc[key] == {v: sum(r[column] == v for r in rows) for v in ("faster", "slower", "same", "noisy",
                                                                          "missing")}
    assert doc["configurations"] == len(rows) and doc["ref_adjust"] is False
    same = json.loads((out / "compare_summary_vs_synthetic-chip-c.json").read_text())["run_shift"]
    assert same["ratio"] == pytest.approx(1.0) and same["verdict"] == "within_band"
    assert "whole run 2.000" in done.stderr and "slower (band 0.935-1.070, default)" in done.stderr


def synthetic_pair(tmp_path, band=None, **b):
    """Two made-up runs of one machine (data/synthetic/{a,b}), B with the keyword arguments of
    write_synthetic_run; band: (low, high) written to data/synthetic/aa.json."""
    data = tmp_path / "data" / "synthetic"
    write_synthetic_run(data / "a", 1, configs=100, reps=15, ref=True, host_sd=b.get("host_sd", 0.0))
    write_synthetic_run(data / "b", 2, configs=100, reps=15, ref=True, **b)
    if band:
        (data / "aa.json").write_text(json.dumps({"band_low": band[0], "band_high": band[1]}))
    return data / "a", data / "b"


def compare_files(tmp_path, a, b, *args):
    """compare.py's main, in this process (no interpreter to start): (compare.csv rows, compare_summary.json)."""
    out = tmp_path / "out"
    assert compare.main([str(a), str(b), "--out", str(out), *args]) == 0
    return read_compare(out / "compare.csv")[1], json.loads((out / "compare_summary.json").read_text())


def test_a_fifth_of_the_configurations_15_percent_slower_is_found_relative_to_the_run(tmp_path):
    scaled = {i: 1.15 for i in range(0, 100, 5)}
    a, b = synthetic_pair(tmp_path, scale=scaled, factor=1.03, cv=0.03)
    rows, doc = compare_files(tmp_path, a, b)
    sizes = {int(r["size_bytes"]) // 4096 - 1: r for r in rows}
    assert all(sizes[i]["verdict_vs_run"] == "slower" for i in scaled)
    assert sum(sizes[i]["verdict_vs_run"] in ("faster", "slower") for i in sizes if i not in scaled) <= 4
    assert doc["run_shift"]["verdict"] == "within_band" and 1.0 < doc["run_shift"]["ratio"] < 1.06


def test_every_configuration_15_percent_slower_is_a_slower_run_against_a_5_percent_band(tmp_path):
    a, b = synthetic_pair(tmp_path, band=(1 / 1.05, 1.05), factor=1.15, cv=0.03)
    rows, doc = compare_files(tmp_path, a, b)
    s = doc["run_shift"]
    assert s["verdict"] == "slower" and s["ci_low"] > 1.05 and s["ratio"] == pytest.approx(1.15, abs=0.02)
    assert s["band_source"].endswith("aa.json")
    assert sum(r["verdict_vs_run"] in ("faster", "slower") for r in rows) <= 5


def test_ref_adjust_takes_out_a_host_slower_for_a_whole_run(tmp_path):
    """Every process of B on a host 12% slower, and every process scattered by 8% by its
    host, all of it visible in the reference loop: --ref-adjust takes both out."""
    a, b = synthetic_pair(tmp_path, host=1.12, host_sd=0.08)
    _, raw = compare_files(tmp_path, a, b)
    rows, adjusted = compare_files(tmp_path, a, b, "--ref-adjust")
    assert raw["run_shift"]["ratio"] > 1.08 and raw["ref_adjust"] is False
    assert adjusted["ref_adjust"] is True and abs(adjusted["run_shift"]["ratio"] - 1) < 0.02
    assert adjusted["run_shift"]["verdict"] == "within_band"
    assert all(0.9 < s < 1.1 for pair in adjusted["ref_slopes"].values() for s in pair)
    assert adjusted["median_mde_pct"] < raw["median_mde_pct"]


def test_ref_adjust_without_reference_timings_says_so(tmp_path, capsys):
    a = write_synthetic_run(tmp_path / "a", 1, configs=20, reps=6)
    b = write_synthetic_run(tmp_path / "b", 2, configs=20, reps=6)
    _, doc = compare_files(tmp_path, a, b, "--ref-adjust")
    assert doc["ref_adjust"] is False and "no reference-loop timings" in capsys.readouterr().err


def test_band_file_of_the_base_machine_is_read_when_present(tmp_path):
    """data/<machine>/aa.json beside the base run gives the band; another machine's does not."""
    a = write_synthetic_run(tmp_path / "data" / "m1" / "a", 1, configs=20, reps=6)
    b = write_synthetic_run(tmp_path / "data" / "m2" / "b", 2, configs=20, reps=6)
    (b.parent / "aa.json").write_text('{"band_low": 0.5, "band_high": 2.0}')  # not the base's machine
    assert compare_files(tmp_path / "1", a, b)[1]["run_shift"]["band_source"] == "default"
    (a.parent / "aa.json").write_text(json.dumps({"band_low": 0.97, "band_high": 1.03, "pairs": []}))
    s = compare_files(tmp_path / "2", a, b)[1]["run_shift"]
    assert (s["band_low"], s["band_high"]) == (0.97, 1.03) and s["band_source"] == str(a.parent / "aa.json")
    assert "measured by `make aa`" in (tmp_path / "2" / "out" / "compare.md").read_text()
    (a.parent / "aa.json").write_text(json.dumps({"band_low": 1.1, "band_high": 1.2}))
    bad = run_script("compare.py", a, b, "--out", tmp_path / "o3")
    assert bad.returncode == 2 and "must bracket 1" in bad.stderr


def test_summary_per_scenario_and_strategy_and_filters(compare_abc, tmp_path):
    out, _, _ = compare_abc
    md = (out / "compare.md").read_text()
    assert "### Geometric mean of the ratios, per scenario and strategy" in md
    assert "| toggle_latency | mprotect | 2.00× |" in md
    assert "### Configurations found faster or slower" in md
    assert "### Configurations faster or slower relative to the run" in md
    assert "Whole run: the run-wide shift g = synthetic-chip-b / synthetic-chip-a = 2.00×" in md
    assert "verdict slower: the interval lies above the band" in md and "Per configuration, relative to the run" in md
    done = run_script("compare.py", RUN_A, RUN_B, "--out", tmp_path / "f", "--scenario", "toggle_latency",
                      "--strategy", "mprotect", "--variant", "flip,patch")
    assert done.returncode == 0, done.stderr
    _, rows = read_compare(tmp_path / "f" / "compare.csv")
    assert rows and {(r["scenario"], r["strategy"]) for r in rows} == {("toggle_latency", "mprotect")}
    assert {r["variant"] for r in rows} == {"flip", "patch"}


def pick(rows, metric, strategy, machine):
    (r,) = [r for r in rows if (r["metric"], r["strategy"], r["machine"]) == (metric, strategy, machine)]
    return r


@pytest.mark.parametrize("metric", NS_METRICS)
def test_machine_exactly_twice_as_slow_gives_ratio_2_significant(compare_abc, metric):
    _, _, rows = compare_abc
    r = pick(rows, metric, "mprotect", "synthetic-chip-b")
    assert float(r["ratio"]) == pytest.approx(2.0, rel=1e-9)
    lo, hi = float(r["ci_low"]), float(r["ci_high"])
    assert 1.8 < lo < 2.0 < hi < 2.2
    assert float(r["p_value"]) < 0.05 and r["significant"] == "yes"
    assert r["base"] == "synthetic-chip-a" and r["base_n"] == "5" and r["n"] == "5"


@pytest.mark.parametrize("metric", NS_METRICS + ["scaling"])
def test_identical_machines_are_not_significant(compare_abc, metric):
    _, _, rows = compare_abc
    r = pick(rows, metric, "mprotect", "synthetic-chip-c")
    assert float(r["ratio"]) == pytest.approx(1.0, rel=1e-12)
    assert float(r["ci_low"]) <= 1.0 <= float(r["ci_high"])
    assert r["significant"] == "no"


def test_scaling_ratio_is_unchanged_when_every_op_is_twice_as_slow(compare_abc):
    _, _, rows = compare_abc
    r = pick(rows, "scaling", "mprotect", "synthetic-chip-b")
    assert float(r["ratio"]) == pytest.approx(1.0, rel=1e-9)
    assert r["p_value"] == "" and r["significant"] == "no"  # a ratio of two configurations: no U test


def test_absent_and_unsupported_have_no_ratio(compare_abc):
    _, _, rows = compare_abc
    r = pick(rows, "flip", "rwx", "synthetic-chip-b")
    assert r["ratio"] == "" and r["base_status"] == "unsupported" and r["significant"] == ""


def test_markdown_html_and_figures(compare_abc):
    out, done, _ = compare_abc
    md = (out / "compare.md").read_text()
    assert "| mprotect | synthetic-chip-b | 1.50 µs | 3.00 µs | 2.00× |" in md
    assert "| significant |" in md and "| not significant |" in md
    assert "Hodges-Lehmann shift of the log values" in md and "exact Mann-Whitney 95% interval" in md
    assert "percentile-bootstrap interval with 10000 resamples" in md  # only for ratio metrics
    assert "Base: synthetic-chip-a." in md
    for metric in NS_METRICS + ["scaling"]:
        png = out / f"compare_{metric}.png"
        w, h = png_size(png)
        assert w >= 700 and h >= 400 and png.stat().st_size > 15_000
    page = (out / "compare.html").read_text()
    assert page.count('src="data:image/png;base64,') == 7 and "https://" not in page
    assert str(out / "compare.html") in done.stdout


def test_mann_whitney_against_hand_computed_values():
    u, p = compare.mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert u == 0
    assert p == pytest.approx(math.erfc((4.5 - 0.5) / math.sqrt(9 * 7 / 12) / math.sqrt(2)))  # ~0.0809
    # ties: ranks 1 | 3 3 3 | 5.5 5.5 | 7.5 7.5; U(x) = 12.5 - 10; tie term 24 + 6 + 6
    u, p = compare.mann_whitney_u([1, 2, 2, 3], [2, 3, 4, 4])
    assert u == 2.5
    var = 16 / 12 * (9 - 36 / 56)
    assert p == pytest.approx(math.erfc((5.5 - 0.5) / math.sqrt(var) / math.sqrt(2)))
    assert p == pytest.approx(0.1342, abs=1e-4)
    assert compare.mann_whitney_u([5, 5, 5], [5, 5, 5]) == (4.5, 1.0)
    a, b = [3.1, 2.2, 5.0, 4.4], [1.0, 6.5, 7.1]
    ua, pa = compare.mann_whitney_u(a, b)
    ub, pb = compare.mann_whitney_u(b, a)
    assert ua + ub == len(a) * len(b) and pa == pytest.approx(pb)


def test_bootstrap_is_reproducible_and_brackets_the_ratio():
    metric = wxdata.metric("flip")
    base = [np.array([10.0, 10.1, 9.9, 10.2, 9.8])]
    other = [base[0] * 3]
    first = compare.bootstrap_ratio(metric, base, other, seed=7)
    assert first == compare.bootstrap_ratio(metric, base, other, seed=7)
    assert first[0] < 3 < first[1] and first[1] - first[0] < 0.3
    same = compare.bootstrap_ratio(metric, base, base, seed=7)
    assert same[0] < 1 < same[1]


def test_default_runs_are_latest_per_machine_and_base_option(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(RUN_X86, data / "synthetic-x86-linux" / "20250104T000000Z")
    shutil.copytree(RUN_A, data / "synthetic-chip-a" / "20250101T000000Z")
    (data / "synthetic-chip-a" / "20240101T000000Z").mkdir(parents=True)  # an older run of the same machine
    shutil.copy(RUN_C / "results.csv", data / "synthetic-chip-a" / "20240101T000000Z" / "results.csv")
    done = run_script("compare.py", "--base", "synthetic-x86-linux", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "plots" / "compare" / "synthetic-x86-linux_vs_synthetic-chip-a"
    md = (out / "compare.md").read_text()
    assert "synthetic-chip-a: run 20250101T000000Z" in md and "20240101T000000Z" not in md
    assert "Base: synthetic-x86-linux." in md
    assert "| mprotect | synthetic-chip-a | 900 ns | 1.50 µs | 1.67× |" in md
    bad = run_script("compare.py", "--base", "no-such-machine", cwd=tmp_path)
    assert bad.returncode == 2 and "no-such-machine" in bad.stderr


def test_one_run_is_nothing_to_compare(tmp_path):
    done = run_script("compare.py", RUN_A, "--out", tmp_path / "out")
    assert done.returncode == 0 and "need two runs" in done.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("low,high,p,expected", [
    (1.5, 2.5, 0.01, "significant"),
    (1.5, 2.5, 0.08, "not significant"),  # interval clear of 1, but the U test does not agree
    (0.9, 2.5, 0.01, "not significant"),  # interval holds 1
    (1.5, 2.5, None, "significant"),  # no U test for ratio metrics: the interval decides
])
def test_significance_needs_interval_clear_of_1_and_small_p(low, high, p, expected):
    r = compare.Ratio(wxdata.metric("flip"), "mprotect", None, None, None, None, ratio=2.0, low=low, high=high, p=p)
    assert r.verdict == expected


def test_interfered_rows_are_counted_and_listed_not_compared(tmp_path):
    """A row other work spoiled in every try (status interfered) is named in
    compare.md with its reason, and its configuration is compared on its ok
    processes only."""
    from wxplots_testlib import row, run_script, write_csv
    reason = "spoiled by other work in each of 3 tries (fresh processes); the last: victim thread 0 lost its CPU"
    runs = []
    for name in ("a", "b"):
        lines = [row(rep=k, ns=str(100.0 + k)) for k in range(1, 7)]
        lines += [row(variant="patch", rep=k, ns=str(200.0 + k)) for k in range(1, 7)]
        if name == "b":
            lines[2] = row(rep=3, ns="", status="interfered", reason=reason)
        runs.append(write_csv(tmp_path / "synthetic-test" / f"2025010{1 + (name == 'b')}T000000Z" / "results.csv",
                              lines).parent)
    p = run_script("compare.py", *runs, "--out", tmp_path / "c")
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "0 in " in md and "1 in " in md and reason in md, md
    flip = [r for r in csv.DictReader(open(tmp_path / "c" / "compare.csv")) if r["variant"] == "flip"]
    assert flip and flip[0]["n"] == "5" and flip[0]["n_base"] == "6"
