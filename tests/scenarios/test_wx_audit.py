"""wx_audit: does each strategy keep its W^X promise, and for how long is
code writable per patch. audit.csv in its documented shape, the audit
agreeing with what is known of each strategy on this platform
(conftest.Platform), --probe printing the same answers, an audit child that
crashes or hangs, the exposure_window and exposure_baseline rows, injected
faults, and the write_code strategy of the test build (test_hook, writable
only inside write_code like mapjit_callback, built on mprotect).

The audit of each strategy runs once per run, in a child of the run's own
process, before the first wx_audit child of that strategy (bench/app/runner.c);
its answers go to audit.csv and to the scenario's child."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (USER_STRATEGIES, WRITE_CODE_STRATEGIES, assert_baseline_rows, assert_exit_code,
                      assert_measured, assert_unsupported_once, flag, injected_run, median_ns, read_csv, run_wxbench)

SCENARIO = "wx_audit"
VARIANTS = ("exposure_window", "exposure_baseline")
AUDIT_HEADER = "strategy,property,result,evidence"
PROPERTIES = ("writable_at_rest", "permanent_writable_alias", "writer_can_execute_while_writable",
              "other_thread_can_write_while_writable", "other_thread_can_execute_while_writable",
              "new_thread_inherits_write_access")
# The questions that need an access while the writer holds write access: n/a
# for a strategy whose window runs only its write_code copy.
WINDOW_PROPERTIES = PROPERTIES[2:]
# Known answers (docs/scenarios/wx_audit.md; the unit tests hold the same), per
# strategy where it runs: yes / no / n/a; None = not fixed here. A strategy
# not named here gets the generic checks only.
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


def answered_or_not_tried(row):
    """An audit answer, or an execute fault not provoked because the
    code-signing monitor is on (macOS: the fault would be a SIGKILL)."""
    return row["result"] in ("yes", "no") or row["evidence"].startswith("not tried, because the code-signing monitor")


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


def assert_exposure_rows(run, table, plat, strategy, reps=3):
    """wx_audit's rows for a strategy that runs here: no window where the
    code is always writable or where the window lies inside write_code,
    else measured; the baseline measured where it has its memory."""
    window = run.select(scenario=SCENARIO, strategy=strategy, variant="exposure_window")
    what = f"wx_audit/{strategy}/exposure_window"
    if table[(strategy, "writable_at_rest")]["result"] == "yes":
        assert_unsupported_once(window, what, "always writable (permanent):")
        assert window[0]["reason"].startswith("always writable (permanent):"), window
    elif strategy in WRITE_CODE_STRATEGIES:
        assert_unsupported_once(window, what, "inside write_code", "toggle_latency/flip")
    else:
        assert_measured(window, plat, reps, what)
        assert all(int(r["iterations"]) > 0 for r in window)
    base = run.select(scenario=SCENARIO, strategy=strategy, variant="exposure_baseline")
    assert_baseline_rows(base, plat, reps, f"wx_audit/{strategy}/exposure_baseline")


# --------------------------------------------------------------------- audit

def test_audit_csv_has_one_row_per_strategy_and_property(quick_run):
    assert_exit_code(quick_run)  # 0, or 1 only for rows whose victims lost their CPU to other programs
    table = audit_of(quick_run)
    strategies = {r["strategy"] for r in quick_run.rows if r["scenario"] == SCENARIO}
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


def test_audit_matches_the_strategy_flags(quick_run, platform):
    """What the table says of a strategy that runs here, the audit finds:
    always RWX or a writable alias is writable at rest, a writable alias is
    a permanent writable alias. Holds for a strategy not in KNOWN_AUDIT."""
    table = audit_of(quick_run)
    for s in platform.running():
        if flag(s, "always_rwx") or flag(s, "writable_alias"):
            assert table[(s, "writable_at_rest")]["result"] == "yes", s
        if flag(s, "writable_alias"):
            assert table[(s, "permanent_writable_alias")]["result"] == "yes", s


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
        rows = quick_run.select(scenario=SCENARIO, strategy=s)
        assert {r["variant"] for r in rows} == set(VARIANTS)
        for r in rows:
            assert_unsupported_once([r], f"wx_audit/{s}/{r['variant']}", platform.why(s))


def test_probe_prints_the_audit(wxbench, platform):
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
    run = run_wxbench(wxbench_test, tmp_path / "r", "--quick", "--scenario", SCENARIO, "--strategy",
                      "test_segv,mprotect")
    assert run.rc == 1
    table = audit_of(run)
    for p in PROPERTIES:
        r = table[("test_segv", p)]
        assert r["result"] == "n/a" and "killed by SIGSEGV" in r["evidence"], r
        assert answered_or_not_tried(table[("mprotect", p)]), table[("mprotect", p)]
    window = run.select(strategy="test_segv", variant="exposure_window")
    assert window and all(r["status"] == "failed" and "audit" in r["reason"] for r in window)
    assert_exposure_rows(run, table, platform, "mprotect")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_audit_child_does_not_outlive_a_killed_run(wxbench_test, tmp_path):
    out = tmp_path / "r"
    run = run_wxbench(wxbench_test, out, "--quick", "--scenario", SCENARIO, "--strategy", "test_hang",
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
        if flag(s, "always_rwx") or flag(s, "writable_alias"):  # always writable: no window
            window = quick_run.select(scenario=SCENARIO, strategy=s, variant="exposure_window")
            assert window[0]["status"] == "unsupported", window


def test_mprotect_window_is_longer_than_the_clock_floor(quick_run, platform):
    """Sanity, not a budget: mprotect's window contains an mprotect call
    (end_write); the baseline holds two clock reads around a stub write.
    Per core class."""
    if not platform.baseline_memory:
        pytest.skip("no baseline memory here (Apple silicon: the dual mapping is refused): "
                    f"{platform.why('dualmap')}")
    for cls in platform.classes:
        w = median_ns(quick_run, scenario=SCENARIO, strategy="mprotect", variant="exposure_window", core_class=cls)
        b = median_ns(quick_run, scenario=SCENARIO, strategy="mprotect", variant="exposure_baseline", core_class=cls)
        assert w > 2 * b, (cls, w, b)


@pytest.mark.parametrize("fault", ["corrupt_stub", "skip_write"])
def test_injected_faults_fail_every_verified_row(wxbench_test, tmp_path, platform, fault):
    run, strategies = injected_run(wxbench_test, tmp_path / "r", platform, SCENARIO, fault)
    assert run.rc == 1
    for s in strategies:
        for v in VARIANTS:
            rows = [r for r in run.select(scenario=SCENARIO, strategy=s, variant=v) if r["status"] != "unsupported"]
            assert all(r["status"] == "failed" and "verification failed" in r["reason"] for r in rows), (s, v, rows)
    # The audit does not depend on the patch loops: it still answers.
    table = audit_of(run)
    assert all(answered_or_not_tried(r) for (s, p), r in table.items() if s == "mprotect")
    assert_audit_known(table, "test_hook")


# ------------------------------------------------- a write_code strategy here

def test_write_code_strategy_rows_are_ok_or_say_why(hook_run, platform):
    """Never `failed`: exposure_window unsupported (the window lies inside
    write_code), exposure_baseline measured where it has its memory."""
    assert_exit_code(hook_run)
    rows = hook_run.select(scenario=SCENARIO)
    assert rows and {r["strategy"] for r in rows} == {"test_hook"}
    for r in rows:
        assert r["status"] in ("ok", "unsupported"), r
        if r["status"] == "unsupported":
            assert r["reason"].strip(), r
    assert_exposure_rows(hook_run, audit_of(hook_run), platform, "test_hook")


def test_write_code_strategy_audit(hook_run):
    """Nobody writes at rest (mprotect RX, one view); the four window
    questions are n/a because the window runs only the hook's copy."""
    table = audit_of(hook_run)
    assert set(table) == {("test_hook", p) for p in PROPERTIES}
    assert_audit_known(table, "test_hook")
