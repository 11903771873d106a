"""jit_workload: what W^X costs a JIT that compiles functions, patches inline
caches and patches code another thread runs. Rows under --quick (every
function verified), jit_cross_thread.csv in its documented shape, injected
faults failing every verified row, and the write_code paths through the test
build's test_hook (writable only inside write_code, like mapjit_callback,
built on mprotect), which run wherever mprotect runs.

Expectations come from the platform (conftest.Platform)."""

import pytest

from conftest import (NO_SWITCH_STRATEGIES, QUICK_REPETITIONS, SCENARIO_TABLE, assert_baseline_rows,
                      assert_exit_code, assert_measured, assert_unsupported_once, median_ns, ok_or_lost)
from conftest import PROCESS_WIDE_SWITCH, injected_run, read_csv

SCENARIO = "jit_workload"
CROSS_HEADER = "strategy,variant,core_class,repetition,patches,calls,current,in_flight,stale,torn,faulted"
JIT_VARIANTS = ("compile", "compile_baseline", "ic_patch", "ic_patch_baseline", "cross_thread",
                "cross_thread_nosync")
SIZES = (64, 256, 1024)
BATCHES = (1, 4, 16, 64, 256)
QUICK_FUNCTIONS = 256
VERIFIED = ("compile", "compile_baseline", "ic_patch", "ic_patch_baseline", "cross_thread", "cross_thread_nosync")


def assert_jit_rows(run, plat, strategy, reps=QUICK_REPETITIONS, functions=QUICK_FUNCTIONS):
    """jit_workload's rows for a strategy that runs here: every compile case
    of the sweep measured with exactly M functions per repetition, ic_patch
    measured, cross_thread measured or unsupported for a stated reason."""
    for v in ("compile", "compile_baseline"):
        for size in SIZES:
            for batch in BATCHES:
                rows = run.select(scenario=SCENARIO, strategy=strategy, variant=v, size_bytes=size, batch=batch)
                what = f"jit_workload/{strategy}/{v}/{size}/{batch}"
                if v == "compile_baseline":
                    assert_baseline_rows(rows, plat, reps, what)
                else:
                    assert_measured(rows, plat, reps, what)
                assert all(int(r["iterations"]) == functions for r in rows if r["status"] == "ok"), rows
    assert_measured(run.select(scenario=SCENARIO, strategy=strategy, variant="ic_patch"), plat, reps,
                    f"jit_workload/{strategy}/ic_patch")
    assert_baseline_rows(run.select(scenario=SCENARIO, strategy=strategy, variant="ic_patch_baseline"), plat,
                         reps, f"jit_workload/{strategy}/ic_patch_baseline")
    cpus = plat.meta["cores"]["allowed"]
    for v in ("cross_thread", "cross_thread_nosync"):
        rows = run.select(scenario=SCENARIO, strategy=strategy, variant=v)
        what = f"jit_workload/{strategy}/{v}"
        assert rows and all(r["victims"] == "1" and r["threads"] == "1" for r in rows), (what, rows)
        if cpus < 2:
            assert_unsupported_once(rows, what, "needs 2 CPUs")
        elif v == "cross_thread" and not plat.linux:
            assert_unsupported_once(rows, what, "membarrier")  # Linux only
        elif rows[0]["status"] == "unsupported" and plat.csm and strategy in PROCESS_WIDE_SWITCH:
            assert_unsupported_once(rows, what, "code-signing monitor")  # its faults would be SIGKILLs
        elif rows[0]["status"] == "unsupported":
            assert v == "cross_thread", (what, rows)  # only SYNC_CORE may be missing (old kernels)
            assert_unsupported_once(rows, what, "membarrier")
        else:
            # the executing thread is the case's victim: failed only for a busy CPU, within the allowance
            assert_measured(rows, plat, reps, what, accept=ok_or_lost)


def assert_cross_side_file(run, strategies=None):
    """jit_cross_thread.csv: one row per ok cross_thread* row (same strategy,
    variant, core class and repetition), counts adding up."""
    path = run.out / "jit_cross_thread.csv"
    ok = [r for r in run.rows if r["scenario"] == SCENARIO and r["variant"].startswith("cross_thread")
          and r["status"] == "ok" and (strategies is None or r["strategy"] in strategies)]
    if not ok:
        assert not path.exists()
        return None
    header, side = read_csv(path)
    assert header == CROSS_HEADER
    keyed = {}
    for r in side:
        key = (r["strategy"], r["variant"], r["core_class"], r["repetition"])
        assert key not in keyed, key
        keyed[key] = r
    assert set(keyed) == {(r["strategy"], r["variant"], r["core_class"], r["repetition"]) for r in ok}
    for r in ok:
        c = keyed[(r["strategy"], r["variant"], r["core_class"], r["repetition"])]
        n = {k: int(c[k]) for k in CROSS_HEADER.split(",")[4:]}
        assert n["patches"] == int(r["iterations"])
        assert n["calls"] > 0
        assert n["current"] + n["in_flight"] + n["stale"] + n["torn"] + n["faulted"] == n["calls"], c
        if r["strategy"] in NO_SWITCH_STRATEGIES:
            assert n["faulted"] == 0, c  # the exec view is executable at all times
    return keyed


