"""Integration: a real `wxbench --quick` run, isolation of crashes and hangs,
verification failures, Ctrl-C, and Google Benchmark flags passed through."""
import csv
import json
import math
import signal
import subprocess
import time

from conftest import HEADER, ROOT, run_wxbench

STATUSES = {"ok", "unsupported", "failed", "crashed", "timeout"}
VARIANTS = ("flip", "patch", "redundant", "baseline")


def test_quick_run_exit_code_and_header(quick_run):
    assert quick_run.rc == 0, quick_run.stderr
    assert quick_run.header == HEADER


def test_every_row_is_well_formed(quick_run):
    rows = quick_run.rows
    assert rows
    for r in rows:
        assert None not in r and len(r) == 20, r
        assert r["status"] in STATUSES
        assert int(r["threads"]) >= 1 and int(r["victims"]) >= 0 and int(r["batch"]) >= 1
        assert int(r["repetition"]) >= 1
        assert r["core_class"] in ("P", "E", "any")
        assert r["arch"] in ("x86_64", "arm64")
        assert int(r["page_size"]) >= 4096
        if r["status"] == "ok":
            ns = float(r["ns_per_op"])
            assert ns > 0 and math.isfinite(ns), r
            assert int(r["iterations"]) > 0
            assert r["reason"] == ""
        else:
            assert r["ns_per_op"] == "" and r["reason"].strip(), r


def test_toggle_latency_ok_for_linux_strategies(quick_run):
    for strategy in ("rwx", "mprotect", "dualmap"):
        for v in VARIANTS:
            rows = quick_run.select(scenario="toggle_latency", strategy=strategy, variant=v)
            assert len(rows) == 3, (strategy, v, len(rows))  # --quick: 3 repetitions
            assert all(r["status"] == "ok" for r in rows), rows
            assert sorted(int(r["repetition"]) for r in rows) == [1, 2, 3]


def test_toggle_latency_unsupported_rows_say_why(quick_run):
    for strategy in ("mapjit", "mapjit_callback"):
        for v in VARIANTS:
            rows = quick_run.select(scenario="toggle_latency", strategy=strategy, variant=v)
            assert rows and all(r["status"] == "unsupported" for r in rows)
            assert all("macOS" in r["reason"] for r in rows)
    pkey = quick_run.select(scenario="toggle_latency", strategy="pkey")
    assert {r["variant"] for r in pkey} == set(VARIANTS)
    if pkey[0]["status"] == "unsupported":
        assert "pkey_alloc" in pkey[0]["reason"]


def test_mprotect_costs_more_than_doing_nothing(quick_run):
    """Sanity, not a budget: a real mprotect round trip is a pair of system
    calls; rwx's flip is two empty function calls."""
    def median(strategy, variant):
        xs = sorted(float(r["ns_per_op"]) for r in quick_run.select(scenario="toggle_latency",
                                                                    strategy=strategy, variant=variant))
        return xs[len(xs) // 2]
    assert median("mprotect", "flip") > 10 * median("rwx", "flip")
    assert median("mprotect", "redundant") > median("rwx", "redundant")


def test_harness_rows(quick_run):
    for v in ("shim", "native"):
        rows = quick_run.select(scenario="harness", strategy="none", variant=v)
        assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)


def test_tlb_column_on_x86_linux(quick_run):
    rows = quick_run.select(scenario="toggle_latency", strategy="mprotect", variant="flip")
    meta = quick_run.meta
    if meta["tlb_shootdowns"]["available"]:
        assert all(r["tlb_shootdowns_per_op"] != "" for r in rows)
    else:
        assert all(r["tlb_shootdowns_per_op"] == "" for r in rows)


