"""jit_workload and wx_audit: rows well formed under --quick, every function
verified (injected faults fail rows), audit.csv and jit_cross_thread.csv in
their documented shape, and the audit agreeing with what is known of each
strategy on this platform (conftest.Platform). The test_hook strategy of the
test build (writable only inside write_code, like mapjit_callback, built on
mprotect) runs the write_code paths wherever mprotect runs."""
import csv
import statistics
import sys
import time
from pathlib import Path

import pytest

from conftest import (USER_STRATEGIES, WRITE_CODE_STRATEGIES, assert_baseline_rows, assert_exit_code,
                      assert_measured, assert_unsupported_once, run_wxbench)
from conftest import PROCESS_WIDE_SWITCH

AUDIT_HEADER = "strategy,property,result,evidence"
PROPERTIES = ("writable_at_rest", "permanent_writable_alias", "writer_can_execute_while_writable",
              "other_thread_can_write_while_writable", "other_thread_can_execute_while_writable",
              "new_thread_inherits_write_access")
# The questions that need an access while the writer holds write access: n/a
# for a strategy whose window runs only its write_code copy.
WINDOW_PROPERTIES = PROPERTIES[2:]
# Known answers (docs/jit-and-audit.md; the unit tests hold the same), per
# strategy where it runs: yes / no / n/a; None = not fixed here.
KNOWN_AUDIT = {
    "rwx": {"writable_at_rest": "yes", "permanent_writable_alias": "no",
            "writer_can_execute_while_writable": "yes", "other_thread_can_execute_while_writable": "yes"},
    "mprotect": {"writable_at_rest": "no", "permanent_writable_alias": "no",
                 "writer_can_execute_while_writable": "no", "other_thread_can_write_while_writable": "yes",
                 "other_thread_can_execute_while_writable": "no", "new_thread_inherits_write_access": "no"},
    "dualmap": {"writable_at_rest": "yes", "permanent_writable_alias": "yes"},
    "mapjit": {"writable_at_rest": "no", "permanent_writable_alias": "no",
               "writer_can_execute_while_writable": "no", "other_thread_can_write_while_writable": "no",
               "other_thread_can_execute_while_writable": "yes", "new_thread_inherits_write_access": "no"},
    "pkey": {"writable_at_rest": "no", "permanent_writable_alias": "no",
             "other_thread_can_write_while_writable": "no"},
}
for _s in WRITE_CODE_STRATEGIES:
    KNOWN_AUDIT[_s] = {"writable_at_rest": "no", "permanent_writable_alias": "no",
                       **{p: "n/a" for p in WINDOW_PROPERTIES}}
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


def median(run, **kw):
    xs = [float(r["ns_per_op"]) for r in run.select(**kw) if r["status"] == "ok"]
    assert xs, kw
    return statistics.median(xs)


def assert_audit_known(table, strategy, known=None):
    """The audit of a strategy that runs here gives its known answers (or
    known, what this machine can show of them: conftest.Platform.audit_expect);
    a `no` names the signal that decided it; an n/a of a write_code strategy
    says why (the window runs only the hook's copy)."""
    for p, want in (KNOWN_AUDIT.get(strategy, {}) if known is None else known).items():
        row = table[(strategy, p)]
        assert row["result"] == want, (strategy, p, row)
    for p in PROPERTIES:
        row = table[(strategy, p)]
        if row["result"] == "no" and p != "permanent_writable_alias":
            assert "SIGSEGV" in row["evidence"] or "SIGBUS" in row["evidence"], row
        if strategy in WRITE_CODE_STRATEGIES and p in WINDOW_PROPERTIES:
            assert row["evidence"].startswith("not determinable:") and "write_code" in row["evidence"], row
            assert "landed and ran" in row["evidence"], row


def assert_unsupported_audit(table, strategy, reason):
    """Every answer n/a, naming the reason (audit.csv keeps its first 230
    characters after "unsupported here: ")."""
    for p in PROPERTIES:
        r = table[(strategy, p)]
        assert r["result"] == "n/a" and r["evidence"].startswith("unsupported here: "), r
        assert reason[:200] in r["evidence"], (reason, r)


