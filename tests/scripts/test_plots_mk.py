"""scripts/plots.mk included by a Makefile that sets PYTHON, as the top-level one does."""

import shutil
import subprocess
import sys

import pytest
from wxplots_testlib import RUN_A, RUN_X86, SCRIPTS

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture
def project(tmp_path):
    """A directory with data/ holding two machines and a Makefile including plots.mk."""
    shutil.copytree(RUN_X86, tmp_path / "data" / "synthetic-x86-linux" / "20250104T000000Z")
    # the newest run belongs to the machine whose name sorts first: `ls | sort | tail -1` would miss it
    shutil.copytree(RUN_X86, tmp_path / "data" / "synthetic-aaa-copy" / "20260101T000000Z")
    (tmp_path / "Makefile").write_text(f"PYTHON := {sys.executable}\ninclude {SCRIPTS / 'plots.mk'}\n")
    return tmp_path


def make(project, *args):
    return subprocess.run([MAKE, "--no-print-directory", *args], cwd=project, capture_output=True, text=True,
                          timeout=180)


def test_plots_default_is_latest_run_by_timestamp(project):
    done = make(project, "plots")
    assert done.returncode == 0, done.stderr
    assert (project / "plots" / "synthetic-aaa-copy" / "20260101T000000Z" / "toggle_latency.png").exists()
    assert not (project / "plots" / "synthetic-x86-linux").exists()


def test_run_override_gnuplot_and_terminal_chart(project):
    run = "data/synthetic-x86-linux/20250104T000000Z"
    done = make(project, "terminal-chart", f"RUN={run}", "GNUPLOT=no-such-gnuplot")
    assert done.returncode == 0, done.stderr
    assert "pkey                         30.0 ns           40.0 ns" in done.stdout
    if shutil.which("gnuplot"):
        done = make(project, "plots-gnuplot", f"RUN={run}")
        assert done.returncode == 0, done.stderr
        assert (project / "plots" / "synthetic-x86-linux" / "20250104T000000Z" / "toggle_latency_gnuplot.png").exists()


def test_report_and_compare_command_lines(project):
    done = make(project, "-n", "report")
    assert done.returncode == 0
    assert f"{SCRIPTS}/report.py data/synthetic-aaa-copy/20260101T000000Z" in done.stdout
    done = make(project, "-n", "compare", f"RUNS=data/a/t1 {RUN_A}", "BASE=synthetic-chip-a")
    assert f"{SCRIPTS}/compare.py data/a/t1 {RUN_A} --base synthetic-chip-a --data data" in done.stdout


def test_compare_runs_latest_per_machine(project):
    done = make(project, "compare", "BASE=synthetic-x86-linux")
    assert done.returncode == 0, done.stderr
    # both copies carry the slug synthetic-x86-linux in their rows, so the labels add the run name
    (made,) = list((project / "plots" / "compare").iterdir())
    assert made.name == "synthetic-x86-linux-20260101T000000Z_vs_synthetic-x86-linux-20250104T000000Z"
    assert (made / "compare.html").exists() and str(made.relative_to(project) / "compare.md") in done.stdout


def test_no_data_says_what_to_do(tmp_path):
    (tmp_path / "Makefile").write_text(f"PYTHON := {sys.executable}\ninclude {SCRIPTS / 'plots.mk'}\n")
    done = make(tmp_path, "plots")
    assert done.returncode != 0 and "make bench" in done.stderr


def test_python_is_required(tmp_path):
    (tmp_path / "Makefile").write_text(f"include {SCRIPTS / 'plots.mk'}\n")
    done = make(tmp_path, "plots", "RUN=data/x/y")
    assert done.returncode != 0 and "set PYTHON" in done.stderr


def test_fragment_defines_only_its_own_targets():
    text = (SCRIPTS / "plots.mk").read_text()
    rules = [line for line in text.splitlines()
             if line and not line[0].isspace() and ":" in line and "=" not in line and not line.startswith(("#", "."))]
    targets = {line.split(":")[0] for line in rules}
    assert targets == {"wxplots-need-run", "plots", "plots-gnuplot", "report", "compare", "terminal-chart"}


@pytest.mark.parametrize("before", [True, False])
def test_including_does_not_change_the_default_goal(tmp_path, before):
    include = f"PYTHON := {sys.executable}\ninclude {SCRIPTS / 'plots.mk'}\n"
    rule = "all:\n\t@echo the includer default\n"
    (tmp_path / "Makefile").write_text(include + rule if before else rule + include)
    done = make(tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "the includer default"