def test_meta_json(quick_run):
    m = quick_run.meta
    for key in ("wxbench_version", "date_utc", "command_line", "compiler", "gbench_version", "os", "kernel",
                "machine", "chip", "arch", "cpu_features", "cores", "page_size", "cache_line_size", "timer",
                "pinning", "load_average", "frequency_scaling", "cycles", "tlb_shootdowns", "finished", "rows"):
        assert key in m, key
    assert m["finished"] is True and m["interrupted"] is False
    for feat in ("pku", "poe", "ctr_el0_dic", "ctr_el0_idc"):
        assert feat in m["cpu_features"]
    assert m["timer"]["resolution_ns"] > 0
    assert "--quick" in m["command_line"]
    rows = quick_run.rows
    assert m["rows"]["ok"] == sum(r["status"] == "ok" for r in rows)
    assert m["rows"]["unsupported"] == sum(r["status"] == "unsupported" for r in rows)
    assert m["machine"] == rows[0]["machine"]
    assert isinstance(m["pinning"]["measuring_cpu"], int)


def test_crash_becomes_a_row_and_other_rows_are_kept(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "rwx,test_segv,dualmap")
    assert run.rc == 1
    crashed = run.select(strategy="test_segv")
    assert len(crashed) == 1 and crashed[0]["status"] == "crashed"
    assert "SIGSEGV" in crashed[0]["reason"]
    assert crashed[0]["variant"] in VARIANTS  # names the case it was measuring
    for s in ("rwx", "dualmap"):  # before and after the crash
        rows = run.select(scenario="toggle_latency", strategy=s)
        assert len(rows) == 12 and all(r["status"] == "ok" for r in rows)
    assert run.meta["rows"]["crashed"] == 1


def test_hang_becomes_a_timeout_row(wxbench_test, tmp_path):
    t0 = time.monotonic()
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "test_hang,rwx", "--timeout", "2")
    assert time.monotonic() - t0 < 60
    assert run.rc == 1
    rows = run.select(strategy="test_hang")
    assert len(rows) == 1 and rows[0]["status"] == "timeout" and "2 s" in rows[0]["reason"]
    assert all(r["status"] == "ok" for r in run.select(strategy="rwx"))


def test_skipped_write_fails_verification(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "toggle_latency",
                      "--strategy", "rwx,mprotect,dualmap", env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 1
    for s in ("rwx", "mprotect", "dualmap"):
        for v in ("patch", "baseline"):
            rows = run.select(strategy=s, variant=v)
            assert rows and all(r["status"] == "failed" for r in rows), (s, v, rows)
            assert all("verification failed" in r["reason"] for r in rows)
        assert all(r["status"] == "ok" for r in run.select(strategy=s, variant="flip"))


def test_injection_is_inert_in_the_user_build(wxbench, tmp_path):
    run = run_wxbench(wxbench, tmp_path / "r", "--quick", "--scenario", "toggle_latency", "--strategy", "rwx",
                      env={"WXBENCH_TEST_INJECT": "skip_write"})
    assert run.rc == 0 and all(r["status"] == "ok" for r in run.rows)


def test_ctrl_c_keeps_finished_rows(wxbench, tmp_path):
    out = tmp_path / "r"
    p = subprocess.Popen([str(wxbench), "--out", str(out), "--scenario", "toggle_latency", "--repetitions", "50",
                          "--min-time", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    csv_path = out / "results.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if csv_path.exists() and csv_path.read_text().count("\n") >= 5:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "interrupted" in stderr and str(csv_path) in stderr
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    assert ",".join(rows[0]) == HEADER
    assert len(rows) >= 5 and all(len(r) == 20 for r in rows)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["interrupted"] is True and meta["finished"] is False


def test_google_benchmark_flags_pass_through(wxbench, tmp_path):
    out = tmp_path / "r"
    jout = tmp_path / "gb.json"
    run = run_wxbench(wxbench, out, "--quick", "--scenario", "toggle_latency", "--strategy", "rwx", "--",
                      "--benchmark_format=json", f"--benchmark_out={jout}")
    assert run.rc == 0, run.stderr
    child = tmp_path / "gb.toggle_latency.rwx.json"
    assert child.exists(), list(tmp_path.iterdir())
    doc = json.loads(child.read_text())
    names = [b["name"] for b in doc["benchmarks"]]
    assert any("toggle_latency/rwx/patch" in n for n in names)
    assert '"benchmarks"' in run.stdout  # the JSON display reporter wrote to stdout
    assert len(run.rows) == 12
