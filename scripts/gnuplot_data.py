#!/usr/bin/python3
"""Draw toggle_latency and mprotect_tlb with gnuplot.

Usage:
    gnuplot_data.py RUN_DIR [--out PLOTS_DIR] [--data-only] [--gnuplot PROGRAM]

gnuplot cannot read RFC 4180 quoting reliably, so this writes the medians as plain
whitespace-separated files (<scenario>_gnuplot.dat) into PLOTS_DIR (default
plots/<machine>/<run>/), then runs scripts/toggle_latency.gp and scripts/mprotect_tlb.gp
on them, naming the files with `gnuplot -e`, and prints each command it ran.
Only ok repetitions are summarised; configurations that are not ok are left out
(see plot.py's <scenario>_not_ok.txt). With several core classes, P (else any) is drawn.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import wxdata  # noqa: E402

TOGGLE_VARIANTS = ("flip", "patch", "redundant", "baseline")
MPROTECT_VARIANTS = ("flip", "flip_victim_processes", "noop")
MISSING = "?"


def num(x: float | None) -> str:
    return MISSING if x is None else f"{x:.6g}"


def gp_string(text: str) -> str:
    """A gnuplot single-quoted string ('' stands for one quote)."""
    return "'" + text.replace("'", "''") + "'"


def toggle_medians(run: wxdata.Run, core: str) -> list[tuple[str, dict]]:
    """[(strategy, {variant: Stats or None})] for strategies with any ok toggle_latency row."""
    configs = [c for c in run.scenario_configs("toggle_latency") if c.core_class == core]
    out = []
    for s in sorted({c.strategy for c in configs}, key=wxdata.strategy_key):
        stats = {}
        for v in TOGGLE_VARIANTS:
            cfg = next((c for c in wxdata.select(configs, "toggle_latency", v, strategy=s) if c.n), None)
            stats[v] = cfg.stats() if cfg else None
        if any(stats.values()):
            out.append((s, stats))
    return out


def write_toggle(run: wxdata.Run, core: str, path: Path) -> bool:
    table = toggle_medians(run, core)
    if not table:
        return False
    lines = ["# strategy " + " ".join(f"{v}_median {v}_min {v}_max" for v in TOGGLE_VARIANTS),
             f"# ns per op over ok repetitions; {MISSING} = absent or not ok; core class {core}; {run.csv_path}"]
    for strategy, stats in table:
        cells = []
        for v in TOGGLE_VARIANTS:
            st = stats[v]
            cells += [num(st.median), num(st.min), num(st.max)] if st else [MISSING] * 3
        lines.append(" ".join([strategy] + cells))
    path.write_text("\n".join(lines) + "\n")
    return True


def write_mprotect(run: wxdata.Run, core: str, path: Path) -> dict | None:
    """Write one block per (variant, victims) series; returns the gnuplot variables."""
    configs = [c for c in run.scenario_configs("mprotect_tlb") if c.core_class == core and c.n and c.pages]
    strategies = sorted({c.strategy for c in configs}, key=wxdata.strategy_key)
    if not configs:
        return None
    victims = sorted({c.victims or 0 for c in configs})
    blocks, colors, dashes, has_tlb = [], [], [], False
    keys = sorted({(c.strategy, c.variant, c.victims or 0) for c in configs},
                  key=lambda k: (wxdata.strategy_key(k[0]), wxdata.order_key(k[1], MPROTECT_VARIANTS), k[2]))
    for strategy, variant, v in keys:
        mine = [c for c in configs if (c.strategy, c.variant, c.victims or 0) == (strategy, variant, v)]
        by_pages = {}
        for c in sorted(mine, key=wxdata.param_sort_key):
            by_pages.setdefault(c.pages, c)  # one configuration per size: the smallest other parameters
        name = {"flip": "thread victims", "flip_victim_processes": "process victims"}.get(variant, variant)
        title = f"{strategy} " if len(strategies) > 1 else ""
        title += name if variant == "noop" and v == 0 else f"{name}, {wxdata.fmt_param('victims', v)}"
        rows = [f'"{title}" ns_median ns_min ns_max tlb_median']
        for pages in sorted(by_pages):
            st = by_pages[pages].stats()
            tlb = by_pages[pages].stats("tlb_shootdowns_per_op")
            has_tlb |= tlb is not None
            rows.append(f"{pages:g} {num(st.median)} {num(st.min)} {num(st.max)} {num(tlb.median if tlb else None)}")
        blocks.append("\n".join(rows))
        colors.append(str(victims.index(v)))
        dashes.append(str({"flip": 1, "flip_victim_processes": 2, "noop": 3}.get(variant, 4)))
    header = f"# mprotect_tlb medians over ok repetitions, core class {core}; {run.csv_path}\n"
    path.write_text(header + "\n\n\n".join(blocks) + "\n")
    return {"nseries": str(len(blocks)), "colors": gp_string(" ".join(colors)),
            "dashes": gp_string(" ".join(dashes)), "has_tlb": "1" if has_tlb else "0"}


def footnote(run: wxdata.Run, scenario: str) -> str:
    bits = [run.stamp()]
    skipped = [c for c in run.scenario_configs(scenario) if c.n == 0]
    if skipped:
        bits.append(f"{len(skipped)} configurations not ok, not drawn (see {scenario}_not_ok.txt from plot.py)")
    return " · ".join(bits)


def run_gnuplot(gnuplot: str, script: Path, variables: dict) -> None:
    assignments = "; ".join(f"{k}={v}" for k, v in variables.items())
    cmd = [gnuplot, "-e", assignments, str(script)]
    print("$ " + " ".join([gnuplot, "-e", '"' + assignments + '"', str(script)]))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gnuplot failed on {script}:\n{done.stderr.strip()}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)


def main(argv=None) -> int:
    ap = wxdata.run_parser(__doc__)
    ap.add_argument("--out", metavar="PLOTS_DIR", help="output folder (default: plots/<machine>/<run>)")
    ap.add_argument("--data-only", action="store_true", help="write the .dat files, do not run gnuplot")
    ap.add_argument("--gnuplot", default="gnuplot", help="gnuplot program (default: gnuplot on PATH)")
    args = ap.parse_args(argv)
    run = wxdata.open_run(args.run)
    if not run.has_ok_rows:
        raise wxdata.NoData(f"{run.csv_path}: no ok rows; nothing to draw, nothing written")
    core = wxdata.preferred_core_class(run)
    wanted = [c for c in run.configs if c.core_class == core and c.n
              and c.scenario in ("toggle_latency", "mprotect_tlb")]
    if not wanted:
        raise wxdata.NoData(f"{run.csv_path}: no ok toggle_latency or mprotect_tlb rows; nothing written")
    gnuplot = shutil.which(args.gnuplot)
    if gnuplot is None and not args.data_only:
        wxdata.fail(f"{args.gnuplot}: not found on PATH; install gnuplot (Debian: gnuplot-nox) or pass --data-only")
        return 1
    out = wxdata.output_dir(run, args.out)
    out.mkdir(parents=True, exist_ok=True)
    where = "" if core == "any" else f" — {wxdata.core_text(core)}"
    jobs = []
    dat = out / "toggle_latency_gnuplot.dat"
    if write_toggle(run, core, dat):
        jobs.append(("toggle_latency", dat, {}))
    dat = out / "mprotect_tlb_gnuplot.dat"
    extra = write_mprotect(run, core, dat)
    if extra is not None:
        jobs.append(("mprotect_tlb", dat, extra))
    for scenario, dat, extra in jobs:
        print(dat)
        if args.data_only:
            continue
        png = out / f"{scenario}_gnuplot.png"
        title = f"{scenario} — {run.machine}" + (f" ({run.chip})" if run.chip else "") + where
        variables = {"datafile": gp_string(str(dat)), "outfile": gp_string(str(png)),
                     "plottitle": gp_string(title), "footnote": gp_string(footnote(run, scenario)), **extra}
        try:
            run_gnuplot(gnuplot, HERE / f"{scenario}.gp", variables)
        except RuntimeError as exc:
            wxdata.fail(str(exc))
            return 1
        print(png)
    return 0


if __name__ == "__main__":
    wxdata.run_main(main)
