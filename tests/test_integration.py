"""Integration: a real `wxbench --quick` run, isolation of crashes and hangs,
verification failures, Ctrl-C, and Google Benchmark flags passed through.

Expectations come from the platform (conftest.Platform): which strategies
must run here, which must not and why, and the core classes single-thread
cases are measured on (P and E on Apple silicon with two performance
levels: every measured case has its repetitions once per class)."""
import csv
import json
import math
import signal
import statistics
import subprocess
import time

import pytest

from conftest import (HEADER, NO_SWITCH_STRATEGIES, ROOT, USER_STRATEGIES, WRITE_CODE_STRATEGIES, assert_baseline_rows,
                      assert_exit_code, assert_measured, assert_unsupported_once, host_os_arch, run_wxbench,
                      victim_lost)
from conftest import ok_reason

STATUSES = {"ok", "unsupported", "failed", "crashed", "timeout"}
VARIANTS = ("flip", "patch", "redundant", "baseline")
QUICK_REPETITIONS = 3


def assert_toggle_rows(run, plat, strategy, reps=QUICK_REPETITIONS):
    """toggle_latency rows of one strategy, as this platform must give them."""
    for v in VARIANTS:
        rows = run.select(scenario="toggle_latency", strategy=strategy, variant=v)
        what = f"toggle_latency/{strategy}/{v}"
        if not plat.runs(strategy):
            assert_unsupported_once(rows, what, plat.why(strategy))
        elif v == "redundant" and strategy in WRITE_CODE_STRATEGIES:
            assert_unsupported_once(rows, what, "write_code")
        elif v == "baseline":
            assert_baseline_rows(rows, plat, reps, what)
        else:
            assert_measured(rows, plat, reps, what)


def test_quick_run_exit_code_and_header(quick_run):
    """Exit 0; exit 1 only when every row that is neither ok nor
    unsupported failed because a victim lost its CPU to other programs (a
    busy machine: such a row would describe fewer victims than it claims)."""
    assert_exit_code(quick_run)
    assert quick_run.header == HEADER


# Reasons wxbench gave on this project's build machine with other programs
# spinning on the victims' CPU (bench/core/threads.c, wx_victims_check).
LOST_THREAD = ("victim thread 0 (CPU 1) was on its CPU for only 10% of the timed loop (1.397 of 13.704 ms; "
               "at least 25% is needed): its CPU was busy with other work")
LOST_PROCESS = ("victim process 0 (CPU 1) was on its CPU for only 10% of the timed loop (1.401 of 13.860 ms; "
                "at least 25% is needed): its CPU was busy with other work")


def _row(scenario="mprotect_tlb", variant="flip", victims="1", status="failed", reason=LOST_THREAD, ns=""):
    return {"scenario": scenario, "variant": variant, "victims": victims, "status": status, "reason": reason,
            "ns_per_op": ns}


class _FakeRun:
    def __init__(self, rc, rows):
        self.rc, self.rows, self.stderr = rc, rows, ""


def test_victim_lost_is_that_reason_and_nothing_else():
    """The exception the quick-run tests make is exactly the victim-lost
    row: no other failure, no row without victims, no other scenario."""
    assert victim_lost(_row())
    assert victim_lost(_row(variant="flip_victim_processes", reason=LOST_PROCESS))
    assert victim_lost(_row(scenario="icache_flush", variant="membarrier", victims="3"))
    assert not victim_lost(_row(victims="0"))
    assert not victim_lost(_row(status="ok", reason="", ns="12.5"))
    assert not victim_lost(_row(scenario="toggle_latency"))
    assert not victim_lost(_row(scenario="icache_flush", variant="builtin"))
    assert not victim_lost(_row(reason="victim thread 0 (CPU 1) made no progress during the timed loop "
                                       "(2904064 steps before and after)"))
    assert not victim_lost(_row(reason="verification failed: " + LOST_THREAD))
    assert not victim_lost(_row(reason=LOST_THREAD + "; verification failed"))
    ok = _row(status="ok", reason="", ns="3.0")
    assert_exit_code(_FakeRun(0, [ok]))
    assert_exit_code(_FakeRun(1, [ok, _row()]))
    for rc, rows in ((1, [ok]), (0, [ok, _row()]), (1, [ok, _row(), _row(reason="verification failed")])):
        with pytest.raises(AssertionError):
            assert_exit_code(_FakeRun(rc, rows))


