"""scripts/wxdata.py: the CSV contract, statistics, issues, paths."""

import csv
from pathlib import Path

import numpy as np
import pytest
from wxplots_testlib import FIXTURES, HEADER, RUN_A, RUN_X86, median, ok_values, row, write_csv

import wxdata


def test_rfc4180_reason_with_comma_quote_newline_is_one_field():
    rows, warnings = wxdata.read_results(RUN_A / "results.csv")
    assert warnings == []
    pkey = [r for r in rows if r.strategy == "pkey"]
    assert pkey, "fixture has pkey rows"
    assert pkey[0].reason == ('pkey_alloc: not available on macOS, "memory protection keys" are a Linux API\n'
                              "see --probe")
    assert pkey[0].status == "unsupported" and pkey[0].ns_per_op is None
    with open(RUN_A / "results.csv", newline="") as f:
        assert len(rows) == sum(1 for _ in csv.DictReader(f))
    # the record after a multi-line one starts on the right line
    text = (RUN_A / "results.csv").read_text().splitlines()
    after = rows[rows.index(pkey[0]) + 1]
    assert text[after.line - 1].startswith("synthetic-chip-a,")


def test_unknown_extra_column_is_kept_and_ignored():
    rows, _ = wxdata.read_results(RUN_A / "results.csv")
    assert all(r.extra == {"synthetic_note": "made-up value, not measured"} for r in rows)


def test_columns_are_found_by_name_not_position(tmp_path):
    cols = HEADER.split(",")
    reordered = list(reversed(cols)) + ["later_column"]
    line = dict(zip(cols, row(ns="42.5").split(",")))
    path = tmp_path / "results.csv"
    path.write_text(",".join(reordered) + "\n" + ",".join(line.get(c, "x") for c in reordered) + "\n")
    rows, _ = wxdata.read_results(path)
    assert rows[0].ns_per_op == 42.5 and rows[0].strategy == "mprotect"


@pytest.mark.parametrize("bad,line,column", [
    (row(rep=2, ns="fast"), 3, "ns_per_op"),
    (row(rep=2, threads="two"), 3, "threads"),
    (row(rep=2, ns=""), 3, "ns_per_op"),
    (row(rep=2, ns="nan"), 3, "ns_per_op"),
    (row(rep=2, ns="-5"), 3, "ns_per_op"),
])
def test_bad_number_in_ok_row_names_file_and_line(tmp_path, bad, line, column):
    path = write_csv(tmp_path / "results.csv", [row(), bad])
    with pytest.raises(wxdata.DataError) as err:
        wxdata.read_results(path)
    assert f"{path}:{line}:" in str(err.value) and column in str(err.value)


def test_line_number_counts_physical_lines_of_quoted_newlines(tmp_path):
    lines = [row(status="unsupported", ns="", reason='first\nsecond, "third"'), row(rep=2, ns="oops")]
    path = write_csv(tmp_path / "results.csv", lines)
    with pytest.raises(wxdata.DataError, match=r"results\.csv:4: column ns_per_op"):
        wxdata.read_results(path)


def test_non_ok_rows_never_become_numbers(tmp_path):
    path = write_csv(tmp_path / "results.csv", [
        row(rep=1, ns="100"), row(rep=2, ns="110"), row(rep=3, ns="120"),
        row(rep=4, ns="999999", status="crashed", reason="SIGSEGV"),  # a number where none belongs
        row(rep=5, ns="garbage", status="failed", reason="returned 0, expected 1"),
    ])
    rows, _ = wxdata.read_results(path)
    assert [r.ns_per_op for r in rows] == [100.0, 110.0, 120.0, None, None]
    (cfg,) = wxdata.group_configs(rows)
    assert cfg.status == "partial"
    st = cfg.stats()
    assert (st.median, st.min, st.max, st.n) == (110.0, 100.0, 120.0, 3)


def test_unknown_status_is_an_error(tmp_path):
    path = write_csv(tmp_path / "results.csv", [row(status="skipped")])
    with pytest.raises(wxdata.DataError, match=r"results\.csv:2: status"):
        wxdata.read_results(path)


