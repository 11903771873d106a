"""scripts/plot.py: one figure per scenario, not-ok rows listed and never drawn."""

import shutil

import matplotlib.image
import numpy as np
import pytest
from wxplots_testlib import RUN_A, RUN_X86, png_size, row, run_script, write_csv

import plot
import wxdata

SCENARIOS_A = ["harness", "toggle_latency", "mprotect_tlb", "dualmap_overhead", "icache_flush",
               "thread_contention", "wx_audit", "jit_workload"]


@pytest.fixture(scope="session")
def plots_a(tmp_path_factory):
    """plot.py run once on RUN_A."""
    out = tmp_path_factory.mktemp("plots_a")
    done = run_script("plot.py", RUN_A, "--out", out)
    assert done.returncode == 0, done.stderr
    return out, done


@pytest.mark.parametrize("scenario", SCENARIOS_A)
def test_each_scenario_has_a_nontrivial_png_and_svg(plots_a, scenario):
    out, _ = plots_a
    png, svg = out / f"{scenario}.png", out / f"{scenario}.svg"
    assert png.stat().st_size > 20_000
    width, height = png_size(png)
    assert width >= 800 and height >= 400
    pixels = matplotlib.image.imread(png)[..., :3]
    assert (pixels.min(axis=2) < 0.9).mean() > 0.02, "mostly blank image"
    text = svg.read_text()
    assert "<svg" in text and svg.stat().st_size > 20_000
    assert f"{scenario} — synthetic-chip-a (Synthetic Chip A (not a real measurement))" in text
    assert "wxbench v0.0-synthetic" in text and "2025-01-01T00:00:00Z" in text  # footnote from meta.json


def test_axis_labels_name_units_and_statistics(plots_a):
    out, _ = plots_a
    svg = (out / "toggle_latency.svg").read_text()
    # RUN_A has 4-5 processes per configuration: too few for a 95% interval, so min-max, said so
    assert "ns per op" in svg and "(median; whiskers min–max over 4–5 processes (fewer than 6: no 95%" in svg
    assert "P cores" in svg and "E cores" in svg  # side-by-side panels per core class
    assert "baseline: patch loop without permission change" in svg
    assert "patches per second, all threads" in (out / "thread_contention.svg").read_text()
    assert "linear scaling from 1 thread" in (out / "thread_contention.svg").read_text()
    assert "region size (pages)" in (out / "mprotect_tlb.svg").read_text()


def test_not_ok_configurations_are_listed_with_reasons(plots_a):
    out, done = plots_a
    listing = (out / "toggle_latency_not_ok.txt").read_text()
    assert "rwx/flip" in listing and "W+X refused without MAP_JIT" in listing
    assert '"memory protection keys" are a Linux API\n' in listing and "see --probe" in listing
    assert "patched function returned 0x2a, expected 0x2b" in listing
    svg = (out / "toggle_latency.svg").read_text()
    assert "Not drawn (status not ok" in svg and "pkey_alloc: not available on macOS" in svg
    assert "timeout: no result within 60 s" in (out / "mprotect_tlb.svg").read_text()
    assert not (out / "harness_not_ok.txt").exists()  # nothing to list there
    assert str(out / "toggle_latency_not_ok.txt") in done.stdout


def test_non_ok_rows_are_never_drawn(tmp_path):
    path = write_csv(tmp_path / "results.csv", [
        row(rep=1, ns="100"), row(rep=2, ns="110"), row(rep=3, ns="105"),
        row(rep=4, ns="999999", status="crashed", reason="SIGSEGV"),
        row(strategy="rwx", status="unsupported", ns="", reason="EACCES"),
        row(strategy="pkey", variant="patch", status="failed", ns="", reason="returned 0, expected 1"),
        row(variant="baseline", ns="3"),
    ])
    run = wxdata.load_run(path)
    scene = plot.Scene(run, "toggle_latency", run.scenario_configs("toggle_latency"))
    plot.plot_toggle_latency(scene)
    (ax,) = scene.fig.axes
    drawn = set()
    for line in ax.lines:  # markers and whisker caps
        drawn.update(float(y) for y in np.atleast_1d(line.get_ydata()))
    for coll in ax.collections:  # whisker bars and the baseline segment
        drawn.update(float(y) for seg in coll.get_segments() for y in np.asarray(seg)[:, 1])
    # median 105 with whiskers 100-110 from the 3 ok repetitions, and the baseline at 3
    assert drawn == {100.0, 105.0, 110.0, 3.0}
    markers = [line for line in ax.lines if line.get_marker() not in (None, "None", "", "_")]
    assert [list(m.get_ydata()) for m in markers] == [[105.0]]
    texts = [t.get_text() for t in ax.texts]
    assert "unsupported" in texts and "failed" in texts  # said in words where the point would be
    scene.finish("t", "s")
    figure_text = " ".join(t.get_text() for t in scene.fig.texts)
    assert "rwx/flip" in figure_text and "EACCES" in figure_text and "SIGSEGV" in figure_text
    plot.plt.close("all")


