"""toggle_latency: what one switch between writable and executable costs.
Its rows under --quick for every strategy, the sanity of mprotect against a
strategy that never switches, the TLB column, the write_code strategy's
rows, and verification failures when the write is skipped (test build).

Expectations come from the platform (conftest.Platform): which strategies
must run here, which must not and why, and the core classes single-thread
cases are measured on."""
import statistics

import pytest

from conftest import (NO_SWITCH_STRATEGIES, QUICK_REPETITIONS, TOGGLE_VARIANTS, USER_STRATEGIES,
                      WRITE_CODE_STRATEGIES, assert_baseline_rows, assert_exit_code, assert_measured,
                      assert_toggle_rows, run_wxbench)


def test_rows_of_strategies_that_run_here(quick_run, platform):
    """Every variant of every strategy that runs here: ok, --quick's 3
    repetitions per core class (redundant does not exist for a write_code
    strategy; the baseline needs its memory)."""
    running = platform.running()
    assert platform.must_run <= set(running)
    for strategy in running:
        assert_toggle_rows(quick_run, platform, strategy)
    for r in quick_run.select(scenario="toggle_latency"):
        assert int(r["batch"]) == 1 and int(r["threads"]) == 1 and int(r["victims"]) == 0, r


def test_unsupported_rows_say_why(quick_run, platform):
    """A strategy that cannot run here gives one unsupported row per
    variant, with the reason --list gives (and the platform's words)."""
    for strategy in platform.not_running():
        assert_toggle_rows(quick_run, platform, strategy)
        for w in platform.must_not_run.get(strategy, []):
            assert all(w in r["reason"] for r in quick_run.select(scenario="toggle_latency", strategy=strategy))
    pkey = quick_run.select(scenario="toggle_latency", strategy="pkey")
    assert {r["variant"] for r in pkey} == set(TOGGLE_VARIANTS)
    if not platform.runs("pkey"):
        assert "pkey_alloc" in pkey[0]["reason"] or "protection keys" in pkey[0]["reason"], pkey[0]


def test_mprotect_costs_more_than_doing_nothing(quick_run, platform):
    """Sanity, not a budget: a real mprotect round trip is a pair of system
    calls; a strategy that never switches (rwx, or dualmap where rwx is
    refused) flips with two empty function calls. Per core class."""
    refs = [s for s in NO_SWITCH_STRATEGIES if s in USER_STRATEGIES]
    ref = next((s for s in refs if platform.runs(s)), None)
    if ref is None:
        pytest.skip("no strategy that never switches runs here: "
                    + "; ".join(f"{s}: {platform.why(s)}" for s in refs))

    def median(strategy, variant, cls):
        xs = [float(r["ns_per_op"]) for r in quick_run.select(scenario="toggle_latency", strategy=strategy,
                                                               variant=variant, core_class=cls)]
        assert xs, (strategy, variant, cls)
        return statistics.median(xs)
    for cls in platform.classes:
        assert median("mprotect", "flip", cls) > 10 * median(ref, "flip", cls), (ref, cls)
        assert median("mprotect", "redundant", cls) > median(ref, "redundant", cls), (ref, cls)


def test_write_code_strategy_rows(hook_run, platform):
    """test_hook (writable only inside write_code): flip, patch and the
    baseline measured, redundant unsupported saying write_code."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_exit_code(hook_run)
    assert "test_hook" in WRITE_CODE_STRATEGIES
    assert_toggle_rows(hook_run, platform, "test_hook")


def test_skipped_write_fails_verification(wxbench_test, tmp_path, platform):
    strategies = platform.running(USER_STRATEGIES + ("test_hook",))
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
            # found in the timed loop, by the call after each patch (not only by the check after the loop)
            assert all("verification failed: patched stub returned" in r["reason"] for r in rows), rows
        assert_measured(run.select(strategy=s, variant="flip"), platform, QUICK_REPETITIONS, f"{s}/flip")
