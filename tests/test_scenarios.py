"""Scenarios mprotect_tlb, dualmap_overhead, icache_flush and thread_contention:
their rows under --quick, TLB shootdowns with thread victims against process
victims, verification failures when the write is skipped, running out of
mappings, victims that stop running, the aarch64 manual flush under qemu, and
the write_code paths through the test build's test_hook strategy (writable
only inside write_code, like mapjit_callback on a Mac, built on mprotect).

Expectations come from the platform (conftest.Platform): which strategies run
here, the core classes single-thread cases are measured on (P and E on Apple
silicon: every measured single-thread case, with or without victims, has its
repetitions once per class), where TLB shootdowns are counted, and which
icache_flush methods exist per OS and architecture (docs/scenarios.md).
Every case a scenario registers here is listed below, so a case that appears,
vanishes or changes status fails the test."""
import ctypes
import math
import os
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from conftest import (NO_SWITCH_STRATEGIES, ROOT, USER_STRATEGIES, WRITE_CODE_STRATEGIES, assert_exit_code,
                      assert_measured, assert_unsupported_once, run_wxbench, victim_lost)
from conftest import ok_reason

SCENARIOS = ("mprotect_tlb", "dualmap_overhead", "icache_flush", "thread_contention")
VARIANTS = {
    "mprotect_tlb": ("flip", "noop", "flip_victim_processes"),
    "dualmap_overhead": ("setup", "steady", "exec_span"),
    "icache_flush": ("none", "builtin", "manual", "cpuid", "serialize", "membarrier", "sys_icache_invalidate"),
    "thread_contention": ("private", "shared"),
}
STATUSES = {"ok", "unsupported", "failed", "crashed", "timeout"}
QUICK_REPETITIONS = 3
QUICK_TLB_PAGES = (1, 1024)
QUICK_SETUP_SIZES = (4096, 1 << 20)
QUICK_SPAN_PAGES = (1, 4096)
QUICK_ICACHE_SIZES = (64, 4096, 1 << 20)
SLOT = 128  # thread_contention/shared: bytes per thread's stub
NOT_APPLICABLE = "question does not apply"
# mprotect_tlb/noop for a strategy writable only inside write_code
NO_STATE_REQUEST = "no request for the state in force exists"

MEASURED = ("measured",)


def unsupported(*words):
    return ("unsupported",) + words


def ncpu(run):
    return int(run.meta["cores"]["allowed"])


def top_victims(run):
    """The largest victim count swept: ncpu-1, at most WX_VICTIMS_MAX (64)."""
    return min(ncpu(run) - 1, 64)


def rows(run, scenario, **kw):
    return run.select(scenario=scenario, **kw)


def median(xs):
    return statistics.median(xs)


def ok_or_lost(r):
    """ok, or failed because a victim lost its CPU to other programs."""
    return r["status"] == "ok" or victim_lost(r)


# --- what this platform must give -------------------------------------------------------------

def has_serialize(plat):
    """Whether the CPU has SERIALIZE: Linux's cpuinfo flags say it (from
    CPUID, as wxbench reads it); None where this test cannot tell."""
    if plat.arch != "x86_64":
        return False
    if not plat.linux:
        return None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return "serialize" in line.split(":", 1)[1].split()
    return None


MEMBARRIER_NR = {"x86_64": 324, "arm64": 283}
MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 5


def membarrier_sync_core(plat):
    """Whether this kernel offers MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    (membarrier(MEMBARRIER_CMD_QUERY), as icache_flush asks it)."""
    if not plat.linux:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    mask = libc.syscall(MEMBARRIER_NR[plat.arch], 0, 0)
    return mask >= 0 and bool(mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)