def test_platform_is_what_it_says(platform):
    """meta.json names the OS and architecture Python runs on; the core
    classes are P and E exactly on Apple silicon with two performance
    levels; the strategies that must run here do, and those that cannot
    say why in the words the platform's reason has."""
    assert (platform.os, platform.arch) == host_os_arch(), platform
    if platform.apple_silicon:
        levels = subprocess.run(["sysctl", "-n", "hw.nperflevels"], capture_output=True, text=True)
        two = levels.returncode == 0 and levels.stdout.strip().isdigit() and int(levels.stdout) >= 2
        assert platform.classes == (["P", "E"] if two else ["any"]), (platform.classes, levels.stdout)
    else:
        assert platform.classes == ["any"], platform.classes
    assert set(platform.strategies) == set(USER_STRATEGIES), "the user build lists exactly the user strategies"
    for s in platform.must_run:
        assert platform.runs(s), f"{s} must run on {platform}: {platform.why(s)}"
    for s, words in platform.must_not_run.items():
        assert not platform.runs(s), f"{s} cannot run on {platform}"
        for w in words:
            assert w in platform.why(s), (s, w, platform.why(s))


def test_every_row_is_well_formed(quick_run):
    rows = quick_run.rows
    assert rows
    for r in rows:
        assert None not in r and len(r) == 20, r
        assert r["status"] in STATUSES
        assert int(r["threads"]) >= 1 and int(r["victims"]) >= 0 and int(r["batch"]) >= 1
        assert int(r["repetition"]) >= 1
        assert r["core_class"] in ("P", "E", "any")
        assert r["arch"] in ("x86_64", "arm64")
        assert int(r["page_size"]) >= 4096
        if r["status"] == "ok":
            ns = float(r["ns_per_op"])
            assert ns > 0 and math.isfinite(ns), r
            assert int(r["iterations"]) > 0
            # empty, but a P/E row may say its thread left its core class (or a MAP_JIT row, an unenforced toggle)
            assert ok_reason(r), r
        else:
            assert r["ns_per_op"] == "" and r["reason"].strip(), r


def test_rows_are_this_platform(quick_run, platform):
    for r in quick_run.rows:
        assert (r["os"].split()[0], r["arch"]) == (platform.os, platform.arch), r
        assert r["core_class"] in platform.classes + ["any"], r


def test_toggle_latency_rows_of_strategies_that_run_here(quick_run, platform):
    """Every variant of every strategy that runs here: ok, --quick's 3
    repetitions per core class (redundant does not exist for a write_code
    strategy; the baseline needs its memory)."""
    running = platform.running()
    assert platform.must_run <= set(running)
    for strategy in running:
        assert_toggle_rows(quick_run, platform, strategy)


def test_toggle_latency_unsupported_rows_say_why(quick_run, platform):
    """A strategy that cannot run here gives one unsupported row per
    variant, with the reason --list gives (and the platform's words)."""
    for strategy in platform.not_running():
        assert_toggle_rows(quick_run, platform, strategy)
        for w in platform.must_not_run.get(strategy, []):
            assert all(w in r["reason"] for r in quick_run.select(scenario="toggle_latency", strategy=strategy))
    pkey = quick_run.select(scenario="toggle_latency", strategy="pkey")
    assert {r["variant"] for r in pkey} == set(VARIANTS)
    if not platform.runs("pkey"):
        assert "pkey_alloc" in pkey[0]["reason"] or "protection keys" in pkey[0]["reason"], pkey[0]


def test_mprotect_costs_more_than_doing_nothing(quick_run, platform):
    """Sanity, not a budget: a real mprotect round trip is a pair of system
    calls; a strategy that never switches (rwx, or dualmap where rwx is
    refused) flips with two empty function calls. Per core class."""
    ref = next((s for s in NO_SWITCH_STRATEGIES if platform.runs(s)), None)
    if ref is None:
        pytest.skip(f"neither {' nor '.join(NO_SWITCH_STRATEGIES)} runs here: "
                    + "; ".join(f"{s}: {platform.why(s)}" for s in NO_SWITCH_STRATEGIES))

    def median(strategy, variant, cls):
        xs = [float(r["ns_per_op"]) for r in quick_run.select(scenario="toggle_latency", strategy=strategy,
                                                               variant=variant, core_class=cls)]
        assert xs, (strategy, variant, cls)
        return statistics.median(xs)
    for cls in platform.classes:
        assert median("mprotect", "flip", cls) > 10 * median(ref, "flip", cls), (ref, cls)
        assert median("mprotect", "redundant", cls) > median(ref, "redundant", cls), (ref, cls)


def test_harness_rows(quick_run, platform):
    for v in ("shim", "native"):
        rows = quick_run.select(scenario="harness", strategy="none", variant=v)
        assert_measured(rows, platform, QUICK_REPETITIONS, f"harness/{v}")


def test_tlb_column(quick_run, platform):
    """Counted exactly where /proc/interrupts has a TLB row (x86 Linux);
    empty on arm64 Linux and on macOS."""
    meta = quick_run.meta
    assert meta["tlb_shootdowns"]["available"] is platform.tlb_counted, meta["tlb_shootdowns"]
    rows = quick_run.select(scenario="toggle_latency", strategy="mprotect", variant="flip")
    assert rows
    if platform.tlb_counted:
        assert all(r["tlb_shootdowns_per_op"] != "" for r in rows)
    else:
        assert all(r["tlb_shootdowns_per_op"] == "" for r in rows)


