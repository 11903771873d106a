"""harness: what the measuring harness itself adds per op. An empty op timed
through wxbench's C shim (`shim`) and through Google Benchmark's own loop
(`native`), strategy `none`, every repetition once per core class."""
from conftest import QUICK_REPETITIONS, assert_measured


def test_harness_rows(quick_run, platform):
    for v in ("shim", "native"):
        rows = quick_run.select(scenario="harness", strategy="none", variant=v)
        assert_measured(rows, platform, QUICK_REPETITIONS, f"harness/{v}")
    for r in quick_run.select(scenario="harness"):
        assert (r["threads"], r["victims"], r["size_bytes"], r["batch"]) == ("1", "0", "0", "1"), r
