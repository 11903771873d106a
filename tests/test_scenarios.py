"""Scenarios mprotect_tlb, dualmap_overhead, icache_flush and thread_contention:
their rows under --quick, TLB shootdowns with thread victims against process
victims, verification failures when the write is skipped, running out of
mappings, victims that stop running, and the aarch64 manual flush under qemu."""
import math
import os
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_wxbench

SCENARIOS = ("mprotect_tlb", "dualmap_overhead", "icache_flush", "thread_contention")
VARIANTS = {
    "mprotect_tlb": {"flip", "noop", "flip_victim_processes"},
    "dualmap_overhead": {"setup", "steady", "exec_span"},
    "icache_flush": {"none", "builtin", "manual", "cpuid", "serialize", "membarrier", "sys_icache_invalidate"},
    "thread_contention": {"private", "shared"},
}
LINUX = ("rwx", "mprotect", "dualmap")       # strategies that run on Linux x86_64
ELSEWHERE = ("mapjit", "mapjit_callback")  # never on Linux
STATUSES = {"ok", "unsupported", "failed", "crashed", "timeout"}


def ncpu(run):
    return int(run.meta["cores"]["allowed"])


def rows(run, scenario, **kw):
    return run.select(scenario=scenario, **kw)


def median(xs):
    return statistics.median(xs)


def busy(r):
    """A row failed because a victim was preempted by other work on its CPU
    for more than three quarters of the timed loop: the machine was busy,
    not the code wrong."""
    return r["status"] == "failed" and "was on its CPU for only" in r["reason"]


def ok_or_busy(r):
    return r["status"] == "ok" or busy(r)


# --- every scenario under --quick -------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rows_are_well_formed(quick_run, scenario):
    rs = rows(quick_run, scenario)
    assert quick_run.rc == 0 or any(busy(r) for r in quick_run.rows), quick_run.stderr
    assert rs, scenario
    for r in rs:
        assert None not in r and len(r) == 20, r
        assert r["status"] in STATUSES
        assert r["variant"] in VARIANTS[scenario], r
        assert int(r["threads"]) >= 1 and int(r["victims"]) >= 0 and int(r["batch"]) == 1
        if r["status"] == "ok":
            ns = float(r["ns_per_op"])
            assert ns > 0 and math.isfinite(ns), r
            assert int(r["iterations"]) > 0 and r["reason"] == "", r
        else:
            # nothing fails in a --quick run but rows whose victims lost their CPU to other work
            assert r["status"] == "unsupported" or (busy(r) and int(r["victims"]) > 0), r
            assert r["ns_per_op"] == "" and len(r["reason"].strip()) > 10, r


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_strategy_has_every_variant(quick_run, scenario):
    strategies = {r["strategy"] for r in rows(quick_run, scenario)}
    assert set(LINUX) | set(ELSEWHERE) | {"pkey"} <= strategies
    for s in strategies:
        assert {r["variant"] for r in rows(quick_run, scenario, strategy=s)} == VARIANTS[scenario], s
    for s in ELSEWHERE:
        assert all(r["status"] == "unsupported" and "macOS" in r["reason"]
                   for r in rows(quick_run, scenario, strategy=s))


def test_mprotect_tlb_sweeps_sizes_victims_and_variants(quick_run):
    page = int(quick_run.meta["page_size"])
    top = ncpu(quick_run) - 1
    for s in ("mprotect", "dualmap"):
        rs = rows(quick_run, "mprotect_tlb", strategy=s)
        assert all(ok_or_busy(r) for r in rs), [r for r in rs if not ok_or_busy(r)]
        assert {int(r["size_bytes"]) for r in rs} == {page, 1024 * page}
        for v in ("flip", "noop"):
            assert {int(r["victims"]) for r in rs if r["variant"] == v} == {0, top}
        procs = {int(r["victims"]) for r in rs if r["variant"] == "flip_victim_processes"}
        assert procs == ({top} if top > 0 else set())
        assert all(len([r for r in rs if (r["variant"], r["victims"], r["size_bytes"]) == k]) == 3
                   for k in {(r["variant"], r["victims"], r["size_bytes"]) for r in rs})
    rwx = rows(quick_run, "mprotect_tlb", strategy="rwx")
    assert all(r["status"] == "unsupported" and r["reason"].startswith("question does not apply") for r in rwx)


