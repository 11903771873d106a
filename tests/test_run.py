"""A whole run: exit code and header, every row well formed, meta.json (with
the scenario and strategy tables), the platform it says it is, crash and hang
isolation, Ctrl-C, fault injection inert in the user build, and Google
Benchmark flags passed through. What is about one scenario is in
tests/scenarios/test_<scenario>.py; what holds for every scenario of the
table in tests/scenarios/test_every_scenario.py.

Expectations come from the platform (conftest.Platform): which strategies
must run here, which must not and why, and the core classes single-thread
cases are measured on (P and E on Apple silicon with two performance
levels: every measured case has its repetitions once per class)."""
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (HEADER, QUICK_REPETITIONS, ROOT, SCENARIO_TABLE, STATUSES, STRATEGY_FLAGS, TEST_STRATEGIES,
                      TOGGLE_VARIANTS, USER_STRATEGIES, assert_exit_code, assert_toggle_rows, host_os_arch,
                      ok_reason, parse_list, run_wxbench, victim_lost)

STRATEGY_KEYS = ("name", "summary", "per_thread", "writable_alias", "always_rwx", "no_switch", "write_code",
                 "selected")
SCENARIO_KEYS = ("name", "question", "op", "variants", "strategy_free", "selected")


def test_quick_run_exit_code_and_header(quick_run):
    """Exit 0; exit 1 only when every row that is neither ok nor
    unsupported failed because a victim lost its CPU to other programs (a
    busy machine: such a row would describe fewer victims than it claims)."""
    assert_exit_code(quick_run)
    assert quick_run.header == HEADER


# Reasons wxbench gave on this project's build machine with other programs
# spinning on the victims' CPU (bench/core/threads.c, wx_victims_check).
SPOILED = "spoiled by other work in each of 3 tries (fresh processes); the last: "
LOST_THREAD = (SPOILED + "victim thread 0 (CPU 1) was on its CPU for only 10% of the timed loop (1.397 of 13.704 ms; "
               "at least 25% is needed): its CPU was busy with other work")
LOST_PROCESS = (SPOILED + "victim process 0 (CPU 1) was on its CPU for only 10% of the timed loop (1.401 of 13.860 "
                "ms; at least 25% is needed): its CPU was busy with other work")


def _row(scenario="mprotect_tlb", variant="flip", victims="1", status="interfered", reason=LOST_THREAD, ns=""):
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
    assert not victim_lost(_row(reason=LOST_THREAD[len(SPOILED):]))  # one try is not every try
    assert not victim_lost(_row(status="failed"))  # interference is never a failure
    ok = _row(status="ok", reason="", ns="3.0")
    assert_exit_code(_FakeRun(0, [ok]))
    assert_exit_code(_FakeRun(0, [ok, _row()]))
    for rc, rows in ((1, [ok]), (1, [ok, _row()]), (1, [ok, _row(), _row(status="failed", reason="verification failed")]),
                     (0, [ok, _row(reason="verification failed")])):
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


def test_tlb_availability_is_this_platform(quick_run, platform):
    """Counted exactly where /proc/interrupts has a TLB row (x86 Linux);
    not on arm64 Linux nor on macOS (the column per scenario:
    tests/scenarios/)."""
    meta = quick_run.meta
    assert meta["tlb_shootdowns"]["available"] is platform.tlb_counted, meta["tlb_shootdowns"]


def test_meta_json(quick_run):
    m = quick_run.meta
    for key in ("wxbench_version", "date_utc", "command_line", "compiler", "gbench_version", "os", "kernel",
                "machine", "chip", "arch", "cpu_features", "cores", "page_size", "cache_line_size", "timer",
                "pinning", "load_average", "frequency_scaling", "cycles", "tlb_shootdowns", "finished", "rows",
                "strategies", "scenarios"):
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


