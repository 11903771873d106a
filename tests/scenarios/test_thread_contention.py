"""thread_contention: what W^X costs when many threads JIT at once. Every
case it registers under --quick, per strategy, ns_per_op per thread, the
write_code paths through the test build's test_hook, and verification
failures when the write is skipped.

Expectations come from the platform (conftest.Platform): which strategies run
here; multi-thread cases are measured on core class `any`."""
from conftest import (MEASURED, SCENARIO_TABLE, assert_every_strategy_as_expected,
                      assert_rows_as_expected, assert_variants_and_single_batch, every_variant_unsupported, ncpu, skipped_write_run)

SCENARIO = "thread_contention"
VARIANTS = ("private", "shared")
SLOT = 128  # shared: bytes per thread's stub


def expected_cases(plat, run, strategy):
    """{(variant, victims, size_bytes, threads): MEASURED or unsupported(words)}
    for every case thread_contention registers under --quick for strategy here."""
    if not plat.runs(strategy):
        return every_variant_unsupported(plat, SCENARIO, strategy)
    page = int(run.meta["page_size"])
    cases = {}
    for t in sorted({1, 2 * ncpu(run)}):
        cases[("private", 0, page, t)] = MEASURED
        cases[("shared", 0, (t * SLOT + page - 1) // page * page, t)] = MEASURED
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


def test_ns_per_op_is_per_thread(quick_run):
    """ns_per_op is wall time per op of one thread (throughput = threads /
    ns_per_op) and iterations counts the ops of all threads, so ns_per_op x
    iterations / threads is one thread's timed wall time, which Google
    Benchmark makes last at least the case's min_time (a quarter of the run's,
    at least 2 ms). Per op of all threads it would be threads times shorter."""
    min_time_ns = max(quick_run.meta["settings"]["min_time_s"] / 4, 0.002) * 1e9
    rs = [r for r in quick_run.select(scenario=SCENARIO) if r["status"] == "ok"]
    assert any(int(r["threads"]) > 1 for r in rs)
    for r in rs:
        wall = float(r["ns_per_op"]) * int(r["iterations"]) / int(r["threads"])
        assert wall >= 0.99 * min_time_ns, (r["strategy"], r["variant"], r["threads"], wall)


def test_write_code_strategy_rows_are_ok(hook_run, platform):
    """test_hook (writable only inside write_code): every case measured and
    verified, each thread's write window one write_code call."""
    assert platform.runs("test_hook"), f"test_hook is mprotect underneath: {platform.why('mprotect')}"
    assert_rows_as_expected(hook_run, platform, SCENARIO, "test_hook", expected_cases(platform, hook_run, "test_hook"))


def test_skipped_write_fails_every_measured_row(wxbench_test, tmp_path, platform):
    """Every strategy that runs here, test_hook (write_code) included: each
    case that is measured in a normal run fails verification."""
    run = skipped_write_run(wxbench_test, tmp_path / "r", platform, SCENARIO, expected_cases)
    measured = {r["variant"] for r in run.rows if r["status"] != "unsupported"}
    assert measured == set(VARIANTS), measured
    assert [r for r in run.select(strategy="test_hook") if r["status"] != "unsupported"]  # write_code rows verified
