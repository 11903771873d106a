"""The macOS-first-run checks that can be made on every platform: what
--probe says about signing, the code-signing monitor and the JIT toggle;
meta.json's signing fields; rows of MAP_JIT strategies labelled where the
toggle is not enforced; the entitlement files of `make bench HARDENED=1`, and
that HARDENED=1 refuses, measuring nothing, where it cannot run
(docs/platforms.md, "First run on a Mac")."""
import os
import plistlib
import subprocess

import pytest

from conftest import JIT_TOGGLE_STRATEGIES, PROBE_SYSTEM, ROOT, TOGGLE_NOT_ENFORCED, parse_probe

ENTITLEMENTS = ROOT / "tools" / "entitlements"


def probe(wxbench):
    p = subprocess.run([str(wxbench), "--probe"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_probe_says_what_the_system_enforces(wxbench, platform):
    system, strategies = parse_probe(probe(wxbench))
    assert set(system) == set(PROBE_SYSTEM), system
    if platform.macos:
        assert not system["signing"].startswith("n/a"), system
        assert system["code-signing monitor"].split()[0] in ("on", "off", "unknown"), system
        assert "security.codesigning.config" in system["code-signing monitor"], system
    else:
        assert system["signing"].startswith("n/a (not applicable"), system
        assert system["code-signing monitor"].startswith("n/a"), system
        assert "not applicable" in system["JIT write protection"], system
        assert "not applicable" in system["JIT write allow-list"], system
    if platform.apple_silicon:
        text = system["JIT write protection"]
        assert text.startswith(("enforced", TOGGLE_NOT_ENFORCED, "not checked")), text


def test_probe_labels_an_unenforced_toggle(wxbench, platform):
    """Where writes succeed while write-protected the probe says so plainly,
    under each MAP_JIT strategy that maps."""
    _, strategies = parse_probe(probe(wxbench))
    for name in JIT_TOGGLE_STRATEGIES:
        line, notes = strategies[name]
        if "maps=yes" not in line:
            continue
        said = any(TOGGLE_NOT_ENFORCED in n for n in notes)
        assert said == platform.toggle_not_enforced, (name, line, notes)


def test_exec_while_writable_is_not_tried_under_the_code_signing_monitor(wxbench, platform):
    """With the monitor on, every exec-while-writable answer is "not tried"
    with the reason; elsewhere the access is made, in a child process."""
    _, strategies = parse_probe(probe(wxbench))
    for name, (line, notes) in strategies.items():
        if "maps=yes" not in line or name == "mapjit_callback":
            continue
        audit = [n for n in notes if n.startswith("audit writer_can_execute_while_writable")]
        assert audit, (name, notes)
        if platform.csm:
            assert "exec-faults-when-writable=not tried (code-signing monitor on)" in line, line
            assert "n/a  not tried, because the code-signing monitor is on" in audit[0], audit
        else:
            assert "exec-faults-when-writable=not tried" not in line, line
            assert "in a child process" in audit[0] or "process making it was killed" in audit[0], audit


def test_meta_records_the_signing(quick_run, platform):
    meta = quick_run.meta
    assert "hardened_runtime" in meta and "signing" in meta, sorted(meta)
    assert {"enforced", "evidence"} <= set(meta["jit_write_protection"]), meta["jit_write_protection"]
    assert {"enforced", "evidence"} <= set(meta["jit_write_allowlist"]), meta["jit_write_allowlist"]
    if platform.macos:
        assert meta["signing"]["mode"] != "n/a", meta["signing"]
        hardened = meta["signing"]["mode"].startswith("hardened")
        assert meta["hardened_runtime"] is hardened, meta["signing"]
    else:
        assert meta["hardened_runtime"] is False and meta["signing"]["mode"] == "n/a", meta["signing"]
        assert meta["jit_write_protection"]["enforced"] is None
        assert meta["jit_write_allowlist"]["enforced"] is False


def test_rows_of_an_unenforced_toggle_are_labelled(quick_run, platform):
    """Every ok row of a MAP_JIT strategy says it is no Mac result where the
    toggle is not enforced, and no row says so elsewhere."""
    for r in quick_run.rows:
        labelled = TOGGLE_NOT_ENFORCED in r["reason"]
        if r["strategy"] in JIT_TOGGLE_STRATEGIES and r["status"] == "ok":
            assert labelled == platform.toggle_not_enforced, r
        else:
            assert not labelled, r


# disable-library-validation: an ad-hoc signature has no team, and the
# hardened runtime would refuse Homebrew's Google Benchmark library otherwise.
LIBRARIES = "com.apple.security.cs.disable-library-validation"


@pytest.mark.parametrize("name, keys", [
    ("allow-jit.plist", {"com.apple.security.cs.allow-jit", LIBRARIES}),
    ("jit-write-allowlist.plist", {"com.apple.security.cs.allow-jit", "com.apple.security.cs.jit-write-allowlist",
                                   LIBRARIES}),
])
def test_entitlement_files(name, keys):
    """The entitlements make bench HARDENED=1 signs with: plists that parse,
    holding exactly these keys, each true (nothing else relaxed)."""
    with open(ENTITLEMENTS / name, "rb") as f:
        ent = plistlib.load(f)
    assert ent == {k: True for k in keys}, ent


def test_hardened_refused_where_it_cannot_run(tmp_path):
    """Off macOS, make bench HARDENED=1 stops first with a clear message
    and a non-zero status: nothing installed, built or measured."""
    if os.uname().sysname == "Darwin":
        pytest.skip("macOS signs binaries: HARDENED=1 runs here (the CI's macOS jobs run it)")
    env = dict(os.environ, MAKEFLAGS="")
    p = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "bench", "HARDENED=1", "QUICK=1",
                        f"B={tmp_path / 'build'}"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "HARDENED=1" in p.stderr and "macOS" in p.stderr and "nothing was built or measured" in p.stderr, p.stderr
    assert not (tmp_path / "build").exists(), "nothing may be built"
    assert "results:" not in p.stdout and "[1/" not in p.stderr, "nothing may be measured"


def test_a_starved_measuring_thread_with_victims_is_a_busy_machine():
    """conftest.victim_lost excuses a row interfered because its measuring
    thread was starved in every try (wx_measuring_check's reason, whole)
    only where the check runs: single-thread cases with victims."""
    from conftest import victim_lost
    reason = ("spoiled by other work in each of 3 tries (fresh processes); the last: "
              "the measuring thread was starved: it waited for a CPU for 91% of the timed loop (62.262 of 68.448 ms, "
              "runnable but not running; at most 75% is allowed), so ns_per_op would measure the waiting")
    row = {"status": "interfered", "scenario": "mprotect_tlb", "variant": "flip", "threads": "1", "victims": "1",
           "ns_per_op": "", "reason": reason}
    assert victim_lost(row)
    assert victim_lost(dict(row, scenario="jit_workload", variant="cross_thread_nosync"))
    assert not victim_lost(dict(row, victims="0"))
    assert not victim_lost(dict(row, threads="4"))
    assert not victim_lost(dict(row, reason=reason + "; verification failed"))
    assert not victim_lost(dict(row, status="ok", ns_per_op="3.5", reason=""))
    assert victim_lost(dict(row, reason=reason.replace("runnable but not running", "not on a CPU")))