def test_mprotect_tlb_shootdowns_reach_threads_not_processes(quick_run):
    if not quick_run.meta["tlb_shootdowns"]["available"]:
        pytest.skip("no TLB row in /proc/interrupts: shootdowns are not counted here")
    if ncpu(quick_run) < 2:
        pytest.skip("one CPU: no room for a victim")

    def tlb(strategy, variant, size):
        """Shootdowns per op of the repetitions whose victim held its CPU."""
        rs = rows(quick_run, "mprotect_tlb", strategy=strategy, variant=variant, victims=1, size_bytes=size)
        assert len(rs) == 3 and all(ok_or_busy(r) for r in rs), rs
        ok = [r for r in rs if r["status"] == "ok"]
        assert all(r["tlb_shootdowns_per_op"] != "" for r in ok), ok
        return [float(r["tlb_shootdowns_per_op"]) for r in ok]

    page = int(quick_run.meta["page_size"])
    checked = 0
    for size in (page, 1024 * page):
        threads = tlb("mprotect", "flip", size)
        if threads:
            assert min(threads) > 0.5, (size, threads)  # each mprotect interrupts the victim's CPU
            checked += 1
        procs = tlb("mprotect", "flip_victim_processes", size)
        if procs:
            assert median(procs) < 0.1, (size, procs)
        same = tlb("dualmap", "flip", size)
        if same:
            assert median(same) < 0.1, (size, same)  # nothing changes protection
    if not checked:
        pytest.skip("every victim lost its CPU to other work during the timed loops: the machine was busy")