def assert_exposure_rows(run, table, plat, strategy, reps=QUICK_REPETITIONS):
    """wx_audit's rows for a strategy that runs here: no window where the
    code is always writable or where the window lies inside write_code,
    else measured; the baseline measured where it has its memory."""
    window = run.select(scenario="wx_audit", strategy=strategy, variant="exposure_window")
    what = f"wx_audit/{strategy}/exposure_window"
    if table[(strategy, "writable_at_rest")]["result"] == "yes":
        assert_unsupported_once(window, what, "always writable (permanent):")
        assert window[0]["reason"].startswith("always writable (permanent):"), window
    elif strategy in WRITE_CODE_STRATEGIES:
        assert_unsupported_once(window, what, "inside write_code", "toggle_latency/flip")
    else:
        assert_measured(window, plat, reps, what)
        assert all(int(r["iterations"]) > 0 for r in window)
    base = run.select(scenario="wx_audit", strategy=strategy, variant="exposure_baseline")
    assert_baseline_rows(base, plat, reps, f"wx_audit/{strategy}/exposure_baseline")


def assert_jit_rows(run, plat, strategy, reps=QUICK_REPETITIONS, functions=QUICK_FUNCTIONS):
    """jit_workload's rows for a strategy that runs here: every compile case
    of the sweep measured with exactly M functions per repetition, ic_patch
    measured, cross_thread measured or unsupported for a stated reason."""
    for v in ("compile", "compile_baseline"):
        for size in SIZES:
            for batch in BATCHES:
                rows = run.select(scenario="jit_workload", strategy=strategy, variant=v, size_bytes=size,
                                  batch=batch)
                what = f"jit_workload/{strategy}/{v}/{size}/{batch}"
                if v == "compile_baseline":
                    assert_baseline_rows(rows, plat, reps, what)
                else:
                    assert_measured(rows, plat, reps, what)
                assert all(int(r["iterations"]) == functions for r in rows if r["status"] == "ok"), rows
    assert_measured(run.select(scenario="jit_workload", strategy=strategy, variant="ic_patch"), plat, reps,
                    f"jit_workload/{strategy}/ic_patch")
    assert_baseline_rows(run.select(scenario="jit_workload", strategy=strategy, variant="ic_patch_baseline"), plat,
                         reps, f"jit_workload/{strategy}/ic_patch_baseline")
    cpus = plat.meta["cores"]["allowed"]
    for v in ("cross_thread", "cross_thread_nosync"):
        rows = run.select(scenario="jit_workload", strategy=strategy, variant=v)
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
            assert_measured(rows, plat, reps, what)