def test_counter_columns_are_empty_exactly_where_meta_says_unavailable(quick_run):
    m = quick_run.meta
    ok = [r for r in quick_run.rows if r["status"] == "ok" and r["scenario"] != "harness"]
    cycles = {r["cycles_per_op"] != "" for r in ok}
    tlb = {r["tlb_shootdowns_per_op"] != "" for r in ok}
    assert cycles == {bool(m["cycles"]["available"])}, (m["cycles"], cycles)
    assert tlb == {bool(m["tlb_shootdowns"]["available"])}, (m["tlb_shootdowns"], tlb)
    if not m["cycles"]["available"]:
        assert m["cycles"]["reason"], "cycles not counted without saying why"


def test_meta_json_says_what_the_os_says(quick_run):
    m = quick_run.meta
    assert m["page_size"] == os.sysconf("SC_PAGE_SIZE")
    assert m["cores"]["logical_online"] == os.sysconf("SC_NPROCESSORS_ONLN")
    if hasattr(os, "sched_getaffinity"):
        assert m["cores"]["allowed"] == len(os.sched_getaffinity(0))
    if sys.platform.startswith("linux") and Path("/proc/cpuinfo").exists():
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        if flags:
            assert m["cpu_features"]["pku"] is ("pku" in flags)
            assert m["cpu_features"]["ospke"] is ("ospke" in flags)
            assert m["cpu_features"]["hypervisor"] is ("hypervisor" in flags or Path("/sys/hypervisor/type").exists())
    if Path("/proc/sys/kernel/randomize_va_space").exists():
        assert m["replication"]["aslr"] == int(Path("/proc/sys/kernel/randomize_va_space").read_text())


@pytest.mark.parametrize("fmt", ["console", "csv", "json"])
def test_google_benchmark_report_formats(wxbench, tmp_path, fmt):
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "harness", "--strategy", "none",
                      "--repetitions", "2", "--", f"--benchmark_format={fmt}")
    assert run.rc == 0, run.stderr
    if fmt == "json":
        doc = json.loads(run.stdout)
        assert {b["name"] for b in doc["benchmarks"] if b["run_type"] == "iteration"} == {
            "harness/none/shim/threads:1/victims:0/size:0/batch:1",
            "harness/none/native/threads:1/victims:0/size:0/batch:1"}
    elif fmt == "csv":
        lines = [l for l in run.stdout.splitlines() if l.startswith('"harness/none/')]
        assert len(lines) == 2 * 2, run.stdout  # 2 variants x 2 processes, a CSV line each
        assert all(l.count(",") >= 5 for l in lines)
    else:
        assert run.stdout.count("harness/none/shim") == 2 and "Iterations" in run.stdout, run.stdout
    assert len(run.rows) == 4


def test_meta_json_tables_are_the_lists(quick_run, wxbench):
    """meta.json lists every strategy and scenario of the table, in table
    order, with their flags: the same names and variants as --list, every
    one selected in a run without --scenario or --strategy."""
    m = quick_run.meta
    assert [t["name"] for t in m["strategies"]] == list(USER_STRATEGIES)
    for t in m["strategies"]:
        assert tuple(t) == STRATEGY_KEYS, t
        assert all(isinstance(t[k], bool) for k in STRATEGY_KEYS[2:]), t
        assert t["summary"].strip() and t["selected"] is True, t
    assert [t["name"] for t in m["scenarios"]] == list(SCENARIO_TABLE)
    for t in m["scenarios"]:
        assert tuple(t) == SCENARIO_KEYS, t
        assert t["question"].strip() and t["op"].strip() and t["selected"] is True, t
        assert t["variants"] == SCENARIO_TABLE[t["name"]]["variants"], t
        assert t["strategy_free"] is SCENARIO_TABLE[t["name"]]["strategy_free"], t
    assert not any(s.startswith("test_") for s in USER_STRATEGIES), "test-only strategies must not reach users"


