"""mprotect_tlb: what one protection change costs as the address space gets
busy. Every case it registers under --quick, per strategy (so a case that
appears, vanishes or changes status fails), TLB shootdowns with thread
victims against process victims, the write_code paths through the test
build's test_hook, verification failures when the write is skipped, and
victims that stop running.

Expectations come from the platform (conftest.Platform): which strategies run
here, the core classes single-thread cases are measured on (P and E on Apple
silicon: every measured single-thread case, with or without victims, has its
repetitions once per class), and where TLB shootdowns are counted."""
import statistics

import pytest

from conftest import (MEASURED, QUICK_REPETITIONS, SCENARIO_TABLE, WRITE_CODE_STRATEGIES,
                      assert_every_strategy_as_expected, assert_rows_as_expected, assert_variants_and_single_batch,
                      assert_unsupported_once, every_variant_unsupported, flag, ncpu, ok_or_lost, run_wxbench,
                      skipped_write_run, top_victims, unsupported)

SCENARIO = "mprotect_tlb"
VARIANTS = ("flip", "noop", "flip_victim_processes")
QUICK_TLB_PAGES = (1, 1024)
# noop for a strategy writable only inside write_code
NO_STATE_REQUEST = "no request for the state in force exists"


def expected_cases(plat, run, strategy):
    """{(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}
    for every case mprotect_tlb registers under --quick for strategy here."""
    every = every_variant_unsupported(plat, SCENARIO, strategy)
    if not plat.runs(strategy) or flag(strategy, "always_rwx"):
        return every  # an always-RWX strategy never changes protection
    page = int(run.meta["page_size"])
    victims = sorted({0, top_victims(run)})  # --quick: 0 and ncpu-1
    cases = {}
    for v in VARIANTS:
        if v == "noop" and strategy in WRITE_CODE_STRATEGIES:
            cases[(v, 0, 0, 1)] = unsupported(NO_STATE_REQUEST, "write_code")
            continue
        for pages in QUICK_TLB_PAGES:
            for k in victims:
                if v != "flip_victim_processes" or k > 0:
                    cases[(v, k, pages * page, 1)] = MEASURED
    return cases


def test_table_variants():
    assert SCENARIO_TABLE[SCENARIO]["variants"] == list(VARIANTS)


def test_rows_are_well_formed(quick_run):
    assert_variants_and_single_batch(quick_run, SCENARIO, VARIANTS)


def test_rows_are_this_platform(quick_run, platform):
    """Every strategy, every case this platform registers: measured where
    the strategy runs here (rwx: the question does not apply), else
    unsupported saying why (with the platform's words for strategies that
    cannot run on it)."""
    measured = assert_every_strategy_as_expected(quick_run, platform, SCENARIO, expected_cases)
    must = platform.must_run - {"rwx"}
    assert must <= measured, must - measured


def test_shootdowns_reach_threads_not_processes(quick_run, platform):
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
        rs = quick_run.select(scenario=SCENARIO, strategy=strategy, variant=variant,
                              victims=top_victims(quick_run), size_bytes=size)
        assert len(rs) == 3 and all(ok_or_lost(r) for r in rs), rs
        ok = [r for r in rs if r["status"] == "ok"]
        assert all(r["tlb_shootdowns_per_op"] != "" for r in ok), ok
        return [float(r["tlb_shootdowns_per_op"]) for r in ok]

    page = int(quick_run.meta["page_size"])
    checked = 0
    for size in (page, 1024 * page):
        threads = tlb("mprotect", "flip", size)
        if threads:
            # each round trip interrupts the victim's CPU (twice) whenever the victim runs there, which it
            # must for at least a quarter of the loop (WX_VICTIM_MIN_RUNNING): at least 2 x 0.25 per op,
            # less a margin for interrupts that come in while it was off its CPU
            assert min(threads) > 0.25, (size, threads)
            checked += 1
        procs = tlb("mprotect", "flip_victim_processes", size)
        if procs:
            assert statistics.median(procs) < 0.1, (size, procs)
        same = tlb("dualmap", "flip", size)
        if same:
            assert statistics.median(same) < 0.1, (size, same)  # nothing changes protection
    # the victims' allowance (conftest.victim_allowance) keeps at least half of each variant's rows ok,
    # so some size must have been checked: this test never skips itself into passing
    assert checked, "no mprotect_tlb/mprotect/flip row with victims was ok at any size"