def assert_cross_side_file(run, strategies=None):
    """jit_cross_thread.csv: one row per ok cross_thread* row (same strategy,
    variant, core class and repetition), counts adding up."""
    path = run.out / "jit_cross_thread.csv"
    ok = [r for r in run.rows if r["scenario"] == "jit_workload" and r["variant"].startswith("cross_thread")
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
        if r["strategy"] in ("rwx", "dualmap"):
            assert n["faulted"] == 0, c  # the exec view is executable at all times
    return keyed


# --------------------------------------------------------------------- audit

def test_audit_csv_has_one_row_per_strategy_and_property(quick_run):
    assert_exit_code(quick_run)  # 0, or 1 only for rows whose victims lost their CPU to other programs
    table = audit_of(quick_run)
    strategies = {r["strategy"] for r in quick_run.rows if r["scenario"] == "wx_audit"}
    assert strategies == set(USER_STRATEGIES)
    assert set(table) == {(s, p) for s in strategies for p in PROPERTIES}
    for (s, p), r in table.items():
        assert r["result"] in ("yes", "no", "n/a"), r
        assert r["evidence"].strip(), r


def test_audit_matches_known_semantics_here(quick_run, platform):
    table = audit_of(quick_run)
    for s in platform.running():
        assert_audit_known(table, s, platform.audit_expect(s, KNOWN_AUDIT.get(s, {})))
    # every strategy that must run here was audited with real answers
    for s in platform.must_run:
        assert any(table[(s, p)]["result"] != "n/a" for p in PROPERTIES), s


def test_audit_pkey_write_access_is_per_thread(quick_run, platform):
    table = audit_of(quick_run)
    if not platform.runs("pkey"):
        row = table[("pkey", "other_thread_can_write_while_writable")]
        assert row["result"] == "n/a" and "unsupported here" in row["evidence"]
        pytest.skip(f"pkey unsupported here: {platform.why('pkey')}")
    assert table[("pkey", "other_thread_can_write_while_writable")]["result"] == "no"
    assert table[("pkey", "writable_at_rest")]["result"] == "no"


def test_audit_unsupported_strategies_say_why(quick_run, platform):
    table = audit_of(quick_run)
    for s in platform.not_running():
        assert_unsupported_audit(table, s, platform.why(s))
        rows = quick_run.select(scenario="wx_audit", strategy=s)
        assert {r["variant"] for r in rows} == {"exposure_window", "exposure_baseline"}
        for r in rows:
            assert_unsupported_once([r], f"wx_audit/{s}/{r['variant']}", platform.why(s))


def test_probe_prints_the_audit(wxbench, platform):
    import subprocess
    p = subprocess.run([str(wxbench), "--probe"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for name in USER_STRATEGIES:
        i = next(k for k, l in enumerate(lines) if l.split() and l.split()[0] == name)
        block = []
        for l in lines[i + 1:]:
            if l[:1] != " ":
                break
            block.append(l)
        audit = [l.split() for l in block if l.split()[0].startswith("audit")]
        assert audit, (name, block)
        if not platform.runs(name):
            assert audit == [["audit:", "n/a", "(unsupported", "here)"]], (name, audit)
            continue
        answers = {a[1]: a[2] for a in audit}
        assert set(answers) == set(PROPERTIES), answers
        for prop, want in platform.audit_expect(name, KNOWN_AUDIT.get(name, {})).items():
            assert answers[prop] == want, (name, prop, answers)


def test_audit_child_crash_gives_na_rows_and_a_failed_window(wxbench_test, tmp_path, platform):
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
    assert_exposure_rows(run, table, platform, "mprotect")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_audit_child_does_not_outlive_a_killed_run(wxbench_test, tmp_path):
    out = tmp_path / "r"
    run = run_wxbench(wxbench_test, out, "--quick", "--scenario", "wx_audit", "--strategy", "test_hang",
                      "--timeout", "2")
    assert run.rc == 1
    # the audit (in a child of the run, under the per-child limit) hung: the
    # window cannot be interpreted, its row fails saying so
    window = run.select(strategy="test_hang", variant="exposure_window")
    assert window and window[0]["status"] == "failed" and "did not finish within 2 s" in window[0]["reason"], window
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

def test_exposure_rows(quick_run, platform):
    table = audit_of(quick_run)
    for s in platform.running():
        assert_exposure_rows(quick_run, table, platform, s)
    for s in ("rwx", "dualmap"):  # always writable: no window
        if platform.runs(s):
            window = quick_run.select(scenario="wx_audit", strategy=s, variant="exposure_window")
            assert window[0]["status"] == "unsupported", window


def test_mprotect_window_is_longer_than_the_clock_floor(quick_run, platform):
    """Sanity, not a budget: mprotect's window contains an mprotect call
    (end_write); the baseline holds two clock reads around a stub write.
    Per core class."""
    if not platform.baseline_memory:
        pytest.skip("no baseline memory here (Apple silicon: the dual mapping is refused): "
                    f"{platform.why('dualmap')}")
    for cls in platform.classes:
        w = median(quick_run, scenario="wx_audit", strategy="mprotect", variant="exposure_window", core_class=cls)
        b = median(quick_run, scenario="wx_audit", strategy="mprotect", variant="exposure_baseline", core_class=cls)
        assert w > 2 * b, (cls, w, b)


# --------------------------------------------------------------- jit_workload

def test_jit_workload_rows_under_quick(quick_run, platform):
    for s in platform.running():
        assert_jit_rows(quick_run, platform, s)
    for s in platform.not_running():
        rows = quick_run.select(scenario="jit_workload", strategy=s)
        assert {r["variant"] for r in rows} == set(JIT_VARIANTS)
        for r in rows:
            assert_unsupported_once([r], f"jit_workload/{s}/{r['variant']}", platform.why(s))


def test_batching_amortises_mprotect(quick_run, platform):
    """The point of the batch sweep: one mprotect pair per function costs
    more than one pair per 256 functions. Per core class."""
    for cls in platform.classes:
        for size in SIZES:
            one = median(quick_run, scenario="jit_workload", strategy="mprotect", variant="compile",
                         size_bytes=size, batch=1, core_class=cls)
            many = median(quick_run, scenario="jit_workload", strategy="mprotect", variant="compile",
                          size_bytes=size, batch=256, core_class=cls)
            assert one > 2 * many, (cls, size, one, many)


def test_cross_thread_counts_side_file(quick_run):
    if assert_cross_side_file(quick_run) is None:
        pytest.skip("no cross_thread row ran here")


@pytest.mark.parametrize("fault", ["corrupt_stub", "skip_write"])
def test_injected_faults_fail_every_verified_row(wxbench_test, tmp_path, platform, fault):
    strategies = platform.running(USER_STRATEGIES + ("test_hook",))
    assert platform.must_run <= set(strategies) and "test_hook" in strategies
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", "jit_workload,wx_audit",
                      "--strategy", ",".join(strategies), env={"WXBENCH_TEST_INJECT": fault})
    assert run.rc == 1
    for s in strategies:
        for v in VERIFIED:
            every = run.select(scenario="jit_workload", strategy=s, variant=v)
            rows = [r for r in every if r["status"] != "unsupported"]
            if v.endswith("_baseline") and not platform.baseline_memory:
                continue
            if v.startswith("cross_thread") and every and not rows:
                # not measured here (no membarrier, one CPU): as in the quick run
                assert_unsupported_once(every, f"{s}/{v}")
                assert any(w in every[0]["reason"] for w in ("membarrier", "needs 2 CPUs", "code-signing monitor")), every
                continue
            assert rows, (s, v)
            assert all(r["status"] == "failed" and "verification failed" in r["reason"] for r in rows), (s, v, rows)
        for v in ("exposure_window", "exposure_baseline"):
            rows = [r for r in run.select(scenario="wx_audit", strategy=s, variant=v) if r["status"] != "unsupported"]
            assert all(r["status"] == "failed" and "verification failed" in r["reason"] for r in rows), (s, v, rows)
    assert not (run.out / "jit_cross_thread.csv").exists(), "counts of failed rows must not be recorded"
    # The audit does not depend on the patch loops: it still answers.
    table = audit_of(run)
    assert all(r["result"] in ("yes", "no") or r["evidence"].startswith("not tried, because the code-signing monitor")
               for (s, p), r in table.items() if s == "mprotect")
    assert_audit_known(table, "test_hook")


# ------------------------------------------------- a write_code strategy here

@pytest.fixture(scope="module")
def hook_run(wxbench_test, tmp_path_factory):
    """jit_workload and wx_audit through test_hook: writable only inside
    write_code, as mapjit_callback is on a Mac."""
    out = tmp_path_factory.mktemp("hook") / "run"
    return run_wxbench(wxbench_test, out, "--quick", "--scenario", "jit_workload,wx_audit", "--strategy",
                       "test_hook", timeout=300)


def test_write_code_strategy_rows_are_ok_or_say_why(hook_run, platform):
    """Never `failed`: every row ok (verified) or unsupported for a stated
    reason, in the numbers a begin_write strategy would give."""
    assert hook_run.rc == 0, hook_run.stderr
    rows = hook_run.rows
    assert rows and {r["strategy"] for r in rows} == {"test_hook"}
    for r in rows:
        assert r["status"] in ("ok", "unsupported"), r
        if r["status"] == "unsupported":
            assert r["reason"].strip(), r
    assert_jit_rows(hook_run, platform, "test_hook")
    table = audit_of(hook_run)
    assert_exposure_rows(hook_run, table, platform, "test_hook")
    assert hook_run.meta["rows"]["failed"] == 0


def test_write_code_strategy_audit(hook_run):
    """Nobody writes at rest (mprotect RX, one view); the four window
    questions are n/a because the window runs only the hook's copy."""
    table = audit_of(hook_run)
    assert set(table) == {("test_hook", p) for p in PROPERTIES}
    assert_audit_known(table, "test_hook")


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
            one = median(hook_run, scenario="jit_workload", variant="compile", size_bytes=size, batch=1,
                         core_class=cls)
            many = median(hook_run, scenario="jit_workload", variant="compile", size_bytes=size, batch=256,
                          core_class=cls)
            assert one > 2 * many, (cls, size, one, many)
        if platform.baseline_memory:
            patch = median(hook_run, scenario="jit_workload", variant="ic_patch", core_class=cls)
            base = median(hook_run, scenario="jit_workload", variant="ic_patch_baseline", core_class=cls)
            assert patch > 2 * base, (cls, patch, base)