def test_table_variants():
    assert SCENARIO_TABLE[SCENARIO]["variants"] == list(JIT_VARIANTS)


def test_rows_under_quick(quick_run, platform):
    for s in platform.running():
        assert_jit_rows(quick_run, platform, s)
    for s in platform.not_running():
        rows = quick_run.select(scenario=SCENARIO, strategy=s)
        assert {r["variant"] for r in rows} == set(JIT_VARIANTS)
        for r in rows:
            assert_unsupported_once([r], f"jit_workload/{s}/{r['variant']}", platform.why(s))


def test_batching_amortises_mprotect(quick_run, platform):
    """The point of the batch sweep: one mprotect pair per function costs
    more than one pair per 256 functions. Per core class."""
    for cls in platform.classes:
        for size in SIZES:
            one = median_ns(quick_run, scenario=SCENARIO, strategy="mprotect", variant="compile",
                            size_bytes=size, batch=1, core_class=cls)
            many = median_ns(quick_run, scenario=SCENARIO, strategy="mprotect", variant="compile",
                             size_bytes=size, batch=256, core_class=cls)
            assert one > 2 * many, (cls, size, one, many)


def test_cross_thread_counts_side_file(quick_run):
    if assert_cross_side_file(quick_run) is None:
        pytest.skip("no cross_thread row ran here")


@pytest.mark.parametrize("fault", ["corrupt_stub", "skip_write"])
def test_injected_faults_fail_every_verified_row(wxbench_test, tmp_path, platform, fault):
    run, strategies = injected_run(wxbench_test, tmp_path / "r", platform, SCENARIO, fault)
    assert run.rc == 1
    for s in strategies:
        for v in VERIFIED:
            every = run.select(scenario=SCENARIO, strategy=s, variant=v)
            rows = [r for r in every if r["status"] != "unsupported"]
            if v.endswith("_baseline") and not platform.baseline_memory:
                continue
            if v.startswith("cross_thread") and every and not rows:
                # not measured here (no membarrier, one CPU, the code-signing monitor): as in the quick run
                assert_unsupported_once(every, f"{s}/{v}")
                assert any(w in every[0]["reason"] for w in ("membarrier", "needs 2 CPUs", "code-signing monitor")), every
                continue
            assert rows, (s, v)
            assert all(r["status"] == "failed" and "verification failed" in r["reason"] for r in rows), (s, v, rows)
    assert not (run.out / "jit_cross_thread.csv").exists(), "counts of failed rows must not be recorded"


# ------------------------------------------------- a write_code strategy here

def test_write_code_strategy_rows_are_ok_or_say_why(hook_run, platform):
    """Never `failed`: every row ok (verified) or unsupported for a stated
    reason, in the numbers a begin_write strategy would give."""
    assert_exit_code(hook_run)
    rows = hook_run.select(scenario=SCENARIO)
    assert rows and {r["strategy"] for r in rows} == {"test_hook"}
    for r in rows:
        assert r["status"] in ("ok", "unsupported"), r
        if r["status"] == "unsupported":
            assert r["reason"].strip(), r
    assert_jit_rows(hook_run, platform, "test_hook")


def test_write_code_strategy_cross_thread_counts(hook_run):
    """cross_thread through the hook: counted like any other strategy; the
    executing thread faults only while mprotect holds the page RW."""
    keyed = assert_cross_side_file(hook_run, {"test_hook"})
    if keyed is None:
        pytest.skip("no cross_thread row ran here (fewer than 2 CPUs)")
    assert {k[0] for k in keyed} == {"test_hook"}


def test_write_code_strategy_timings_are_plausible(hook_run, platform):
    """Sanity, not a budget: each window of test_hook is two mprotect calls
    around a copy, so batching amortises it as it does for mprotect, and an
    ic_patch costs more than the same patch on the baseline's memory, where
    nothing is switched. Per core class."""
    for cls in platform.classes:
        for size in SIZES:
            one = median_ns(hook_run, scenario=SCENARIO, variant="compile", size_bytes=size, batch=1,
                            core_class=cls)
            many = median_ns(hook_run, scenario=SCENARIO, variant="compile", size_bytes=size, batch=256,
                             core_class=cls)
            assert one > 2 * many, (cls, size, one, many)
        if platform.baseline_memory:
            patch = median_ns(hook_run, scenario=SCENARIO, variant="ic_patch", core_class=cls)
            base = median_ns(hook_run, scenario=SCENARIO, variant="ic_patch_baseline", core_class=cls)
            assert patch > 2 * base, (cls, patch, base)