# --- a write_code strategy here (test_hook) ---------------------------------------------------

def test_write_code_strategy_rows_are_ok_or_say_why(hook_run, platform):
    """Never `failed` (but for victims that lost their CPU to other
    programs): flip measured (verified), noop one unsupported row saying
    why."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_rows_as_expected(hook_run, platform, SCENARIO, "test_hook", expected_cases(platform, hook_run, "test_hook"))
    noop = hook_run.select(scenario=SCENARIO, variant="noop")
    assert_unsupported_once(noop, "mprotect_tlb/test_hook/noop", NO_STATE_REQUEST, "write_code", "timed by flip")


def test_write_code_flip_is_a_round_trip(hook_run, quick_run, platform):
    """Sanity, not a budget: test_hook's flip is write_code(r, 0, NULL, 0),
    two mprotect calls, against dualmap's (mprotect_tlb's no-switch line:
    two empty calls). Per core class."""
    if not platform.runs("dualmap"):
        pytest.skip(f"dualmap, mprotect_tlb's no-switch contrast, does not run here: {platform.why('dualmap')}")
    page = int(hook_run.meta["page_size"])

    def flip(run, strategy, cls):
        xs = [float(r["ns_per_op"]) for r in run.select(scenario=SCENARIO, strategy=strategy, variant="flip",
                                                        victims=0, size_bytes=page, core_class=cls)]
        assert len(xs) == QUICK_REPETITIONS, (strategy, cls, xs)
        return statistics.median(xs)
    for cls in platform.classes:
        assert flip(hook_run, "test_hook", cls) > 10 * flip(quick_run, "dualmap", cls), cls


# --- fault injection (test build) -------------------------------------------------------------

def test_skipped_write_fails_every_measured_row(wxbench_test, tmp_path, platform):
    """Every strategy that runs here, test_hook (write_code) included: each
    case that is measured in a normal run fails verification, the others
    stay unsupported."""
    run = skipped_write_run(wxbench_test, tmp_path / "r", platform, SCENARIO, expected_cases)
    measured = {r["variant"] for r in run.rows if r["status"] != "unsupported"}
    if ncpu(run) < 2:
        assert measured == set(VARIANTS) - {"flip_victim_processes"}, measured
    else:
        assert measured == set(VARIANTS), measured
    assert [r for r in run.select(strategy="test_hook") if r["status"] != "unsupported"]  # write_code rows verified


def test_victims_that_stop_running_fail_the_row(wxbench_test, tmp_path):
    """Every case with victims fails, every case without is ok. One
    repetition per case: each timed loop with stalled victims first waits
    out the 50 ms settle limit, so more repetitions only cost time."""
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--repetitions", "1", "--scenario", SCENARIO,
                      "--strategy", "mprotect", env={"WXBENCH_TEST_INJECT": "victims_stall"})
    if ncpu(run) < 2:
        pytest.skip("one CPU: no victims are swept")
    assert run.rc == 1
    tlb = run.select(scenario=SCENARIO, strategy="mprotect")
    for r in tlb:
        if int(r["victims"]) == 0:
            assert r["status"] == "ok", r
        else:
            assert r["status"] == "failed" and "made no progress during the timed loop" in r["reason"], r
    assert any(r["variant"] == "flip_victim_processes" for r in tlb)
    assert {r["repetition"] for r in tlb} == {"1"}


def test_victims_visit_every_page(wxbench_test, tmp_path, platform):
    """corrupt_last_page: the victims step over every page of the region, so a
    wrong stub on the last page stops them (not only the check after the loop)."""
    strategies = [s for s in ("mprotect", "dualmap") if platform.runs(s)]
    if int(platform.meta["cores"]["allowed"]) < 2 or not strategies:
        pytest.skip("needs 2 CPUs (a victim) and mprotect or dualmap")
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", SCENARIO, "--strategy",
                      ",".join(strategies), env={"WXBENCH_TEST_INJECT": "corrupt_last_page"})
    page = int(run.meta["page_size"])
    with_victims = [r for r in run.select(variant="flip") if r["victims"] != "0"]
    assert with_victims
    for r in with_victims:
        last = int(r["size_bytes"]) // page - 1
        assert r["status"] == "failed" and f"in the stub on page {last}, expected" in r["reason"], r
