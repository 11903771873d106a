"""Every script on bad input: exit 2 naming file and line; no rows: exit 0, nothing written;
--help: exit 0."""

import subprocess
import sys

import pytest
from wxplots_testlib import HEADER, RUN_A, row, run_script, write_csv
from wxplots_testlib import SCRIPTS as SCRIPT_DIR

SCRIPTS = ["plot.py", "report.py", "compare.py", "gnuplot_data.py", "terminal_chart.py"]


def invoke(script, csv_path, out):
    """Run a script on one run; compare.py gets a good second run beside it."""
    args = [csv_path]
    if script == "compare.py":
        args = [csv_path, RUN_A]
    if script != "terminal_chart.py":
        args += ["--out", out]
    if script == "gnuplot_data.py":
        args += ["--data-only"]
    return run_script(script, *args)


def assert_nothing_written(out):
    assert not out.exists() or not any(out.iterdir()), f"{out} should hold nothing"


@pytest.mark.parametrize("script", SCRIPTS)
def test_missing_file(script, tmp_path):
    path = tmp_path / "data" / "m" / "r" / "results.csv"
    done = invoke(script, path, tmp_path / "out")
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(path.parent) in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("script", SCRIPTS)
def test_missing_columns(script, tmp_path):
    path = write_csv(tmp_path / "run" / "results.csv", [], header=HEADER.replace(",ns_per_op", ""))
    done = invoke(script, path, tmp_path / "out")
    assert done.returncode == 2
    assert f"{path}:1: missing columns: ns_per_op" in done.stderr
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("script", SCRIPTS)
def test_non_numeric_value_in_ok_row(script, tmp_path):
    lines = [row(), row(rep=2, status="unsupported", ns="", reason="two\nlines, \"quoted\""), row(rep=3, ns="1e")]
    path = write_csv(tmp_path / "run" / "results.csv", lines)
    done = invoke(script, path, tmp_path / "out")
    assert done.returncode == 2
    assert f"{path}:5: column ns_per_op is '1e'" in done.stderr  # line 5: the quoted record spans 3-4
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("script", SCRIPTS)
def test_header_only_exits_0_and_writes_nothing(script, tmp_path):
    path = write_csv(tmp_path / "run" / "results.csv", [])
    done = invoke(script, path, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "nothing" in done.stdout
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("script", SCRIPTS)
def test_extra_column_tolerated(script, tmp_path):
    lines = [row(rep=r, ns=str(100 + r), variant=v) + ",whatever" for r in (1, 2, 3) for v in ("flip", "patch")]
    path = write_csv(tmp_path / "run" / "results.csv", lines, header=HEADER + ",new_column")
    done = invoke(script, path, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    if script == "terminal_chart.py":
        assert "102 ns" in done.stdout
    else:
        assert any((tmp_path / "out").iterdir())


def test_bad_audit_csv_names_line(tmp_path):
    run = tmp_path / "run"
    write_csv(run / "results.csv", [row()])
    (run / "audit.csv").write_text("strategy,property,result,evidence\nmprotect,per-thread,maybe,guess\n")
    done = run_script("report.py", run, "--out", tmp_path / "out")
    assert done.returncode == 2 and f"{run / 'audit.csv'}:2: result is 'maybe'" in done.stderr


def test_every_script_with_a_main_answers_help_with_exit_0():
    """--help of every scripts/*.py that has a main (run side by side: each imports matplotlib)."""
    scripts = [p for p in sorted(SCRIPT_DIR.glob("*.py")) if "def main" in p.read_text()]
    assert len(scripts) >= 8
    procs = {p.name: subprocess.Popen([sys.executable, str(p), "--help"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for p in scripts}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip(), (name, err[-500:])
