"""gnuplot figures (scripts/*.gp via gnuplot_data.py) and the dumb-terminal chart."""

import os
import shutil

import pytest
from wxplots_testlib import RUN_A, RUN_X86, median, ok_values, png_size, run_script

GNUPLOT = shutil.which("gnuplot")
needs_gnuplot = pytest.mark.skipif(GNUPLOT is None, reason="gnuplot is not installed (Debian: gnuplot-nox)")


@needs_gnuplot
def test_gnuplot_figures_are_drawn(tmp_path):
    done = run_script("gnuplot_data.py", RUN_X86, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("toggle_latency", "mprotect_tlb"):
        png = tmp_path / f"{name}_gnuplot.png"
        w, h = png_size(png)
        assert w == 1100 and h >= 650 and png.stat().st_size > 15_000
        assert f"{name}.gp" in done.stdout and "gnuplot -e" in done.stdout  # the command is shown
    assert png_size(tmp_path / "mprotect_tlb_gnuplot.png")[1] == 1100  # second panel: TLB shootdowns


def test_gnuplot_data_files_hold_medians(tmp_path):
    done = run_script("gnuplot_data.py", RUN_A, "--out", tmp_path, "--data-only")
    assert done.returncode == 0, done.stderr
    lines = [ln.split() for ln in (tmp_path / "toggle_latency_gnuplot.dat").read_text().splitlines()
             if not ln.startswith("#")]
    by_strategy = {ln[0]: ln[1:] for ln in lines}
    assert set(by_strategy) == {"mprotect", "dualmap", "mapjit", "mapjit_callback"}  # rwx, pkey: not ok
    flip = median(ok_values(RUN_A, scenario="toggle_latency", strategy="mapjit", variant="flip", core_class="P"))
    assert float(by_strategy["mapjit"][0]) == pytest.approx(flip, rel=1e-5)
    blocks = (tmp_path / "mprotect_tlb_gnuplot.dat").read_text().split("\n\n\n")
    assert len(blocks) == 9 and blocks[0].splitlines()[1].startswith('"thread victims, 0 victims"')
    assert not list(tmp_path.glob("*.png"))


def test_terminal_chart(tmp_path):
    done = run_script("terminal_chart.py", RUN_A)
    assert done.returncode == 0, done.stderr
    assert "mapjit                       48.0 ns           60.0 ns" in done.stdout
    assert "pkey                     unsupported       unsupported" in done.stdout
    if GNUPLOT:
        assert "flip (*)" in done.stdout and "+---" in done.stdout  # the dumb-terminal frame


def test_terminal_chart_without_gnuplot_prints_a_table_and_says_why(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no gnuplot on this PATH
    done = run_script("terminal_chart.py", RUN_A, env=env)
    assert done.returncode == 0, done.stderr
    assert "gnuplot not found on PATH" in done.stdout
    assert "mprotect                     1.50 µs           1.60 µs" in done.stdout
    assert "+---" not in done.stdout
