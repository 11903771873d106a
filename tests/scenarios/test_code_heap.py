"""code_heap: rows per variant and size for every strategy that runs here,
unsupported rows (with the reason) for the others, and verification: a
patch that does not land fails the row (test build, skip_write)."""
from collections import defaultdict

from conftest import USER_STRATEGIES, assert_measured, run_wxbench

QUICK_REPETITIONS = 3
QUICK_HEAP_SIZES = (256 << 10, 16 << 20)
QUICK_MAPPINGS = (1, 1000)
VARIANTS = ("isolated", "neighbour", "reserved", "page_then_heap", "mappings")


def expected_cases(page):
    """(variant, size_bytes) of every quick case."""
    cases = [("isolated", page), ("neighbour", page)]
    for v in ("reserved", "page_then_heap"):
        cases += [(v, s) for s in QUICK_HEAP_SIZES if s % page == 0 and s // page >= 3]
    cases += [("mappings", n * page) for n in QUICK_MAPPINGS]
    return cases


def by_case(rows, strategy):
    got = defaultdict(list)
    for r in rows:
        if r["scenario"] == "code_heap" and r["strategy"] == strategy:
            got[(r["variant"], int(r["size_bytes"]))].append(r)
    return got


def test_code_heap_rows_per_variant(quick_run, platform):
    rows = quick_run.rows
    page = int(quick_run.meta["page_size"])
    for s in USER_STRATEGIES:
        got = by_case(rows, s)
        if platform.runs(s):
            assert set(got) == set(expected_cases(page)), (s, sorted(got))
            for (variant, size), rs in got.items():
                assert_measured(rs, platform, QUICK_REPETITIONS, f"code_heap/{s}/{variant}/{size}")
                assert {(r["batch"], r["victims"]) for r in rs} == {("1", "0")}, rs
        else:
            assert {v for v, _ in got} == set(VARIANTS), (s, sorted(got))
            for rs in got.values():
                assert all(r["status"] == "unsupported" and r["reason"] for r in rs), rs


def test_code_heap_a_patch_that_does_not_land_fails(wxbench_test, tmp_path, platform):
    strategies = platform.running(("mprotect", "dualmap", "test_hook"))
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--repetitions", "1", "--scenario", "code_heap",
                      "--strategy", ",".join(strategies), env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 1, run.stderr
    rows = [r for r in run.rows if r["scenario"] == "code_heap"]
    assert {r["strategy"] for r in rows} == set(strategies)
    for r in rows:
        assert r["status"] == "failed" and "verification failed" in r["reason"], r