def test_dualmap_overhead_rows(quick_run):
    page = int(quick_run.meta["page_size"])
    for s in LINUX:
        rs = rows(quick_run, "dualmap_overhead", strategy=s)
        assert all(r["status"] == "ok" for r in rs), s
        assert {int(r["size_bytes"]) for r in rs if r["variant"] == "setup"} == {4096, 1 << 20}
        assert {int(r["size_bytes"]) for r in rs if r["variant"] == "steady"} == {page}
        assert {int(r["size_bytes"]) // page for r in rs if r["variant"] == "exec_span"} == {1, 4096}


def test_icache_flush_methods_say_where_they_run(quick_run):
    arch = quick_run.meta["arch"]
    for s in ("rwx", "dualmap"):
        by_variant = {}
        for r in rows(quick_run, "icache_flush", strategy=s):
            by_variant.setdefault(r["variant"], []).append(r)
        assert all(r["status"] == "ok" for r in by_variant["builtin"])
        assert {int(r["size_bytes"]) for r in by_variant["builtin"]} == {64, 4096, 1 << 20}
        assert all(r["status"] == "unsupported" and "macOS" in r["reason"]
                   for r in by_variant["sys_icache_invalidate"])
        if arch == "x86_64":
            assert all(r["status"] == "unsupported" and "aarch64" in r["reason"] for r in by_variant["manual"])
            assert all(r["status"] == "ok" for r in by_variant["none"] + by_variant["cpuid"])
            for r in by_variant["serialize"]:
                assert r["status"] == "ok" or "SERIALIZE" in r["reason"], r
        mb = by_variant["membarrier"]
        if mb[0]["status"] != "unsupported":
            assert all(ok_or_busy(r) for r in mb)
            assert {int(r["victims"]) for r in mb} == {0, ncpu(quick_run) - 1}
        else:
            assert len(mb) == 1 and "membarrier" in mb[0]["reason"].lower(), mb
    for r in rows(quick_run, "icache_flush", strategy="mprotect"):
        assert r["status"] == "unsupported" and r["reason"].startswith("question does not apply"), r


def test_thread_contention_rows(quick_run):
    top = 2 * ncpu(quick_run)
    for s in LINUX:
        for v in ("private", "shared"):
            rs = rows(quick_run, "thread_contention", strategy=s, variant=v)
            assert all(r["status"] == "ok" and r["victims"] == "0" for r in rs), (s, v)
            assert {int(r["threads"]) for r in rs} == {1, top}


def test_thread_contention_ns_per_op_is_per_thread(quick_run):
    """ns_per_op is wall time per op of one thread (throughput = threads /
    ns_per_op) and iterations counts the ops of all threads, so ns_per_op x
    iterations / threads is one thread's timed wall time, which Google
    Benchmark makes last at least the case's min_time (a quarter of the run's,
    at least 2 ms). Per op of all threads it would be threads times shorter."""
    min_time_ns = max(quick_run.meta["settings"]["min_time_s"] / 4, 0.002) * 1e9
    rs = [r for r in rows(quick_run, "thread_contention") if r["status"] == "ok"]
    assert any(int(r["threads"]) > 1 for r in rs)
    for r in rs:
        wall = float(r["ns_per_op"]) * int(r["iterations"]) / int(r["threads"])
        assert wall >= 0.99 * min_time_ns, (r["strategy"], r["variant"], r["threads"], wall)


# --- fault injection (test build) -------------------------------------------------------------

def test_skipped_write_fails_every_measured_row(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", ",".join(SCENARIOS),
                      "--strategy", ",".join(LINUX), env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 1
    for scenario in SCENARIOS:
        measured = [r for r in rows(run, scenario) if r["status"] != "unsupported"]
        variants = {r["variant"] for r in measured}
        if scenario == "icache_flush":  # the methods that run here, at least the compiler's
            assert "builtin" in variants
        else:
            assert variants == VARIANTS[scenario], scenario
        for r in measured:
            assert r["status"] == "failed" and "verification failed" in r["reason"], r


def test_running_out_of_mappings_is_a_failed_row(wxbench_test, tmp_path):
    limit = Path("/proc/sys/vm/max_map_count")
    if not limit.exists():
        pytest.skip("no vm.max_map_count on this OS")
    before = limit.read_text()
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "dualmap_overhead",
                      "--strategy", "mprotect,dualmap", env={"WXBENCH_TEST_INJECT": "map_exhaust"})
    assert limit.read_text() == before  # the system limit is never changed
    assert run.rc == 1
    failed = rows(run, "dualmap_overhead", strategy="dualmap", variant="setup")
    assert failed and all(r["status"] == "failed" for r in failed)
    for r in failed:
        assert "mmap" in r["reason"] and "Cannot allocate memory" in r["reason"], r
        assert "max_map_count" in r["reason"], r
    # room for one more mapping is enough for a one-view strategy
    assert all(r["status"] == "ok" for r in rows(run, "dualmap_overhead", strategy="mprotect"))
    assert not any(r["status"] == "crashed" for r in run.rows)


def test_victims_that_stop_running_fail_the_row(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "mprotect_tlb,icache_flush",
                      "--strategy", "mprotect,rwx", env={"WXBENCH_TEST_INJECT": "victims_stall"})
    if ncpu(run) < 2:
        pytest.skip("one CPU: no victims are swept")
    assert run.rc == 1
    tlb = rows(run, "mprotect_tlb", strategy="mprotect")
    for r in tlb:
        if int(r["victims"]) == 0:
            assert r["status"] == "ok", r
        else:
            assert r["status"] == "failed" and "made no progress during the timed loop" in r["reason"], r
    assert any(r["variant"] == "flip_victim_processes" for r in tlb)
    mb = rows(run, "icache_flush", strategy="rwx", variant="membarrier")
    if mb[0]["status"] != "unsupported":
        for r in mb:
            want = "ok" if r["victims"] == "0" else "failed"
            assert r["status"] == want, r


# --- aarch64 manual flush under emulation -----------------------------------------------------

def test_manual_flush_under_qemu(tmp_path):
    cc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if not cc or not qemu:
        pytest.skip("needs aarch64-linux-gnu-gcc and qemu-aarch64")
    exe = tmp_path / "icache_manual"
    build = subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-o", str(exe),
                            "tests/cross/icache_manual.c", "bench/codegen.c"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, QEMU_LD_PREFIX="/usr/aarch64-linux-gnu")
    p = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and p.stdout.rstrip().endswith("ok"), p.stdout + p.stderr