def test_missing_columns_named(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(HEADER.replace(",status,reason", "") + "\n")
    with pytest.raises(wxdata.DataError) as err:
        wxdata.read_results(path)
    assert f"{path}:1: missing columns: status, reason" in str(err.value)


def test_missing_file_named(tmp_path):
    with pytest.raises(wxdata.DataError, match="no such file"):
        wxdata.read_results(tmp_path / "nope" / "results.csv")


def test_interrupted_last_record_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(HEADER + "\n" + row() + "\n" + row(rep=2)[:40])  # cut mid-record, no newline
    rows, warnings = wxdata.read_results(path)
    assert len(rows) == 1 and len(warnings) == 1 and ":3:" in warnings[0]
    path.write_text(HEADER + "\n" + row() + "\n" + row(rep=2, status="crashed", ns="") + '"SIG')
    rows, warnings = wxdata.read_results(path)
    assert len(rows) == 1 and "quoted field" in warnings[0]
    # a short record that is not the last one is an error, not an interruption
    path.write_text(HEADER + "\n" + row()[:40] + "\n" + row(rep=2) + "\n")
    with pytest.raises(wxdata.DataError, match=r":2: \d+ fields"):
        wxdata.read_results(path)


def test_empty_and_header_only_files_have_no_rows(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert wxdata.read_results(empty) == ([], [])
    header_only = write_csv(tmp_path / "h.csv", [])
    assert wxdata.read_results(header_only) == ([], [])


def test_stats_median_spread_definition():
    st = wxdata.Stats.of([100, 112, 95, 103, 99])
    assert st.median == 100 and st.min == 95 and st.max == 112
    assert st.spread == pytest.approx(0.12)
    even = wxdata.Stats.of([1, 2, 3, 10])
    assert even.median == 2.5  # mean of the two middle values
    assert wxdata.Stats.of([5]).spread is None


def test_headline_values_equal_independent_medians():
    run = wxdata.load_run(RUN_A)
    table = wxdata.headline_table(run, "P")
    flip = ok_values(RUN_A, scenario="toggle_latency", strategy="mprotect", variant="flip", core_class="P")
    assert table["mprotect"]["flip"].value == median(flip)
    most = ok_values(RUN_A, scenario="mprotect_tlb", variant="flip", size_bytes=16384, victims=7)
    assert table["mprotect"]["mprotect_1p_most"].value == median(most)
    assert table["mprotect"]["mprotect_1p_most"].note == "7 victims"
    # partial configuration: the median of the 4 ok repetitions
    cb = ok_values(RUN_A, scenario="toggle_latency", strategy="mapjit_callback", variant="patch", core_class="P")
    assert len(cb) == 4
    v = table["mapjit_callback"]["patch"]
    assert v.value == median(cb) and v.status == "partial"
    # scaling: median throughput at the most threads over median at 1 thread
    t24 = [24 / x * 1e9 for x in ok_values(RUN_A, scenario="thread_contention", strategy="mprotect",
                                           variant="private", threads=24)]
    t1 = [1 / x * 1e9 for x in ok_values(RUN_A, scenario="thread_contention", strategy="mprotect",
                                         variant="private", threads=1)]
    assert table["mprotect"]["scaling"].value == pytest.approx(median(t24) / median(t1), rel=1e-12)
    assert table["rwx"]["flip"].value is None and table["rwx"]["flip"].status == "unsupported"


def test_issues_group_rows_with_their_reasons():
    run = wxdata.load_run(RUN_A)
    found = {(i.scenario, i.strategy, i.status): i for i in wxdata.issues(run.configs)}
    failed = found[("toggle_latency", "mapjit_callback", "failed")]
    assert failed.reason == "patched function returned 0x2a, expected 0x2b" and failed.partial == 1
    assert failed.what == "mapjit_callback/patch"
    assert found[("toggle_latency", "rwx", "unsupported")].rows == 10  # 5 reps on P and on E
    timeout = found[("mprotect_tlb", "mprotect", "timeout")]
    assert timeout.reason == "no result within 60 s" and timeout.variants == ["flip_victim_processes"]
    # different reasons stay apart
    icache = [i for i in wxdata.issues(run.configs) if (i.scenario, i.strategy) == ("icache_flush", "mapjit")]
    assert sorted((i.variants[0], i.reason, i.rows) for i in icache) == [
        ("membarrier", "membarrier(2): Linux only", 5), ("serialize", "SERIALIZE is an x86 instruction", 5)]


def test_issues_merge_variants_sharing_a_reason(tmp_path):
    path = write_csv(tmp_path / "results.csv", [
        row(strategy="mapjit", variant=v, status="unsupported", ns="", reason="needs macOS")
        for v in ("flip", "patch", "redundant")] + [row(strategy="pkey", status="unsupported", ns="", reason="EINVAL")])
    # The order of strategies is learned from what was loaded before (meta.json's
    # table, then rows): look the issues up by strategy, not by position.
    found = {i.strategy: i for i in wxdata.issues(wxdata.group_configs(wxdata.read_results(path)[0]))}
    assert sorted(found) == ["mapjit", "pkey"]
    mapjit, pkey = found["mapjit"], found["pkey"]
    assert mapjit.what == "mapjit (flip, patch, redundant)" and mapjit.rows == 3
    assert mapjit.line() == "mapjit (flip, patch, redundant) (3 rows): unsupported: needs macOS"
    assert pkey.line() == "pkey/flip (1 row): unsupported: EINVAL"


def test_meta_missing_is_a_note_not_an_error():
    run = wxdata.load_run(RUN_X86)
    assert run.meta is None and "meta.json: not found" in run.meta_note
    with open(RUN_X86 / "results.csv", newline="") as f:
        assert len(run.rows) == sum(1 for _ in csv.DictReader(f))


def test_mirror_dir_and_output_dir(tmp_path):
    assert wxdata.mirror_dir(Path("data/m/20250101T000000Z")) == Path("plots/m/20250101T000000Z")
    assert wxdata.mirror_dir(Path("/x/y/data/m/r/")) == Path("/x/y/plots/m/r")
    assert wxdata.mirror_dir(Path("/x/y/m/r")) is None
    run = wxdata.load_run(RUN_X86)
    with pytest.raises(wxdata.DataError, match="--out"):
        wxdata.output_dir(run, None)


def test_latest_run_is_by_timestamp_across_machines(tmp_path):
    for machine, stamp in [("aaa-newest", "20260101T000000Z"), ("zzz-older", "20250101T000000Z"),
                           ("zzz-older", "20240101T000000Z"), ("aaa-newest", "20230101T000000Z")]:
        write_csv(tmp_path / machine / stamp / "results.csv", [row()])
    (tmp_path / "zzz-older" / "20990101T000000Z").mkdir()  # no results.csv: not a run
    assert wxdata.latest_run(tmp_path) == tmp_path / "aaa-newest" / "20260101T000000Z"
    assert wxdata.latest_runs(tmp_path) == [tmp_path / "aaa-newest" / "20260101T000000Z",
                                            tmp_path / "zzz-older" / "20250101T000000Z"]
    assert wxdata.latest_run(tmp_path / "none") is None


def test_fixtures_are_marked_synthetic():
    for results in FIXTURES.glob("*/*/results.csv"):
        assert "synthetic" in results.parent.parent.name
        with open(results, newline="") as f:
            assert all("synthetic" in r["machine"] and "not a real measurement" in r["chip"]
                       for r in csv.DictReader(f))
    assert not (FIXTURES.parents[1] / "data").exists() or not any(
        "synthetic" in p.name for p in (FIXTURES.parents[1] / "data").iterdir())


def test_throughput_is_threads_over_ns():
    cfg = wxdata.Config("thread_contention", "s", "private", 4, 0, 0, 1, "any")
    cfg.rows = [wxdata.Row(2, "m", "c", "o", "a", 4096, "thread_contention", "s", "private", 4, 0, 0, 1, "any",
                           1, 10, 50.0, None, None, "ok", "")]
    assert np.allclose(wxdata.throughput(cfg), [4 / 50.0 * 1e9])
