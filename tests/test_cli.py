"""Command line: help, list, probe, and every bad input refused with exit 2
before anything is measured."""
import subprocess

import pytest

from conftest import ROOT, USER_STRATEGIES


def run(binary, *args, timeout=60):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_help_lists_every_option(wxbench):
    p = run(wxbench, "--help")
    assert p.returncode == 0
    for opt in ("--list", "--probe", "--quick", "--scenario", "--strategy", "--repetitions", "--out", "--"):
        assert opt in p.stdout


def test_list_names_every_scenario_and_strategy_with_status(wxbench, platform):
    p = run(wxbench, "--list")
    assert p.returncode == 0
    for name in ("toggle_latency", "harness", "rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"):
        assert name in p.stdout
    lines = p.stdout.splitlines()
    # every strategy line says whether it runs here, and the ones that don't say why
    for name in USER_STRATEGIES:
        line = next(l for l in lines if l.split() and l.split()[0] == name)
        assert "runs here" in line or "not here" in line
        if "not here" in line:
            why = lines[lines.index(line) + 1]
            assert "why:" in why and len(why.split("why:", 1)[1].strip()) > 5
        # what must (not) run on this platform is listed so
        if name in platform.must_run:
            assert "runs here" in line, (platform, line)
        if name in platform.must_not_run:
            assert "not here" in line, (platform, line)
    assert "test_segv" not in p.stdout, "test-only strategies must not reach users"


# What the probe must say of a strategy that runs here (docs/platforms.md,
# "wxbench --probe"): mprotect switches the whole process both ways, rwx
# never faults, dualmap has its alias, mapjit's toggle is per thread, and
# mapjit_callback's checks inside the writer callback are not tried.
PROBE_EXPECT = {
    "rwx": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=no",
            "exec-faults-when-writable=no", "writable-alias=no"),
    "mprotect": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
                 "exec-faults-when-writable=yes (SIG", "other-thread-write-faults-while-writing=no",
                 "writable-alias=no"),
    "dualmap": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
                "writable-alias=yes"),
    "mapjit": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
               "exec-faults-when-writable=yes (SIG", "other-thread-write-faults-while-writing=yes (SIG",
               "writable-alias=no"),
    "mapjit_callback": ("write-when-writable=yes", "runs-when-executable=yes",
                        "write-faults-when-executable=yes (SIG", "exec-faults-when-writable=not tried",
                        "other-thread-write-faults-while-writing=not tried", "writable-alias=no"),
    "pkey": ("write-when-writable=yes", "runs-when-executable=yes", "write-faults-when-executable=yes (SIG",
             "other-thread-write-faults-while-writing=yes (SIG"),
}


def test_probe_reports_each_strategy(wxbench, platform):
    p = run(wxbench, "--probe")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for name in USER_STRATEGIES:
        line = next((l for l in lines if l.split() and l.split()[0] == name and not l.startswith(" ")), None)
        assert line, (name, p.stdout)
        if platform.runs(name):
            assert "maps=yes" in line and "(WRONG VALUE)" not in line, line
            for want in platform.probe_expect(name, PROBE_EXPECT[name]):
                assert want in line, (name, want, line)
        else:
            assert line.split(None, 1)[1] == f"unsupported: {platform.why(name)}", (line, platform.why(name))


@pytest.mark.parametrize("args, words", [
    (["--scenario", "nonsense"], ["unknown scenario", "toggle_latency"]),
    (["--strategy", "nonsense"], ["unknown strategy", "mprotect", "dualmap"]),
    (["--repetitions", "0"], ["--repetitions"]),
    (["--repetitions", "abc"], ["--repetitions"]),
    (["--repetitions", "-3"], ["--repetitions"]),
    (["--repetitions", "2x"], ["--repetitions"]),
    (["--repetitions"], ["needs a value"]),
    (["--min-time", "0"], ["--min-time"]),
    (["--timeout", "nope"], ["--timeout"]),
    (["--bogus"], ["unknown argument"]),
    (["--", "--benchmark_nonsense=1"], ["Google Benchmark"]),
])
def test_bad_input_exits_2_with_a_message(wxbench, tmp_path, args, words):
    out = tmp_path / "run"
    p = run(wxbench, "--out", str(out), *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    for w in words:
        assert w in p.stderr
    assert not (out / "results.csv").exists(), "nothing may be measured after a usage error"


def test_unwritable_out_is_refused_before_measuring(wxbench, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = run(wxbench, "--quick", "--out", str(blocker / "sub"))
    assert p.returncode == 2
    assert "cannot" in p.stderr
    assert "[1/" not in p.stderr, "no measurement may start"


def test_existing_results_are_never_overwritten(wxbench, tmp_path):
    (tmp_path / "results.csv").write_text("precious\n")
    p = run(wxbench, "--quick", "--scenario", "harness", "--out", str(tmp_path))
    assert p.returncode == 2
    assert "refusing to overwrite" in p.stderr
    assert (tmp_path / "results.csv").read_text() == "precious\n"
