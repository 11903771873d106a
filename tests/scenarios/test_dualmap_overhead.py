"""dualmap_overhead: what the second view costs. Every case it registers
under --quick, per strategy, the write_code paths through the test build's
test_hook, verification failures when the write is skipped, and running out
of mappings (a failed row, not a crash).

Expectations come from the platform (conftest.Platform): which strategies run
here and the core classes single-thread cases are measured on."""
from pathlib import Path

import pytest

from conftest import (MEASURED, SCENARIO_TABLE, assert_every_strategy_as_expected,
                      assert_rows_as_expected, assert_variants_and_single_batch, every_variant_unsupported, run_wxbench, skipped_write_run)

SCENARIO = "dualmap_overhead"
VARIANTS = ("setup", "steady", "exec_span")
QUICK_SETUP_SIZES = (4096, 1 << 20)
QUICK_SPAN_PAGES = (1, 4096)


def expected_cases(plat, run, strategy):
    """{(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}
    for every case dualmap_overhead registers under --quick for strategy here."""
    if not plat.runs(strategy):
        return every_variant_unsupported(plat, SCENARIO, strategy)
    page = int(run.meta["page_size"])
    cases = {}
    for size in QUICK_SETUP_SIZES:
        if size % page == 0:  # 4 KiB is no whole number of 16 KiB pages
            cases[("setup", 0, size, 1)] = MEASURED
    cases[("steady", 0, page, 1)] = MEASURED
    for pages in QUICK_SPAN_PAGES:
        cases[("exec_span", 0, pages * page, 1)] = MEASURED
    return cases


def test_table_variants():
    assert SCENARIO_TABLE[SCENARIO]["variants"] == list(VARIANTS)


def test_rows_are_well_formed(quick_run):
    assert_variants_and_single_batch(quick_run, SCENARIO, VARIANTS)


def test_rows_are_this_platform(quick_run, platform):
    """Every strategy, every case this platform registers: measured where
    the strategy runs here, else unsupported saying why (with the
    platform's words for strategies that cannot run on it)."""
    measured = assert_every_strategy_as_expected(quick_run, platform, SCENARIO, expected_cases)
    assert platform.must_run <= measured, platform.must_run - measured


def test_write_code_strategy_rows_are_ok(hook_run, platform):
    """test_hook (writable only inside write_code): every case measured and
    verified, each writable window one write_code call."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_rows_as_expected(hook_run, platform, SCENARIO, "test_hook", expected_cases(platform, hook_run, "test_hook"))


def test_skipped_write_fails_every_measured_row(wxbench_test, tmp_path, platform):
    """Every strategy that runs here, test_hook (write_code) included: each
    case that is measured in a normal run fails verification."""
    run = skipped_write_run(wxbench_test, tmp_path / "r", platform, SCENARIO, expected_cases)
    measured = {r["variant"] for r in run.rows if r["status"] != "unsupported"}
    assert measured == set(VARIANTS), measured
    assert [r for r in run.select(strategy="test_hook") if r["status"] != "unsupported"]  # write_code rows verified


def test_running_out_of_mappings_is_a_failed_row(wxbench_test, tmp_path):
    limit = Path("/proc/sys/vm/max_map_count")
    if not limit.exists():
        pytest.skip("no /proc/sys/vm/max_map_count on this OS: map_exhaust fills Linux's per-process mapping limit")
    before = limit.read_text()
    hog_limit = 1048576  # HOG_LIMIT in scenarios/dualmap_overhead.c
    if int(before) > hog_limit:
        pytest.skip(f"vm.max_map_count is {before.strip()}: the test build's map_exhaust refuses to fill more than "
                    f"{hog_limit} mappings (it would take minutes and gigabytes), so the limit cannot be reached here")
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", SCENARIO,
                      "--strategy", "mprotect,dualmap", env={"WXBENCH_TEST_INJECT": "map_exhaust"})
    assert limit.read_text() == before  # the system limit is never changed
    assert run.rc == 1
    failed = run.select(scenario=SCENARIO, strategy="dualmap", variant="setup")
    assert failed and all(r["status"] == "failed" for r in failed)
    for r in failed:
        assert "mmap" in r["reason"] and "Cannot allocate memory" in r["reason"], r
        assert "max_map_count" in r["reason"], r
    # room for one more mapping is enough for a one-view strategy
    assert all(r["status"] == "ok" for r in run.select(scenario=SCENARIO, strategy="mprotect"))
    assert not any(r["status"] == "crashed" for r in run.rows)


def test_exec_span_calls_every_page_it_claims(wxbench_test, tmp_path, platform):
    """The test build's corrupt_last_page makes the last page's stub return another
    value from the start of the timed loop: exec_span must notice it in its loop
    (every page called), not only in the check after the loop."""
    strategies = [s for s in ("mprotect", "dualmap") if platform.runs(s)]
    if not strategies:
        pytest.skip("neither mprotect nor dualmap runs here")
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", SCENARIO, "--strategy",
                      ",".join(strategies), env={"WXBENCH_TEST_INJECT": "corrupt_last_page"})
    assert run.rc == 1
    span = run.select(variant="exec_span")
    assert span
    page = int(run.meta["page_size"])
    for r in span:
        last = int(r["size_bytes"]) // page - 1
        assert r["status"] == "failed", r
        assert f"the stub on page {last} returned" in r["reason"], r
        assert "after the timed loop" not in r["reason"], f"the loop never called page {last}: {r['reason']}"