def icache_method(plat, method):
    """MEASURED, or unsupported(words its reason says), for an icache_flush
    method here (scenarios/icache_flush.c, method_available); None where
    this test cannot tell (SERIALIZE outside Linux)."""
    x86, arm = plat.arch == "x86_64", plat.arch == "arm64"
    if method == "none":
        return MEASURED if x86 else unsupported("there is no flush-free baseline")
    if method == "builtin":
        return MEASURED
    if method == "manual":
        if arm and plat.linux:
            return MEASURED
        return unsupported("CTR_EL0 is not readable from user space") if arm else unsupported("needs aarch64")
    if method == "cpuid":
        return MEASURED if x86 else unsupported("needs x86_64 (CPUID)")
    if method == "serialize":
        if not x86:
            return unsupported("needs x86_64 (SERIALIZE)")
        has = has_serialize(plat)
        return None if has is None else MEASURED if has else unsupported("this CPU lacks SERIALIZE")
    if method == "membarrier":
        if not plat.linux:
            return unsupported("needs Linux membarrier(2)")
        return MEASURED if membarrier_sync_core(plat) else unsupported("MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE")
    if method == "sys_icache_invalidate":
        return MEASURED if plat.macos else unsupported("needs macOS")
    raise AssertionError(method)


def expected_cases(plat, run, scenario, strategy):
    """{(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}
    for every case scenario registers under --quick for strategy here."""
    page = int(run.meta["page_size"])
    victims = sorted({0, top_victims(run)})  # --quick: 0 and ncpu-1
    every = {(v, 0, 0, 1): unsupported(plat.why(strategy) if not plat.runs(strategy) else NOT_APPLICABLE)
             for v in VARIANTS[scenario]}
    if not plat.runs(strategy):
        return every
    cases = {}
    if scenario == "mprotect_tlb":
        if strategy == "rwx":
            return every  # never changes protection
        for v in VARIANTS[scenario]:
            if v == "noop" and strategy in WRITE_CODE_STRATEGIES:
                cases[(v, 0, 0, 1)] = unsupported(NO_STATE_REQUEST, "write_code")
                continue
            for pages in QUICK_TLB_PAGES:
                for k in victims:
                    if v != "flip_victim_processes" or k > 0:
                        cases[(v, k, pages * page, 1)] = MEASURED
    elif scenario == "dualmap_overhead":
        for size in QUICK_SETUP_SIZES:
            if size % page == 0:  # 4 KiB is no whole number of 16 KiB pages
                cases[("setup", 0, size, 1)] = MEASURED
        cases[("steady", 0, page, 1)] = MEASURED
        for pages in QUICK_SPAN_PAGES:
            cases[("exec_span", 0, pages * page, 1)] = MEASURED
    elif scenario == "icache_flush":
        if strategy not in NO_SWITCH_STRATEGIES:
            return every  # the flush is timed where nothing switches
        for m in VARIANTS[scenario]:
            want = icache_method(plat, m)
            if want is None:  # decided by the rows, checked against the reason
                got = rows(run, scenario, strategy=strategy, variant=m)
                want = unsupported("this CPU lacks SERIALIZE") if got and got[0]["status"] == "unsupported" \
                    else MEASURED
            if want != MEASURED:
                cases[(m, 0, 0, 1)] = want
                continue
            for size in QUICK_ICACHE_SIZES:
                for k in (victims if m == "membarrier" else [0]):
                    cases[(m, k, size, 1)] = MEASURED
    elif scenario == "thread_contention":
        for t in sorted({1, 2 * ncpu(run)}):
            cases[("private", 0, page, t)] = MEASURED
            cases[("shared", 0, (t * SLOT + page - 1) // page * page, t)] = MEASURED
    return cases


def assert_rows_as_expected(run, plat, scenario, strategy, accept=ok_or_lost):
    """The rows of scenario/strategy are exactly the expected cases: each
    measured case with its repetitions per core class (ok, or failed because
    its victims lost their CPUs), each unsupported case one row saying why."""
    want = expected_cases(plat, run, scenario, strategy)
    got = {}
    for r in rows(run, scenario, strategy=strategy):
        got.setdefault((r["variant"], int(r["victims"]), int(r["size_bytes"]), int(r["threads"])), []).append(r)
    assert set(got) == set(want), (scenario, strategy, sorted(set(got) ^ set(want)))
    for key, how in want.items():
        what = f"{scenario}/{strategy}/{'/'.join(map(str, key))}"
        if how == MEASURED:
            assert_measured(got[key], plat, QUICK_REPETITIONS, what, accept=accept)
        else:
            assert_unsupported_once(got[key], what, *how[1:])
            if how[1] == NOT_APPLICABLE:
                assert got[key][0]["reason"].startswith(NOT_APPLICABLE), got[key]
    return want


# --- every scenario under --quick -------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rows_are_well_formed(quick_run, scenario):
    assert_exit_code(quick_run)  # 0, or 1 only for rows whose victims lost their CPU to other programs
    rs = rows(quick_run, scenario)
    assert rs, scenario
    for r in rs:
        assert None not in r and len(r) == 20, r
        assert r["status"] in STATUSES
        assert r["variant"] in VARIANTS[scenario], r
        assert int(r["threads"]) >= 1 and int(r["victims"]) >= 0 and int(r["batch"]) == 1
        if r["status"] == "ok":
            ns = float(r["ns_per_op"])
            assert ns > 0 and math.isfinite(ns), r
            assert int(r["iterations"]) > 0, r
            # empty, but a P/E row may say its thread left its core class (or a MAP_JIT row, an unenforced toggle)
            assert ok_reason(r), r
        else:
            # nothing fails in a --quick run but rows whose victims lost their CPU to other work
            assert r["status"] == "unsupported" or victim_lost(r), r
            assert r["ns_per_op"] == "" and len(r["reason"].strip()) > 10, r


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rows_are_this_platform(quick_run, platform, scenario):
    """Every strategy, every case this platform registers: measured where
    the strategy and the method run here, else unsupported saying why (with
    the platform's words for strategies that cannot run on it)."""
    assert {r["strategy"] for r in rows(quick_run, scenario)} == set(USER_STRATEGIES)
    measured = set()
    for s in USER_STRATEGIES:
        want = assert_rows_as_expected(quick_run, platform, scenario, s)
        if any(how == MEASURED for how in want.values()):
            measured.add(s)
        for w in platform.must_not_run.get(s, []):
            assert all(w in r["reason"] for r in rows(quick_run, scenario, strategy=s)), (s, w)
    # the strategies that must run here are measured (icache_flush: those that never switch)
    must = platform.must_run & set(NO_SWITCH_STRATEGIES) if scenario == "icache_flush" else platform.must_run
    must -= {"rwx"} if scenario == "mprotect_tlb" else set()
    assert must <= measured, (scenario, must - measured)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tlb_column(quick_run, platform, scenario):
    """Counted exactly where /proc/interrupts has a TLB row (x86 Linux);
    empty on arm64 Linux and on macOS."""
    ok = [r for r in rows(quick_run, scenario) if r["status"] == "ok"]
    assert ok, scenario
    if platform.tlb_counted:
        assert all(r["tlb_shootdowns_per_op"] != "" and float(r["tlb_shootdowns_per_op"]) >= 0 for r in ok)
    else:
        assert all(r["tlb_shootdowns_per_op"] == "" for r in ok)


def test_mprotect_tlb_shootdowns_reach_threads_not_processes(quick_run, platform):
    if not platform.tlb_counted:
        pytest.skip(f"TLB shootdowns are counted only where /proc/interrupts has a TLB: row (x86 Linux); "
                    f"not on {platform.os} {platform.arch}")
    if ncpu(quick_run) < 2:
        pytest.skip("one CPU: no room for a victim")
    if not platform.runs("dualmap"):
        pytest.skip(f"dualmap, the no-switch contrast, does not run here: {platform.why('dualmap')}")

    def tlb(strategy, variant, size):
        """Shootdowns per op of the repetitions whose victims held their
        CPUs, at the largest victim count --quick sweeps (ncpu-1)."""
        rs = rows(quick_run, "mprotect_tlb", strategy=strategy, variant=variant, victims=top_victims(quick_run),
                  size_bytes=size)
        assert len(rs) == 3 and all(ok_or_lost(r) for r in rs), rs
        ok = [r for r in rs if r["status"] == "ok"]
        assert all(r["tlb_shootdowns_per_op"] != "" for r in ok), ok
        return [float(r["tlb_shootdowns_per_op"]) for r in ok]

    page = int(quick_run.meta["page_size"])
    checked = 0
    for size in (page, 1024 * page):
        threads = tlb("mprotect", "flip", size)
        if threads:
            assert min(threads) > 0.5, (size, threads)  # each mprotect interrupts the victims' CPUs
            checked += 1
        procs = tlb("mprotect", "flip_victim_processes", size)
        if procs:
            assert median(procs) < 0.1, (size, procs)
        same = tlb("dualmap", "flip", size)
        if same:
            assert median(same) < 0.1, (size, same)  # nothing changes protection
    if not checked:
        pytest.skip("every victim lost its CPU to other work during the timed loops: the machine was busy")


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


# --- a write_code strategy here (test_hook) ---------------------------------------------------

@pytest.fixture(scope="module")
def hook_run(wxbench_test, tmp_path_factory):
    """The four scenarios through test_hook: writable only inside
    write_code, as mapjit_callback is on a Mac."""
    out = tmp_path_factory.mktemp("hook4") / "run"
    return run_wxbench(wxbench_test, out, "--quick", "--scenario", ",".join(SCENARIOS), "--strategy", "test_hook",
                       timeout=300)


def test_write_code_strategy_rows_are_ok_or_say_why(hook_run, platform):
    """Never `failed` (but for victims that lost their CPU to other
    programs): every row ok (verified) or unsupported for a stated reason,
    in the cases a begin_write strategy of the same kind gives."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_exit_code(hook_run)
    assert hook_run.rows and {r["strategy"] for r in hook_run.rows} == {"test_hook"}
    for scenario in SCENARIOS:
        assert_rows_as_expected(hook_run, platform, scenario, "test_hook")
    noop = rows(hook_run, "mprotect_tlb", variant="noop")
    assert_unsupported_once(noop, "mprotect_tlb/test_hook/noop", NO_STATE_REQUEST, "write_code", "timed by flip")
    for r in rows(hook_run, "icache_flush"):
        assert r["reason"].startswith(f"{NOT_APPLICABLE}: test_hook must change permissions"), r
    assert hook_run.meta["rows"]["crashed"] == 0 and hook_run.meta["rows"]["timeout"] == 0


def test_write_code_flip_is_a_round_trip(hook_run, quick_run, platform):
    """Sanity, not a budget: test_hook's flip is write_code(r, 0, NULL, 0),
    two mprotect calls, against dualmap's (mprotect_tlb's no-switch line:
    two empty calls). Per core class."""
    if not platform.runs("dualmap"):
        pytest.skip(f"dualmap, mprotect_tlb's no-switch contrast, does not run here: {platform.why('dualmap')}")
    page = int(hook_run.meta["page_size"])

    def flip(run, strategy, cls):
        xs = [float(r["ns_per_op"]) for r in rows(run, "mprotect_tlb", strategy=strategy, variant="flip",
                                                  victims=0, size_bytes=page, core_class=cls)]
        assert len(xs) == QUICK_REPETITIONS, (strategy, cls, xs)
        return median(xs)
    for cls in platform.classes:
        assert flip(hook_run, "test_hook", cls) > 10 * flip(quick_run, "dualmap", cls), cls


# --- fault injection (test build) -------------------------------------------------------------

def test_skipped_write_fails_every_measured_row(wxbench_test, tmp_path, platform):
    """Every strategy that runs here, test_hook (write_code) included: each
    case that is measured in a normal run fails verification, the others
    stay unsupported."""
    strategies = platform.running(USER_STRATEGIES + ("test_hook",))
    assert platform.must_run <= set(strategies) and "test_hook" in strategies
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", ",".join(SCENARIOS),
                      "--strategy", ",".join(strategies), env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 1

    def verification_failed(r):
        return r["status"] == "failed" and "verification failed" in r["reason"]

    for scenario in SCENARIOS:
        for s in strategies:
            assert_rows_as_expected(run, platform, scenario, s, accept=verification_failed)
        measured = {r["variant"] for r in rows(run, scenario) if r["status"] != "unsupported"}
        if scenario == "icache_flush":  # the methods that run here, at least the compiler's
            assert "builtin" in measured or not any(platform.runs(s) for s in NO_SWITCH_STRATEGIES), measured
        elif scenario == "mprotect_tlb" and ncpu(run) < 2:
            assert measured == set(VARIANTS[scenario]) - {"flip_victim_processes"}, measured
        else:
            assert measured == set(VARIANTS[scenario]), (scenario, measured)
        hook = [r for r in rows(run, scenario, strategy="test_hook") if r["status"] != "unsupported"]
        assert (scenario == "icache_flush") is (not hook), (scenario, hook)  # write_code rows verified too


def test_running_out_of_mappings_is_a_failed_row(wxbench_test, tmp_path):
    limit = Path("/proc/sys/vm/max_map_count")
    if not limit.exists():
        pytest.skip("no /proc/sys/vm/max_map_count on this OS: map_exhaust fills Linux's per-process mapping limit")
    before = limit.read_text()
    hog_limit = 1048576  # HOG_LIMIT in scenarios/dualmap_overhead.c
    if int(before) > hog_limit:
        pytest.skip(f"vm.max_map_count is {before.strip()}: the test build's map_exhaust refuses to fill more than "
                    f"{hog_limit} mappings (it would take minutes and gigabytes), so the limit cannot be reached here")
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


def test_victims_that_stop_running_fail_the_row(wxbench_test, tmp_path, platform):
    """Every case with victims fails, every case without is ok. One
    repetition per case: each timed loop with stalled victims first waits
    out the 50 ms settle limit, so more repetitions only cost time."""
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--repetitions", "1", "--scenario",
                      "mprotect_tlb,icache_flush", "--strategy", "mprotect,rwx",
                      env={"WXBENCH_TEST_INJECT": "victims_stall"})
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
    assert {r["repetition"] for r in tlb} == {"1"}
    mb = rows(run, "icache_flush", strategy="rwx", variant="membarrier")
    if platform.runs("rwx") and icache_method(platform, "membarrier") == MEASURED:
        assert {r["victims"] for r in mb} == {"0", str(top_victims(run))}
        for r in mb:
            if r["victims"] == "0":
                assert r["status"] == "ok", r
            else:
                assert r["status"] == "failed" and "made no progress during the timed loop" in r["reason"], r
    else:
        assert_unsupported_once(mb, "icache_flush/rwx/membarrier")


# --- aarch64 manual flush under emulation -----------------------------------------------------

def test_manual_flush_under_qemu(tmp_path):
    cc, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if not cc or not qemu:
        pytest.skip("needs aarch64-linux-gnu-gcc and qemu-aarch64 (make test-cross installs them on Linux x86_64)")
    exe = tmp_path / "icache_manual"
    build = subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-o", str(exe),
                            "tests/cross/icache_manual.c", "bench/core/codegen.c"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    env = dict(os.environ, QEMU_LD_PREFIX="/usr/aarch64-linux-gnu")
    p = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and p.stdout.rstrip().endswith("ok"), p.stdout + p.stderr
