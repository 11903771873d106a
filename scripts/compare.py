#!/usr/bin/python3
"""Compare wxbench runs across machines: headline metrics side by side, and each
machine's ratio to a base machine with a bootstrap interval and a Mann-Whitney U test.

Usage:
    compare.py [RUN_DIR ...] [--base MACHINE] [--data DATA_DIR] [--out DIR]

With no RUN_DIR, the latest run of each machine under DATA_DIR (default data/) is
used: the lexicographically greatest run directory name, i.e. the newest UTC
timestamp. Writes compare.md, compare.html (self-contained), compare.csv and one PNG
per metric to plots/compare/<base>_vs_<other>.../ unless --out is given.

Statistics (stated in the output too):
- ratio = metric on the machine / metric on the base machine, each metric a median
  over ok repetitions (for ns metrics, > 1 means slower than the base);
- 95% interval: percentile bootstrap, RESAMPLES resamples of each machine's
  repetitions (with replacement, each machine separately), the ratio of the
  resampled medians, 2.5th and 97.5th percentiles; the random generator is seeded
  from the metric, strategy and machine names, so output is reproducible;
- p: two-sided Mann-Whitney U test of the two machines' repetitions, normal
  approximation with tie correction and continuity correction (n/a for a metric that
  is itself a ratio of two configurations, like contention scaling);
- "not significant" when the interval contains 1 or p >= 0.05.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plot  # noqa: E402  (also selects the Agg backend)
import wxdata  # noqa: E402
from report import Cell, Doc  # noqa: E402
from wxdata import fmt_sig, fmt_value  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

RESAMPLES = 10000
SEED = 20240601
ALPHA = 0.05
METHOD = [
    "ratio = metric on the machine / metric on the base machine; each metric is a " + wxdata.MEDIAN_DEFINITION
    + " (for ns metrics a ratio above 1 means slower than the base; for contention scaling, scales better)",
    f"95% interval: percentile bootstrap with {RESAMPLES} resamples of each machine's repetitions (with "
    "replacement, each machine separately), ratio of the resampled medians, 2.5th to 97.5th percentile; the "
    f"generator is seeded from {SEED} and the metric, strategy and machine names, so the output is reproducible",
    "p: two-sided Mann-Whitney U test of the two machines' repetitions, normal approximation with tie and "
    "continuity corrections (n/a where the metric is itself a ratio of two configurations); with fewer than "
    "4 repetitions per machine it cannot reach p < 0.05",
    f"a ratio is marked not significant when its interval contains 1 or p >= {ALPHA}",
]


# ---------------------------------------------------------------------------
# Statistics


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values), dtype=float)
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranked[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranked


def mann_whitney_u(x, y) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (U of x, p-value).

    Normal approximation: mean n1*n2/2, variance n1*n2/12 * ((N+1) - sum(t^3 - t)/(N(N-1)))
    over groups of t tied values, and a continuity correction of 0.5. When every value is
    tied the variance is 0 and p is 1."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need values")
    both = np.concatenate([x, y])
    r = ranks(both)
    u1 = float(r[:n1].sum() - n1 * (n1 + 1) / 2)
    n = n1 + n2
    _, counts = np.unique(both, return_counts=True)
    ties = float(((counts ** 3) - counts).sum())
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return u1, 1.0
    z = max(abs(u1 - n1 * n2 / 2) - 0.5, 0.0) / math.sqrt(var)
    return u1, float(math.erfc(z / math.sqrt(2)))


def seed_for(*names: str) -> int:
    return SEED ^ zlib.crc32("\0".join(names).encode())


def bootstrap_medians(samples: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    idx = rng.integers(0, len(samples), size=(resamples, len(samples)))
    return np.median(samples[idx], axis=1)


def bootstrap_ratio(metric: wxdata.Metric, base: list, other: list, seed: int,
                    resamples: int = RESAMPLES) -> tuple[float, float]:
    """95% percentile interval of metric(other) / metric(base) over bootstrap resamples."""
    rng = np.random.default_rng(seed)
    b = metric.combine([bootstrap_medians(np.asarray(s), rng, resamples) for s in base])
    o = metric.combine([bootstrap_medians(np.asarray(s), rng, resamples) for s in other])
    lo, hi = np.percentile(o / b, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class Ratio:
    metric: wxdata.Metric
    strategy: str
    base: "Side"
    other: "Side"
    base_value: wxdata.MetricValue | None
    value: wxdata.MetricValue | None
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None

    @property
    def significant(self) -> bool | None:
        if self.ratio is None:
            return None
        if self.low <= 1 <= self.high:
            return False
        return self.p is None or self.p < ALPHA

    @property
    def verdict(self) -> str:
        s = self.significant
        return "—" if s is None else ("significant" if s else "not significant")


def compute_ratio(metric, strategy, base, other) -> Ratio:
    bv = base.headline.get(strategy, {}).get(metric.key)
    ov = other.headline.get(strategy, {}).get(metric.key)
    r = Ratio(metric, strategy, base, other, bv, ov)
    if bv is None or ov is None or bv.value is None or ov.value is None or bv.value == 0:
        return r
    r.ratio = ov.value / bv.value
    seed = seed_for(metric.key, strategy, base.label, other.label)
    r.low, r.high = bootstrap_ratio(metric, bv.samples, ov.samples, seed)
    if len(bv.samples) == 1:
        r.p = mann_whitney_u(ov.samples[0], bv.samples[0])[1]
    return r


# ---------------------------------------------------------------------------
# Runs being compared


@dataclass
class Side:
    """One run in the comparison."""

    run: wxdata.Run
    label: str
    core: str
    headline: dict  # strategy -> metric key -> MetricValue

    @property
    def describe(self) -> str:
        bits = [f"{self.label}: run {self.run.name}"]
        if self.run.chip:
            bits.append(self.run.chip)
        bits.append(wxdata.core_text(self.core))
        return ", ".join(bits) + " · " + self.run.stamp()


def load_sides(paths: list[Path]) -> list[Side]:
    runs = []
    for p in paths:
        run = wxdata.open_run(p)
        if not run.has_ok_rows:
            print(f"note: {run.csv_path}: no ok rows; left out of the comparison", file=sys.stderr)
            continue
        runs.append(run)
    machines = [r.machine for r in runs]
    sides = []
    for r in runs:
        label = r.machine if machines.count(r.machine) == 1 else f"{r.machine}/{r.name}"
        core = wxdata.preferred_core_class(r)
        sides.append(Side(r, label, core, wxdata.headline_table(r, core)))
    return sides


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "runs"


def default_out(sides: list[Side], data_dir: str, explicit: bool) -> Path:
    name = slug("_vs_".join(s.label for s in sides))
    if not explicit:
        return Path(data_dir).parent / "plots" / "compare" / name
    mirrored = wxdata.mirror_dir(sides[0].run.dir)
    if mirrored is None:
        raise wxdata.DataError(f"{sides[0].run.dir}: not under a data/ folder, so plots/compare is unknown; "
                               "pass --out DIR")
    return mirrored.parent.parent / "compare" / name


# ---------------------------------------------------------------------------
# Figures and documents


def metric_figure(metric: wxdata.Metric, sides: list[Side], strategies: list[str], out: Path) -> Path | None:
    have = [(s, st) for st in strategies for s in sides if metric.key in s.headline.get(st, {})]
    if not any(s.headline[st][metric.key].value is not None for s, st in have):
        return None
    strategies = [st for st in strategies if any(st == h[1] for h in have)]
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.5, 2.5 + len(strategies) * (0.4 + 0.35 * len(sides)))), 4.6))
    width = 0.8 / len(sides)
    tops, bottoms = [], []
    log = metric.unit == "ns"
    for si, side in enumerate(sides):
        colour = plot.CYCLE[si % len(plot.CYCLE)]
        labelled = False
        for ci, st in enumerate(strategies):
            v = side.headline.get(st, {}).get(metric.key)
            x = ci - 0.4 + width * (si + 0.5)
            if v is None:
                continue
            if v.value is None:
                ax.text(x, 0.03, v.status, transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                        va="bottom", fontsize=7, color="#8b0000", style="italic")
                continue
            yerr = None
            if len(v.samples) == 1:  # whiskers: min-max of the repetitions
                yerr = [[v.value - v.samples[0].min()], [v.samples[0].max() - v.value]]
                tops.append(v.samples[0].max())
                bottoms.append(v.samples[0].min())
            tops.append(v.value)
            bottoms.append(v.value)
            ax.bar(x, v.value, width * 0.9, yerr=yerr, capsize=3, color=colour,
                   label=None if labelled else side.label, error_kw={"elinewidth": 0.9})
            labelled = True
            text = fmt_value(v.value, metric.unit) + ("†" if v.status == "partial" else "")
            text += f" ({v.note})" if v.note else ""
            ax.annotate(text, (x, max(tops[-1], v.value)), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=6.5, rotation=90 if len(sides) > 2 else 0)
    ax.set_xticks(range(len(strategies)))
    ax.set_xticklabels(strategies, rotation=20 if len(strategies) > 4 else 0,
                       ha="right" if len(strategies) > 4 else "center")
    ax.set_xlim(-0.6, len(strategies) - 0.4)
    ax.grid(axis="x", visible=False)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(min(bottoms) / 3, max(tops) * 8)
        reps = sorted({len(v.samples[0]) for s, st in have if (v := s.headline[st][metric.key]).value is not None})
        span = f"{reps[0]}" + (f"–{reps[-1]}" if len(reps) > 1 else "")
        ax.set_ylabel(f"ns per op (median; whiskers min–max\nover {span} reps)")
    else:
        ax.set_ylim(0, max(tops) * 1.3)
        ax.set_ylabel("ops/s at the most threads ÷ ops/s at 1 thread\n(ratio of medians)")
    ax.set_xlabel("strategy")
    machines = textwrap.fill(", ".join(s.label for s in sides), 70, break_on_hyphens=False)
    ax.set_title(f"{metric.title} by machine\n{machines}", loc="left", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    note = [metric.definition] + [s.describe for s in sides]
    fig.text(0.01, 0.01, "\n".join(note), fontsize=6.5, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.025 * len(note) + 0.02, 1, 1))
    png = out / f"compare_{metric.key}.png"
    fig.savefig(png, dpi=plot.DPI, metadata={"Software": None})
    plt.close(fig)
    return png


def value_cell(v: wxdata.MetricValue | None, unit: str) -> Cell:
    if v is None:
        return Cell("—", "missing")
    if v.value is None:
        return Cell(v.status, "notok")
    text = fmt_value(v.value, unit) + (f" ({v.note})" if v.note else "") + ("†" if v.status == "partial" else "")
    return Cell(text, "num", f"{v.n} ok repetitions")


def build(sides: list[Side], base: Side, out: Path) -> tuple[Doc, list[Ratio]]:
    others = [s for s in sides if s is not base]
    strategies = sorted({st for s in sides for st in s.headline}, key=wxdata.strategy_key)
    doc = Doc(out)
    doc.h(1, "wxbench comparison — " + ", ".join(s.label for s in sides))
    doc.p(f"Base machine: {base.label}.")
    doc.ul([s.describe for s in sides])
    ratios: list[Ratio] = []
    for metric in wxdata.HEADLINE:
        rows = []
        for st in strategies:
            for o in others:
                r = compute_ratio(metric, st, base, o)
                if r.base_value is None and r.value is None:
                    continue
                ratios.append(r)
                ci = f"{fmt_sig(r.low)} – {fmt_sig(r.high)}" if r.ratio is not None else "—"
                p = "n/a" if r.ratio is not None and r.p is None else (f"{r.p:.3g}" if r.p is not None else "—")
                rows.append([st, o.label, value_cell(r.base_value, metric.unit), value_cell(r.value, metric.unit),
                             Cell(f"{fmt_sig(r.ratio)}×" if r.ratio is not None else "—", "num"),
                             Cell(ci, "num"), Cell(p, "num"),
                             Cell(r.verdict, "" if r.significant else "missing")])
        if not rows:
            continue
        doc.h(2, metric.title)
        doc.p(metric.definition + ".")
        png = metric_figure(metric, sides, strategies, out)
        if png:
            doc.image(png, f"{metric.title} by machine")
        doc.table(["strategy", "machine", f"base ({base.label})", "machine's value", "ratio", "95% interval",
                   "p (Mann-Whitney)", "verdict"], rows)
    doc.h(2, "Method")
    doc.ul(METHOD + [wxdata.HEADLINE_RULE,
                     "Machines with P and E cores are compared on P cores; † marks a value whose configuration "
                     "had some repetitions not ok (median of the ok ones)."])
    return doc, ratios


def write_csv(path: Path, ratios: list[Ratio]):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["metric", "strategy", "base", "machine", "base_value", "value", "unit", "ratio", "ci_low",
                    "ci_high", "p_value", "significant", "base_n", "n", "base_status", "status"])
        for r in ratios:
            def val(v):
                return "" if v is None or v.value is None else repr(v.value)
            w.writerow([r.metric.key, r.strategy, r.base.label, r.other.label, val(r.base_value), val(r.value),
                        r.metric.unit, "" if r.ratio is None else repr(r.ratio),
                        "" if r.low is None else repr(r.low), "" if r.high is None else repr(r.high),
                        "" if r.p is None else repr(r.p),
                        "" if r.significant is None else ("yes" if r.significant else "no"),
                        r.base_value.n if r.base_value else "", r.value.n if r.value else "",
                        r.base_value.status if r.base_value else "absent", r.value.status if r.value else "absent"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", metavar="RUN_DIR", help="runs to compare (default: latest per machine)")
    ap.add_argument("--base", metavar="MACHINE", help="machine the others are divided by (default: the first)")
    ap.add_argument("--data", default="data", metavar="DATA_DIR", help="where to find runs (default: data)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: plots/compare/<machines>)")
    args = ap.parse_args(argv)
    if args.runs:
        paths = [Path(p) for p in args.runs]
    else:
        if not Path(args.data).is_dir():
            raise wxdata.DataError(f"{args.data}: no such folder")
        paths = wxdata.latest_runs(args.data)
        if not paths:
            raise wxdata.NoData(f"{args.data}: no <machine>/<run>/results.csv; nothing to compare, nothing written")
    sides = load_sides(paths)
    if len(sides) < 2:
        raise wxdata.NoData(f"need two runs with ok rows to compare, found {len(sides)}; nothing written")
    base = sides[0]
    if args.base:
        match = [s for s in sides if args.base in (s.label, s.run.machine)]
        if not match:
            raise wxdata.DataError(f"--base {args.base}: not among {', '.join(s.label for s in sides)}")
        base = match[0]
    sides = [base] + [s for s in sides if s is not base]
    out = Path(args.out) if args.out else default_out(sides, args.data, bool(args.runs))
    out.mkdir(parents=True, exist_ok=True)
    doc, ratios = build(sides, base, out)
    (out / "compare.md").write_text(doc.markdown(), encoding="utf-8")
    (out / "compare.html").write_text(doc.html("wxbench comparison"), encoding="utf-8")
    write_csv(out / "compare.csv", ratios)
    print(f"wrote {out}/compare.html, compare.md, compare.csv and {len(list(out.glob('compare_*.png')))} figures")
    for name in ("compare.html", "compare.md", "compare.csv"):
        print(out / name)
    return 0


if __name__ == "__main__":
    wxdata.run_main(main)