def test_selection_is_recorded_in_the_tables(wxbench, tmp_path):
    """--scenario and --strategy mark what they select; the tables stay whole."""
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "harness", "--strategy", "mprotect")
    assert run.rc == 0, run.stderr
    m = run.meta
    assert [t["name"] for t in m["strategies"] if t["selected"]] == ["mprotect"]
    assert [t["name"] for t in m["strategies"]] == list(USER_STRATEGIES)
    assert [t["name"] for t in m["scenarios"] if t["selected"]] == ["harness"]
    assert [t["name"] for t in m["scenarios"]] == list(SCENARIO_TABLE)


def test_test_build_table_is_the_user_table_and_test_strategies(wxbench_test):
    """The test build has the user build's strategies, in the same order,
    then the test-only ones (its own meta.json and --list say so)."""
    names = list(STRATEGY_FLAGS)
    assert names[:len(USER_STRATEGIES)] == list(USER_STRATEGIES), names
    assert TEST_STRATEGIES and all(s.startswith("test_") for s in TEST_STRATEGIES), TEST_STRATEGIES
    assert {"test_segv", "test_hang", "test_hook"} <= set(TEST_STRATEGIES)
    p = subprocess.run([str(wxbench_test), "--list"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert list(parse_list(p.stdout)) == names


def test_crash_becomes_a_row_and_other_rows_are_kept(wxbench_test, tmp_path, platform):
    """Every repetition of test_segv is a process of its own that dies: one
    crashed row each, naming the case and the repetition; the processes of
    mprotect and test_hook, run before, between and after them in the
    shuffled order, keep every row."""
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "mprotect,test_segv,test_hook")
    assert run.rc == 1
    crashed = run.select(strategy="test_segv")
    assert len(crashed) == QUICK_REPETITIONS and all(r["status"] == "crashed" for r in crashed), crashed
    assert sorted(int(r["repetition"]) for r in crashed) == list(range(1, QUICK_REPETITIONS + 1))
    for r in crashed:
        assert "SIGSEGV" in r["reason"]
        assert r["variant"] in TOGGLE_VARIANTS  # names the case it was measuring
    for s in ("mprotect", "test_hook"):
        assert_toggle_rows(run, platform, s)
    assert run.meta["rows"]["crashed"] == QUICK_REPETITIONS


def test_hang_becomes_a_timeout_row(wxbench_test, tmp_path, platform):
    t0 = time.monotonic()
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "test_hang,mprotect", "--timeout", "2", "--repetitions", "2")
    assert time.monotonic() - t0 < 60
    assert run.rc == 1
    rows = run.select(strategy="test_hang")
    assert len(rows) == 2 and all(r["status"] == "timeout" and "2 s" in r["reason"] for r in rows), rows
    assert_toggle_rows(run, platform, "mprotect", reps=2)


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
    """Flags after -- reach Google Benchmark in every child (console and csv
    reports per child); the JSON of the run is one document (gb.json), on
    stdout with --benchmark_format=json and copied to --benchmark_out."""
    out = tmp_path / "r"
    jout = tmp_path / "gb.json"
    run = run_wxbench(wxbench, out, "--quick", "--scenario", "toggle_latency", "--strategy", "mprotect", "--",
                      "--benchmark_format=json", f"--benchmark_out={jout}")
    assert run.rc == 0, run.stderr
    doc = json.loads(jout.read_text())
    assert json.loads(run.stdout) == doc  # stdout is that one document, nothing else
    names = [b["name"] for b in doc["benchmarks"]]
    assert any("toggle_latency/mprotect/patch" in n for n in names)
    console = run_wxbench(wxbench, tmp_path / "c", "--quick", "--scenario", "toggle_latency", "--strategy",
                          "mprotect", "--", "--benchmark_format=console", "--benchmark_counters_tabular=true")
    assert console.rc == 0, console.stderr
    assert "toggle_latency/mprotect/flip" in console.stdout and "Time" in console.stdout
    assert_toggle_rows(run, platform, "mprotect")
    if platform.baseline_memory:
        assert len(run.rows) == len(TOGGLE_VARIANTS) * QUICK_REPETITIONS * len(platform.classes)
