"""jit_workload and wx_audit: rows well formed under --quick, every function
verified (injected faults fail rows), audit.csv and jit_cross_thread.csv in
their documented shape, and the audit agreeing with what is known of each
strategy on this machine."""
import csv
import statistics
import sys
import time
from pathlib import Path

import pytest

from conftest import run_wxbench

AUDIT_HEADER = "strategy,property,result,evidence"
PROPERTIES = ("writable_at_rest", "permanent_writable_alias", "writer_can_execute_while_writable",
              "other_thread_can_write_while_writable", "other_thread_can_execute_while_writable",
              "new_thread_inherits_write_access")
CROSS_HEADER = "strategy,variant,core_class,repetition,patches,calls,current,in_flight,stale,torn,faulted"
JIT_VARIANTS = ("compile", "compile_baseline", "ic_patch", "ic_patch_baseline", "cross_thread",
                "cross_thread_nosync")
SIZES = (64, 256, 1024)
BATCHES = (1, 4, 16, 64, 256)
QUICK_FUNCTIONS = 256
QUICK_REPETITIONS = 3
VERIFIED = ("compile", "compile_baseline", "ic_patch", "ic_patch_baseline", "cross_thread", "cross_thread_nosync")


def read_csv(path):
    with open(path, newline="") as f:
        first = f.readline().rstrip("\r\n")
        f.seek(0)
        return first, list(csv.DictReader(f))


def audit_of(run):
    """{(strategy, property): row} from audit.csv; asserts the shape."""
    header, rows = read_csv(run.out / "audit.csv")
    assert header == AUDIT_HEADER
    table = {}
    for r in rows:
        assert None not in r and len(r) == 4, r
        key = (r["strategy"], r["property"])
        assert key not in table, f"duplicate audit row {key}"
        table[key] = r
    return table


def runs_here(run, scenario, strategy):
    """True when the strategy's rows of this scenario are not all unsupported
    for the strategy's own reason (i.e. it maps and switches here)."""
    rows = run.select(scenario=scenario, strategy=strategy)
    assert rows, (scenario, strategy)
    return not all(r["status"] == "unsupported" and r["ns_per_op"] == "" and r["size_bytes"] == "0" for r in rows)


def strategy_reason(run, strategy):
    rows = run.select(scenario="wx_audit", strategy=strategy, variant="exposure_baseline")
    return rows[0]["reason"] if rows and rows[0]["status"] == "unsupported" else ""


def median(run, **kw):
    xs = [float(r["ns_per_op"]) for r in run.select(**kw) if r["status"] == "ok"]
    assert xs, kw
    return statistics.median(xs)


# --------------------------------------------------------------------- audit

def test_audit_csv_has_one_row_per_strategy_and_property(quick_run):
    assert quick_run.rc == 0, quick_run.stderr
    table = audit_of(quick_run)
    strategies = {r["strategy"] for r in quick_run.rows if r["scenario"] == "wx_audit"}
    assert {"rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"} <= strategies
    assert set(table) == {(s, p) for s in strategies for p in PROPERTIES}
    for (s, p), r in table.items():
        assert r["result"] in ("yes", "no", "n/a"), r
        assert r["evidence"].strip(), r


def test_audit_matches_known_semantics_here(quick_run):
    table = audit_of(quick_run)

    def result(s, p):
        return table[(s, p)]["result"]

    if runs_here(quick_run, "wx_audit", "rwx"):
        assert result("rwx", "writable_at_rest") == "yes"
        assert result("rwx", "writer_can_execute_while_writable") == "yes"
        assert result("rwx", "other_thread_can_execute_while_writable") == "yes"
        assert result("rwx", "permanent_writable_alias") == "no"
    if runs_here(quick_run, "wx_audit", "mprotect"):
        row = table[("mprotect", "other_thread_can_execute_while_writable")]
        assert row["result"] == "no" and ("SIGSEGV" in row["evidence"] or "SIGBUS" in row["evidence"]), row
        assert result("mprotect", "writer_can_execute_while_writable") == "no"
        assert result("mprotect", "writable_at_rest") == "no"
        assert result("mprotect", "other_thread_can_write_while_writable") == "yes"  # process-wide
        assert result("mprotect", "permanent_writable_alias") == "no"
    if runs_here(quick_run, "wx_audit", "dualmap"):
        assert result("dualmap", "permanent_writable_alias") == "yes"
        assert result("dualmap", "writable_at_rest") == "yes"
    for (s, p), r in table.items():
        if r["result"] == "no" and p != "permanent_writable_alias":
            assert "SIGSEGV" in r["evidence"] or "SIGBUS" in r["evidence"], r


