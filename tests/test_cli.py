"""Command line: help, list, probe, and every bad input refused with exit 2
before anything is measured."""
import subprocess

import pytest

from conftest import ROOT


def run(binary, *args, timeout=60):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_help_lists_every_option(wxbench):
    p = run(wxbench, "--help")
    assert p.returncode == 0
    for opt in ("--list", "--probe", "--quick", "--scenario", "--strategy", "--repetitions", "--out", "--"):
        assert opt in p.stdout


def test_list_names_every_scenario_and_strategy_with_status(wxbench):
    p = run(wxbench, "--list")
    assert p.returncode == 0
    for name in ("toggle_latency", "harness", "rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"):
        assert name in p.stdout
    lines = p.stdout.splitlines()
    # every strategy line says whether it runs here, and the ones that don't say why
    for name in ("rwx", "mprotect", "dualmap", "mapjit", "mapjit_callback", "pkey"):
        line = next(l for l in lines if l.split() and l.split()[0] == name)
        assert "runs here" in line or "not here" in line
        if "not here" in line:
            why = lines[lines.index(line) + 1]
            assert "why:" in why and len(why.split("why:", 1)[1].strip()) > 5
    assert "test_segv" not in p.stdout, "test-only strategies must not reach users"


def test_probe_reports_each_strategy(wxbench):
    p = run(wxbench, "--probe")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "mprotect" in out and "exec-faults-when-writable=yes" in out.split("mprotect", 1)[1].splitlines()[0]
    dual = next(l for l in out.splitlines() if l.startswith("dualmap"))
    assert "writable-alias=yes" in dual and "runs-when-executable=yes" in dual
    rwx = next(l for l in out.splitlines() if l.startswith("rwx"))
    assert "write-faults-when-executable=no" in rwx
    for name in ("mapjit", "mapjit_callback", "pkey"):
        assert any(l.startswith(name) for l in out.splitlines())


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