def test_default_output_mirrors_data_and_csv_path_is_accepted(tmp_path):
    run_dir = tmp_path / "data" / "synthetic-x86-linux" / "20250104T000000Z"
    shutil.copytree(RUN_X86, run_dir)
    done = run_script("plot.py", "data/synthetic-x86-linux/20250104T000000Z/results.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "plots" / "synthetic-x86-linux" / "20250104T000000Z"
    assert sorted(p.name for p in out.glob("*.png")) == [
        "harness.png", "icache_flush.png", "mprotect_tlb.png", "thread_contention.png", "toggle_latency.png"]
    assert "meta.json: not found" in done.stderr  # said, then carried on
    svg = (out / "mprotect_tlb.svg").read_text()
    assert "TLB shootdowns per op" in svg  # counted on this (x86 Linux) fixture
    assert "meta.json missing" in svg


def test_run_outside_data_needs_out(tmp_path):
    done = run_script("plot.py", RUN_A)
    assert done.returncode == 2
    assert "--out" in done.stderr and str(RUN_A) in done.stderr


def test_no_ok_rows_exit_0_and_nothing_written(tmp_path):
    path = write_csv(tmp_path / "run" / "results.csv", [row(status="unsupported", ns="", reason="no MAP_JIT")])
    done = run_script("plot.py", path, "--out", tmp_path / "out")
    assert done.returncode == 0
    assert "no ok rows" in done.stdout and "no MAP_JIT" in done.stdout
    assert not (tmp_path / "out").exists()


def test_figure_table_has_one_function_per_scenario():
    assert set(plot.FIGURES) == {"harness", "toggle_latency", "mprotect_tlb", "dualmap_overhead",
                                 "icache_flush", "thread_contention", "code_heap"}
    assert all(callable(f) for f in plot.FIGURES.values())


def test_a_figure_that_fails_does_not_cost_the_others(tmp_path, monkeypatch, capsys):
    def broken(scene):
        raise ValueError("unexpected shape")

    monkeypatch.setitem(plot.FIGURES, "harness", broken)
    outputs = {o.scenario: o for o in plot.draw_run(wxdata.load_run(RUN_X86), tmp_path)}
    assert outputs["harness"].error == "ValueError: unexpected shape" and outputs["harness"].png is None
    assert not (tmp_path / "harness.png").exists()
    assert outputs["toggle_latency"].error is None and outputs["toggle_latency"].png.exists()
    assert "unexpected shape" in capsys.readouterr().err


def test_a_series_keeps_its_colour_in_every_core_class_panel(tmp_path):
    path = write_csv(tmp_path / "results.csv", [
        row(variant="flip", ns="3", core="P"),
        row(variant="patch", ns="3", core="E", size=64), row(variant="patch", ns="4", core="E", size=128),
    ])
    run = wxdata.load_run(path)
    scene = plot.Scene(run, "toggle_latency", run.scenario_configs("toggle_latency"))
    plot.plot_toggle_latency(scene)
    colours = {}
    for ax in scene.fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            colours.setdefault(label, set()).add(handle.lines[0].get_color())
    plot.plt.close("all")
    assert set(colours) == {"flip", "patch, 64 B", "patch, 128 B"}
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({next(iter(c)) for c in colours.values()}) == 3