def test_audit_pkey_write_access_is_per_thread(quick_run):
    table = audit_of(quick_run)
    if not runs_here(quick_run, "wx_audit", "pkey"):
        row = table[("pkey", "other_thread_can_write_while_writable")]
        assert row["result"] == "n/a" and "unsupported here" in row["evidence"]
        pytest.skip(f"pkey unsupported here: {strategy_reason(quick_run, 'pkey')}")
    assert table[("pkey", "other_thread_can_write_while_writable")]["result"] == "no"
    assert table[("pkey", "writable_at_rest")]["result"] == "no"


def test_audit_unsupported_strategies_say_why(quick_run):
    table = audit_of(quick_run)
    for s in ("mapjit", "mapjit_callback", "pkey"):
        if runs_here(quick_run, "wx_audit", s):
            continue
        reason = strategy_reason(quick_run, s)
        assert reason
        for p in PROPERTIES:
            r = table[(s, p)]
            assert r["result"] == "n/a" and reason in r["evidence"], r


def test_probe_prints_the_audit(wxbench):
    import subprocess
    p = subprocess.run([str(wxbench), "--probe"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for name in ("rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"):
        i = next(k for k, l in enumerate(lines) if l.split() and l.split()[0] == name)
        block = []
        for l in lines[i + 1:]:
            if l[:1] != " ":
                break
            block.append(l)
        audit = [l.split() for l in block if l.split()[0].startswith("audit")]
        assert audit, (name, block)
        if audit[0][0] == "audit:":  # unsupported
            assert "n/a" in audit[0]
            continue
        answers = {a[1]: a[2] for a in audit}
        assert set(answers) == set(PROPERTIES), answers
        assert set(answers.values()) <= {"yes", "no", "n/a"}
        if name == "mprotect":
            assert answers["other_thread_can_execute_while_writable"] == "no"
        if name == "dualmap":
            assert answers["permanent_writable_alias"] == "yes"


def test_audit_child_crash_gives_na_rows_and_a_failed_window(wxbench_test, tmp_path):
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "wx_audit", "--strategy",
                      "test_segv,mprotect")
    assert run.rc == 1
    table = audit_of(run)
    for p in PROPERTIES:
        r = table[("test_segv", p)]
        assert r["result"] == "n/a" and "killed by SIGSEGV" in r["evidence"], r
        assert table[("mprotect", p)]["result"] in ("yes", "no")
    window = run.select(strategy="test_segv", variant="exposure_window")
    assert window and all(r["status"] == "failed" and "audit" in r["reason"] for r in window)
    assert all(r["status"] == "ok" for r in run.select(strategy="mprotect"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_audit_child_does_not_outlive_a_killed_run(wxbench_test, tmp_path):
    out = tmp_path / "r"
    run = run_wxbench(wxbench_test, out, "--quick", "--scenario", "wx_audit", "--strategy", "test_hang",
                      "--timeout", "2")
    assert run.rc == 1
    assert run.select(strategy="test_hang")[0]["status"] == "timeout"
    deadline = time.monotonic() + 5
    left = ["?"]
    while time.monotonic() < deadline and left:
        left = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if str(out).encode() in (d / "cmdline").read_bytes():
                        left.append(d.name)
                except OSError:
                    pass
        time.sleep(0.1)
    assert not left, f"processes of the run still alive: {left}"


# ------------------------------------------------------------ exposure window

def test_exposure_rows(quick_run):
    table = audit_of(quick_run)
    for s in ("rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"):
        if not runs_here(quick_run, "wx_audit", s):
            continue
        window = quick_run.select(scenario="wx_audit", strategy=s, variant="exposure_window")
        if table[(s, "writable_at_rest")]["result"] == "yes":
            assert len(window) == 1 and window[0]["status"] == "unsupported"
            assert window[0]["reason"].startswith("always writable (permanent):"), window
        else:
            assert len(window) == QUICK_REPETITIONS and all(r["status"] == "ok" for r in window), window
            assert all(int(r["iterations"]) > 0 for r in window)
        base = quick_run.select(scenario="wx_audit", strategy=s, variant="exposure_baseline")
        assert len(base) == QUICK_REPETITIONS and all(r["status"] == "ok" for r in base), base
    if runs_here(quick_run, "wx_audit", "rwx"):
        assert quick_run.select(scenario="wx_audit", strategy="rwx", variant="exposure_window")[0]["status"] == \
            "unsupported"
    if runs_here(quick_run, "wx_audit", "dualmap"):
        assert quick_run.select(scenario="wx_audit", strategy="dualmap",
                                variant="exposure_window")[0]["status"] == "unsupported"


def test_mprotect_window_is_longer_than_the_clock_floor(quick_run):
    """Sanity, not a budget: mprotect's window contains an mprotect call
    (end_write); the baseline holds two clock reads around a stub write."""
    if not runs_here(quick_run, "wx_audit", "mprotect"):
        pytest.skip("mprotect does not run here")
    w = median(quick_run, scenario="wx_audit", strategy="mprotect", variant="exposure_window")
    b = median(quick_run, scenario="wx_audit", strategy="mprotect", variant="exposure_baseline")
    assert w > 2 * b, (w, b)


# --------------------------------------------------------------- jit_workload

def test_jit_workload_rows_under_quick(quick_run):
    for s in ("rwx", "mprotect", "dualmap"):
        if not runs_here(quick_run, "jit_workload", s):
            continue
        for v in ("compile", "compile_baseline"):
            for size in SIZES:
                for batch in BATCHES:
                    rows = quick_run.select(scenario="jit_workload", strategy=s, variant=v, size_bytes=size,
                                            batch=batch)
                    assert len(rows) == QUICK_REPETITIONS, (s, v, size, batch, rows)
                    assert all(r["status"] == "ok" for r in rows), rows
                    assert all(int(r["iterations"]) == QUICK_FUNCTIONS for r in rows), rows
        for v in ("ic_patch", "ic_patch_baseline"):
            rows = quick_run.select(scenario="jit_workload", strategy=s, variant=v)
            assert len(rows) == QUICK_REPETITIONS and all(r["status"] == "ok" for r in rows), rows
        for v in ("cross_thread", "cross_thread_nosync"):
            rows = quick_run.select(scenario="jit_workload", strategy=s, variant=v)
            assert rows
            for r in rows:
                assert r["victims"] == "1" and r["threads"] == "1"
                if r["status"] == "unsupported":
                    assert "membarrier" in r["reason"] or "CPUs" in r["reason"], r
                else:
                    assert r["status"] == "ok", r
    for s in ("mapjit", "mapjit_callback", "pkey"):
        if runs_here(quick_run, "jit_workload", s):
            continue
        rows = quick_run.select(scenario="jit_workload", strategy=s)
        assert {r["variant"] for r in rows} == set(JIT_VARIANTS)
        assert all(r["status"] == "unsupported" and r["reason"] for r in rows)


def test_batching_amortises_mprotect(quick_run):
    """The point of the batch sweep: one mprotect pair per function costs
    more than one pair per 256 functions."""
    if not runs_here(quick_run, "jit_workload", "mprotect"):
        pytest.skip("mprotect does not run here")
    for size in SIZES:
        one = median(quick_run, scenario="jit_workload", strategy="mprotect", variant="compile", size_bytes=size,
                     batch=1)
        many = median(quick_run, scenario="jit_workload", strategy="mprotect", variant="compile", size_bytes=size,
                      batch=256)
        assert one > 2 * many, (size, one, many)


def test_cross_thread_counts_side_file(quick_run):
    path = quick_run.out / "jit_cross_thread.csv"
    ok = [r for r in quick_run.rows if r["scenario"] == "jit_workload" and r["variant"].startswith("cross_thread")
          and r["status"] == "ok"]
    if not ok:
        assert not path.exists()
        pytest.skip("no cross_thread row ran here")
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
        if r["strategy"] in ("rwx", "dualmap"):
            assert n["faulted"] == 0, c  # the exec view is executable at all times


@pytest.mark.parametrize("fault", ["corrupt_stub", "skip_write"])
def test_injected_faults_fail_every_verified_row(wxbench_test, tmp_path, fault):
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "jit_workload,wx_audit",
                      "--strategy", "rwx,mprotect,dualmap", env={"WXBENCH_TEST_INJECT": fault})
    assert run.rc == 1
    for s in ("rwx", "mprotect", "dualmap"):
        for v in VERIFIED:
            rows = [r for r in run.select(scenario="jit_workload", strategy=s, variant=v)
                    if r["status"] != "unsupported"]
            assert rows, (s, v)
            assert all(r["status"] == "failed" and "verification failed" in r["reason"] for r in rows), (s, v, rows)
        for v in ("exposure_window", "exposure_baseline"):
            rows = [r for r in run.select(scenario="wx_audit", strategy=s, variant=v) if r["status"] != "unsupported"]
            assert all(r["status"] == "failed" and "verification failed" in r["reason"] for r in rows), (s, v, rows)
    assert not (run.out / "jit_cross_thread.csv").exists(), "counts of failed rows must not be recorded"
    # The audit does not depend on the patch loops: it still answers.
    assert all(r["result"] in ("yes", "no") for (s, p), r in audit_of(run).items() if s == "mprotect")
