"""icache_flush: what making new code visible to instruction fetch costs, per
method and size. Every case it registers under --quick, per strategy, which
methods exist per OS and architecture (docs/scenarios/icache_flush.md), the
write_code strategy (the question does not apply to it), verification
failures when the write is skipped, membarrier victims that stop running,
and the aarch64 manual flush under qemu.

Expectations come from the platform (conftest.Platform): which strategies run
here and the core classes single-thread cases are measured on."""
import ctypes
import os
import shutil
import subprocess

import pytest

from conftest import (MEASURED, NO_SWITCH_STRATEGIES, NOT_APPLICABLE, ROOT, SCENARIO_TABLE,
                      assert_every_strategy_as_expected, assert_rows_as_expected, assert_variants_and_single_batch,
                      assert_unsupported_once, every_variant_unsupported, ncpu, run_wxbench, skipped_write_run,
                      top_victims, unsupported)

SCENARIO = "icache_flush"
VARIANTS = ("none", "builtin", "manual", "cpuid", "serialize", "membarrier", "sys_icache_invalidate")
QUICK_ICACHE_SIZES = (64, 4096, 1 << 20)


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


def expected_cases(plat, run, strategy):
    """{(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}
    for every case icache_flush registers under --quick for strategy here:
    the flush is timed where nothing switches (no_switch strategies); the
    question does not apply to the others."""
    if not plat.runs(strategy) or strategy not in NO_SWITCH_STRATEGIES:
        return every_variant_unsupported(plat, SCENARIO, strategy)
    victims = sorted({0, top_victims(run)})  # --quick: 0 and ncpu-1
    cases = {}
    for m in VARIANTS:
        want = icache_method(plat, m)
        if want is None:  # decided by the rows, checked against the reason
            got = run.select(scenario=SCENARIO, strategy=strategy, variant=m)
            want = unsupported("this CPU lacks SERIALIZE") if got and got[0]["status"] == "unsupported" \
                else MEASURED
        if want != MEASURED:
            cases[(m, 0, 0, 1)] = want
            continue
        for size in QUICK_ICACHE_SIZES:
            for k in (victims if m == "membarrier" else [0]):
                cases[(m, k, size, 1)] = MEASURED
    return cases


def test_table_variants():
    assert SCENARIO_TABLE[SCENARIO]["variants"] == list(VARIANTS)


def test_rows_are_well_formed(quick_run):
    assert_variants_and_single_batch(quick_run, SCENARIO, VARIANTS)


def test_rows_are_this_platform(quick_run, platform):
    """Every strategy, every case this platform registers: the methods that
    exist here measured for the strategies that never switch, else
    unsupported saying why (with the platform's words for strategies that
    cannot run on it)."""
    measured = assert_every_strategy_as_expected(quick_run, platform, SCENARIO, expected_cases)
    must = platform.must_run & set(NO_SWITCH_STRATEGIES)
    assert must <= measured, must - measured


def test_write_code_strategy_does_not_apply(hook_run, platform):
    """test_hook must change permissions between writing and running code:
    one unsupported row per method saying the question does not apply."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_rows_as_expected(hook_run, platform, SCENARIO, "test_hook", expected_cases(platform, hook_run, "test_hook"))
    for r in hook_run.select(scenario=SCENARIO):
        assert r["reason"].startswith(f"{NOT_APPLICABLE}: test_hook must change permissions"), r


def test_skipped_write_fails_every_measured_row(wxbench_test, tmp_path, platform):
    """Every strategy that runs here: each method measured in a normal run
    fails verification (at least the compiler's, where a strategy that
    never switches runs); test_hook's rows stay unsupported."""
    run = skipped_write_run(wxbench_test, tmp_path / "r", platform, SCENARIO, expected_cases)
    measured = {r["variant"] for r in run.rows if r["status"] != "unsupported"}
    assert "builtin" in measured or not any(platform.runs(s) for s in NO_SWITCH_STRATEGIES), measured
    assert not [r for r in run.select(strategy="test_hook") if r["status"] != "unsupported"]


def test_membarrier_victims_that_stop_running_fail_the_row(wxbench_test, tmp_path, platform):
    """membarrier with victims fails, without is ok. One repetition per
    case: each timed loop with stalled victims first waits out the 50 ms
    settle limit, so more repetitions only cost time."""
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--repetitions", "1", "--scenario", SCENARIO,
                      "--strategy", "rwx", env={"WXBENCH_TEST_INJECT": "victims_stall"})
    if ncpu(run) < 2:
        pytest.skip("one CPU: no victims are swept")
    mb = run.select(scenario=SCENARIO, strategy="rwx", variant="membarrier")
    if platform.runs("rwx") and icache_method(platform, "membarrier") == MEASURED:
        assert run.rc == 1
        assert {r["victims"] for r in mb} == {"0", str(top_victims(run))}
        for r in mb:
            if r["victims"] == "0":
                assert r["status"] == "ok", r
            else:
                assert r["status"] == "failed" and "made no progress during the timed loop" in r["reason"], r
    else:
        assert run.rc == 0, run.stderr  # no case with victims
        assert_unsupported_once(mb, "icache_flush/rwx/membarrier")


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