def test_meta_json(quick_run):
    m = quick_run.meta
    for key in ("wxbench_version", "date_utc", "command_line", "compiler", "gbench_version", "os", "kernel",
                "machine", "chip", "arch", "cpu_features", "cores", "page_size", "cache_line_size", "timer",
                "pinning", "load_average", "frequency_scaling", "cycles", "tlb_shootdowns", "finished", "rows"):
        assert key in m, key
    assert m["finished"] is True and m["interrupted"] is False
    for feat in ("pku", "poe", "ctr_el0_dic", "ctr_el0_idc"):
        assert feat in m["cpu_features"]
    assert m["timer"]["resolution_ns"] > 0
    assert "--quick" in m["command_line"]
    rows = quick_run.rows
    assert m["rows"]["ok"] == sum(r["status"] == "ok" for r in rows)
    assert m["rows"]["unsupported"] == sum(r["status"] == "unsupported" for r in rows)
    assert m["machine"] == rows[0]["machine"]
    assert isinstance(m["pinning"]["measuring_cpu"], int)


def test_crash_becomes_a_row_and_other_rows_are_kept(wxbench_test, tmp_path, platform):
    """mprotect runs before test_segv and test_hook after it (the table's
    order, not the command line's); both keep every row."""
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "mprotect,test_segv,test_hook")
    assert run.rc == 1
    crashed = run.select(strategy="test_segv")
    assert len(crashed) == 1 and crashed[0]["status"] == "crashed"
    assert "SIGSEGV" in crashed[0]["reason"]
    assert crashed[0]["variant"] in VARIANTS  # names the case it was measuring
    order = [r["strategy"] for r in run.rows]
    assert order.index("mprotect") < order.index("test_segv") < order.index("test_hook")
    for s in ("mprotect", "test_hook"):
        assert_toggle_rows(run, platform, s)
    assert run.meta["rows"]["crashed"] == 1


def test_hang_becomes_a_timeout_row(wxbench_test, tmp_path, platform):
    t0 = time.monotonic()
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "test_hang,mprotect", "--timeout", "2")
    assert time.monotonic() - t0 < 60
    assert run.rc == 1
    rows = run.select(strategy="test_hang")
    assert len(rows) == 1 and rows[0]["status"] == "timeout" and "2 s" in rows[0]["reason"]
    assert_toggle_rows(run, platform, "mprotect")


def test_skipped_write_fails_verification(wxbench_test, tmp_path, platform):
    strategies = platform.running(("rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey", "test_hook"))
    assert "mprotect" in strategies and "test_hook" in strategies
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", ",".join(strategies), env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 1
    for s in strategies:
        for v in ("patch", "baseline"):
            rows = run.select(strategy=s, variant=v)
            if v == "baseline" and not platform.baseline_memory:
                assert_baseline_rows(rows, platform, QUICK_REPETITIONS, f"{s}/{v}")
                continue
            assert rows and all(r["status"] == "failed" for r in rows), (s, v, rows)
            assert all("verification failed" in r["reason"] for r in rows)
        assert_measured(run.select(strategy=s, variant="flip"), platform, QUICK_REPETITIONS, f"{s}/flip")


def test_injection_is_inert_in_the_user_build(wxbench, tmp_path, platform):
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "toggle_latency", "--strategy", "mprotect",
                      env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 0, run.stderr
    assert_toggle_rows(run, platform, "mprotect")


def test_ctrl_c_keeps_finished_rows(wxbench, tmp_path):
    out = tmp_path / "r"
    p = subprocess.Popen([str(wxbench), "--out", str(out), "--scenario", "toggle_latency", "--repetitions", "50",
                          "--min-time", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    csv_path = out / "results.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if csv_path.exists() and csv_path.read_text().count("\n") >= 5:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "interrupted" in stderr and str(csv_path) in stderr
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    assert ",".join(rows[0]) == HEADER
    assert len(rows) >= 5 and all(len(r) == 20 for r in rows)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is False


def test_google_benchmark_flags_pass_through(wxbench, tmp_path, platform):
    out = tmp_path / "r"
    jout = tmp_path / "gb.json"
    run = run_wxbench(wxbench, out, "--quick", "--scenario", "toggle_latency", "--strategy", "mprotect", "--",
                      "--benchmark_format=json", f"--benchmark_out={jout}")
    assert run.rc == 0, run.stderr
    child = tmp_path / "gb.toggle_latency.mprotect.json"
    assert child.exists(), list(tmp_path.iterdir())
    doc = json.loads(child.read_text())
    names = [b["name"] for b in doc["benchmarks"]]
    assert any("toggle_latency/mprotect/patch" in n for n in names)
    assert '"benchmarks"' in run.stdout  # the JSON display reporter wrote to stdout
    assert_toggle_rows(run, platform, "mprotect")
    if platform.baseline_memory:
        assert len(run.rows) == 4 * QUICK_REPETITIONS * len(platform.classes)
