#!/usr/bin/python3
"""Print the toggle_latency headline in the terminal: median ns per op of flip and
patch per strategy, as a gnuplot `dumb` chart followed by the numbers.

Usage:
    terminal_chart.py RUN_DIR [--gnuplot PROGRAM] [--size COLSxROWS]

Without gnuplot on PATH it prints the table alone and says why. Only ok repetitions
count; strategies without an ok flip or patch row are listed with their status.
With several core classes, P (else any) is shown.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wxdata  # noqa: E402
from gnuplot_data import toggle_medians  # noqa: E402

VARIANTS = ("flip", "patch")


def table(rows, not_ok) -> str:
    lines = [f"{'strategy':<18}{'flip (W->X->W)':>18}{'patch (verified)':>18}"]
    for strategy, stats in rows:
        cells = [wxdata.fmt_ns(stats[v].median) if stats[v] else "—" for v in VARIANTS]
        lines.append(f"{strategy:<18}{cells[0]:>18}{cells[1]:>18}")
    for strategy, status in not_ok:
        lines.append(f"{strategy:<18}{status:>18}{status:>18}")
    return "\n".join(lines)


def chart(gnuplot: str, rows, title: str, size: str) -> str:
    data = "\n".join(
        f'"{s}" ' + " ".join(f"{st[v].median:.6g}" if st[v] else "?" for v in VARIANTS) for s, st in rows)
    cols, lines = size.split("x")
    script = f"""
set terminal dumb size {int(cols)},{int(lines)} noenhanced
set datafile missing "?"
$data << EOD
{data}
EOD
set title "{title}"
set style data histograms
set style histogram clustered gap 1
set style fill solid
set logscale y
set ylabel "ns per op"
set key top right
# the dumb terminal draws the first series with '*' and the second with '#'
set xtics nomirror
plot $data using 2:xtic(1) title "flip (*)", '' using 3 title "patch (#)"
"""
    done = subprocess.run([gnuplot], input=script, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout


def main(argv=None) -> int:
    ap = wxdata.run_parser(__doc__)
    ap.add_argument("--gnuplot", default="gnuplot", help="gnuplot program (default: gnuplot on PATH)")
    ap.add_argument("--size", default="100x28", help="chart size in characters, COLSxROWS (default 100x28)")
    args = ap.parse_args(argv)
    run = wxdata.open_run(args.run)
    core = wxdata.preferred_core_class(run)
    rows = [(s, st) for s, st in toggle_medians(run, core) if st["flip"] or st["patch"]]
    drawn = {s for s, _ in rows}
    not_ok = []
    for c in run.scenario_configs("toggle_latency"):
        if c.core_class == core and c.strategy not in drawn and c.strategy not in dict(not_ok):
            not_ok.append((c.strategy, c.status))
    if not rows:
        raise wxdata.NoData(f"{run.csv_path}: no ok toggle_latency flip or patch rows; nothing to chart")
    where = "" if core == "any" else f", {wxdata.core_text(core)}"
    title = f"toggle_latency: median ns per op, {run.machine}{where}"
    gnuplot = shutil.which(args.gnuplot)
    if gnuplot is None:
        print(f"({args.gnuplot} not found on PATH, so no chart; the numbers instead)")
    else:
        try:
            print(chart(gnuplot, rows, title.replace('"', "'"), args.size))
        except RuntimeError as exc:
            print(f"(gnuplot failed, so no chart: {exc}; the numbers instead)")
    print(title + " (median over ok repetitions)")
    print(table(rows, not_ok))
    return 0


if __name__ == "__main__":
    wxdata.run_main(main)
