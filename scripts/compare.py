#!/usr/bin/python3
"""Compare wxbench runs: every configuration present in both a base run and
another run, with verdicts that survive an A/A test (absolute, and relative to the
run-wide shift), the whole run judged against the machine's run-to-run band, and
the headline metrics side by side.

Usage:
    compare.py [RUN_DIR ...] [--base MACHINE] [--data DATA_DIR] [--out DIR]
               [--scenario a,b] [--strategy x,y] [--variant v,w] [--min-effect PCT]
               [--ref-adjust]

With no RUN_DIR, the latest run of each machine under DATA_DIR (default data/) is
used: the lexicographically greatest run directory name, i.e. the newest UTC
timestamp. The first run (or --base) is the base; each other run is compared with
it. Writes to plots/compare/<base>_vs_<other>.../ unless --out is given:

- compare.csv, one row per configuration in both runs:
  scenario,strategy,variant,threads,victims,size_bytes,batch,core_class,
  base_median,median,ratio,ci_low,ci_high,p_value,n_base,n,verdict,
  ratio_vs_run,ci_low_vs_run,ci_high_vs_run,verdict_vs_run,mde_pct
  (with more than one other run: compare.csv for the first, compare_vs_<run>.csv
  for each of the others);
- compare_summary.json beside it (compare_summary_vs_<run>.json for the others):
  "run_shift" {ratio, ci_low, ci_high, band_low, band_high, verdict, band_source},
  "verdicts" and "verdicts_vs_run" (counts), and the settings used;
- compare.md and compare.html (self-contained): both levels of verdict, a
  geometric-mean summary per scenario and strategy, the configurations found
  faster or slower, and the headline metrics (compare_headline.csv, one PNG per
  metric).

The band comes from data/<machine>/aa.json of the base run's machine (`make aa`),
else a conservative default (wxstats.DEFAULT_BAND). --ref-adjust adjusts every
value for the reference loop timed in each process (processes.csv; see
scripts/wxcompare.py), off by default.

Statistics and verdicts: scripts/wxstats.py (stated in the output too).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plot  # noqa: E402  (also selects the Agg backend)
import wxcompare  # noqa: E402
import wxdata  # noqa: E402
import wxstats  # noqa: E402
from report import Cell, Doc  # noqa: E402
from wxdata import fmt_sig, fmt_value  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

RESAMPLES = 10000
SEED = 20240601
ALPHA = 0.05
METHOD = [
    "ratio = metric on the machine / metric on the base machine; each metric is a " + wxdata.MEDIAN_DEFINITION
    + " (for ns metrics a ratio above 1 means slower than the base; for contention scaling, scales better)",
    "a metric of one configuration: ratio = exp(Hodges-Lehmann shift of the log values) with its exact "
    "Mann-Whitney 95% interval (as compare.csv), p the Mann-Whitney test of the same values; none with 3 "
    "repetitions a side",
    f"a metric that is itself a ratio of two configurations (contention scaling): ratio of medians, 95% "
    f"percentile-bootstrap interval with {RESAMPLES} resamples of each machine's repetitions (ratio of the "
    f"resampled medians; seeded from {SEED} and the names, so reproducible), no p",
    f"a ratio is marked not significant when its interval contains 1 (or is missing) or p >= {ALPHA}",
]


# ---------------------------------------------------------------------------
# Statistics (scripts/wxstats.py)

ranks = wxstats.ranks
mann_whitney_u = wxstats.mann_whitney_u
seed_for = wxstats.seed_for


def bootstrap_medians(samples: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Medians of `resamples` resamples (with replacement) of samples."""
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
        if self.low is None or self.low <= 1 <= self.high:
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
    if len(bv.samples) == 1 and len(ov.samples) == 1:
        a, b = np.log(np.asarray(bv.samples[0], dtype=float)), np.log(np.asarray(ov.samples[0], dtype=float))
        shift = wxstats.hodges_lehmann(a, b)
        r.ratio = math.exp(shift.estimate)
        if shift.low is not None:
            r.low, r.high = math.exp(shift.low), math.exp(shift.high)
        r.p = wxstats.mw_p_value(a, b)
        return r
    r.ratio = ov.value / bv.value
    seed = seed_for(metric.key, strategy, base.label, other.label)
    r.low, r.high = bootstrap_ratio(metric, bv.samples, ov.samples, seed)
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


def build(sides: list[Side], base: Side, out: Path, per_other=(), min_effect: float = wxstats.MIN_EFFECT
          ) -> tuple[Doc, list[Ratio]]:
    others = [s for s in sides if s is not base]
    strategies = sorted({st for s in sides for st in s.headline}, key=wxdata.strategy_key)
    doc = Doc(out)
    doc.h(1, "wxbench comparison — " + ", ".join(s.label for s in sides))
    doc.p(f"Base: {base.label}.")
    doc.ul([s.describe for s in sides])
    for o, rc in per_other:
        configs_section(doc, base, o, rc, min_effect)
    doc.h(2, "Headline metrics")
    ratios: list[Ratio] = []
    for metric in wxdata.HEADLINE:
        rows = []
        for st in strategies:
            for o in others:
                r = compute_ratio(metric, st, base, o)
                if r.base_value is None and r.value is None:
                    continue
                ratios.append(r)
                ci = f"{fmt_sig(r.low)} – {fmt_sig(r.high)}" if r.low is not None else "—"
                p = "n/a" if r.ratio is not None and r.p is None else (f"{r.p:.3g}" if r.p is not None else "—")
                rows.append([st, o.label, value_cell(r.base_value, metric.unit), value_cell(r.value, metric.unit),
                             Cell(f"{fmt_sig(r.ratio)}×" if r.ratio is not None else "—", "num"),
                             Cell(ci, "num"), Cell(p, "num"),
                             Cell(r.verdict, "" if r.significant else "missing")])
        if not rows:
            continue
        doc.h(3, metric.title)
        doc.p(metric.definition + ".")
        png = metric_figure(metric, sides, strategies, out)
        if png:
            doc.image(png, f"{metric.title} by machine")
        doc.table(["strategy", "machine", f"base ({base.label})", "machine's value", "ratio", "95% interval",
                   "p (Mann-Whitney)", "verdict"], rows)
    doc.h(2, "Method")
    doc.p("Every configuration, and the whole run:")
    doc.ul(wxstats.method_lines() + [f"minimum effect: {min_effect:.0%}"])
    doc.p("Headline metrics:")
    doc.ul(METHOD + [wxdata.HEADLINE_RULE,
                     "Machines with P and E cores are compared on P cores; † marks a value whose configuration "
                     "had some repetitions not ok (median of the ok ones)."])
    return doc, ratios


# ---------------------------------------------------------------------------
# Every configuration of two runs

COMPARE_COLUMNS = ("scenario", "strategy", "variant", "threads", "victims", "size_bytes", "batch", "core_class",
                   "base_median", "median", "ratio", "ci_low", "ci_high", "p_value", "n_base", "n", "verdict",
                   "ratio_vs_run", "ci_low_vs_run", "ci_high_vs_run", "verdict_vs_run", "mde_pct")
RUN_VERDICT_TEXT = {
    "slower": "the interval lies above the band, so the run is slower as a whole, beyond what two runs of the same "
              "binary on this machine differ by",
    "faster": "the interval lies below the band, so the run is faster as a whole, beyond what two runs of the same "
              "binary on this machine differ by",
    "within_band": "the runs differ as a whole by no more than two runs of the same binary on this machine can",
    "missing": "no configuration with values in both runs",
}


def _pick(values: str | None) -> set | None:
    return set(v for v in values.split(",") if v) if values else None


def compare_pair(base: Side, other: Side, only: dict, min_effect: float, ref_adjust: bool = False
                 ) -> wxcompare.RunComparison:
    """Every configuration of both runs (matching the filters) and the whole run, compared
    (wxcompare.compare_runs); the band from the base run's machine."""
    refs = wxcompare.run_refs(base.run, other.run) if ref_adjust else None
    if ref_adjust and refs is None:
        print(f"note: {other.label} vs {base.label}: no reference-loop timings in both runs' processes.csv; "
              "compared without --ref-adjust", file=sys.stderr)
    return wxcompare.compare_runs(base.run, other.run, band=wxcompare.load_band(base.run.dir),
                                  min_effect=min_effect, only=only, refs=refs)


def _num(v) -> str:
    return "" if v is None else repr(v)


def write_compare_csv(path: Path, rc: wxcompare.RunComparison):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COMPARE_COLUMNS)
        for r in rc.rows:
            c = r.cmp
            w.writerow(["" if k is None else k for k in r.key] +
                       [_num(c.base_median), _num(c.median), _num(c.ratio), _num(c.ci_low), _num(c.ci_high),
                        _num(c.p_value), c.n_base, c.n, c.verdict, _num(c.ratio_vs_run), _num(c.ci_low_vs_run),
                        _num(c.ci_high_vs_run), c.verdict_vs_run, _num(c.mde_pct)])


def median_mde(rc: wxcompare.RunComparison) -> float | None:
    """The median mde_pct over the configurations that have one."""
    m = [r.cmp.mde_pct for r in rc.rows if r.cmp.mde_pct is not None]
    return float(np.median(m)) if m else None


def summary(base: Side, other: Side, rc: wxcompare.RunComparison, min_effect: float) -> dict:
    """compare_summary.json: the whole run, the verdict counts at both levels, the settings."""
    return {"base": str(base.run.dir), "other": str(other.run.dir), "run_shift": rc.shift.summary(),
            "verdicts": rc.counts(), "verdicts_vs_run": rc.counts("verdict_vs_run"),
            "configurations": len(rc.rows), "compared": len(rc.compared), "median_mde_pct": median_mde(rc),
            "min_effect": min_effect, "resamples": wxstats.RUN_RESAMPLES, "ref_adjust": rc.ref_adjusted,
            "ref_slopes": {k: list(v) for k, v in rc.slopes.items()}}


def whole_run_text(base: Side, other: Side, rc: wxcompare.RunComparison) -> str:
    """The whole-run paragraph: g, its interval, the band and its source, the verdict."""
    s = rc.shift
    if s.ratio is None:
        return "Whole run: " + RUN_VERDICT_TEXT["missing"] + "."
    source = "measured by `make aa`, " + s.band_source if s.band_source != "default" else \
        "a conservative default until `make aa` measures this machine"
    return (f"Whole run: the run-wide shift g = {other.label} / {base.label} = {fmt_sig(s.ratio)}× (the median over "
            f"{s.configurations} configurations of their Hodges-Lehmann ratios), 95% interval {fmt_sig(s.ci_low)} – "
            f"{fmt_sig(s.ci_high)} (processes resampled), against the machine's run-to-run band "
            f"{fmt_sig(s.band_low)} – {fmt_sig(s.band_high)} ({source}): verdict {s.verdict}: "
            f"{RUN_VERDICT_TEXT[s.verdict]}.")


def level_text(rows: list, attr: str, what: str) -> str:
    """One level of per-configuration verdicts: the counts and the share called faster or slower."""
    counts = wxcompare.verdict_counts(rows, attr)
    compared = len(rows) - counts["missing"]
    flagged = counts["faster"] + counts["slower"]
    share = f" {flagged} of {compared} ({flagged / compared:.1%}) called faster or slower." if compared else ""
    return f"{what}: " + ", ".join(f"{counts[v]} {v}" for v in wxstats.VERDICTS) + "." + share


def interfered_section(doc: Doc, sides: tuple):
    """The rows other work spoiled in every try, per run: counted and listed (never compared)."""
    found = [(s, c, r) for s in sides for c in s.run.configs for r in c.not_ok_rows if r.status == "interfered"]
    counts = ", ".join(f"{sum(1 for x, _, _ in found if x is s)} in {s.label}" for s in sides)
    doc.p(f"Rows `interfered` (other programs kept a thread of the measurement off its CPU in each of 3 tries; "
          f"not compared): {counts}." + (" A quieter machine gives them values." if found else ""))
    if found:
        doc.table(["run", "configuration", "repetition", "reason"],
                  [[s.label, c.label(), r.repetition, r.reason] for s, c, r in found])


def configs_section(doc: Doc, base: Side, other: Side, rc: wxcompare.RunComparison, min_effect: float):
    rows = rc.rows
    compared = len(rc.compared)
    doc.h(2, f"{other.label} against {base.label}: every configuration")
    doc.p(f"{len(rows)} configurations in both runs, {compared} with ok values in both.")
    interfered_section(doc, (base, other))
    doc.p(whole_run_text(base, other, rc))
    drifts = [base.run.drift(), other.run.drift()]
    doc.p("Drift inside each run (its second half of processes against its first): "
          + ", ".join(f"{s.label} {d[0]:.3f}" if d else f"{s.label} n/a" for s, d in zip((base, other), drifts)) + ".")
    doc.p(level_text(rows, "verdict", "Per configuration, absolute (the ratio's interval includes the band)"))
    mde = median_mde(rc)
    doc.p(level_text(rows, "verdict_vs_run", "Per configuration, relative to the run (ratio / g, the sampling "
                                             "interval alone)")
          + (f" Median mde {mde:.1f}%: half the configurations would find a change that large relative to the run "
             "with 80% power, the others need a larger one." if mde is not None else ""))
    if compared:
        doc.p("Two runs of the same binary on the same machine should call at most 5% faster or slower at either "
              "level (`make aa` measures this machine).")
    if rc.ref_adjusted:
        doc.p("Values adjusted for the reference loop; slope per scenario (base, other): "
              + ", ".join(f"{k} {a:.2f}/{b:.2f}" for k, (a, b) in rc.slopes.items()) + ".")
    geomean_table(doc, rows)
    moved_tables(doc, other, rows, min_effect)


def geomean_table(doc: Doc, rows: list):
    """The geometric mean of the ratios and the verdict counts per scenario and strategy."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.key[0], r.key[1]), []).append(r)
    table = []
    for (scenario, strategy), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], wxdata.strategy_key(kv[0][1]))):
        g = wxstats.geomean(r.cmp.ratio for r in rs)
        c, v = wxcompare.verdict_counts(rs), wxcompare.verdict_counts(rs, "verdict_vs_run")
        table.append([scenario, strategy, Cell(f"{fmt_sig(g)}×" if g else "—", "num"), len(rs)]
                     + [Cell(str(c[k]), "num") for k in ("slower", "faster", "same", "noisy", "missing")]
                     + [Cell(str(v[k]), "num") for k in ("slower", "faster")])
    doc.h(3, "Geometric mean of the ratios, per scenario and strategy")
    doc.table(["scenario", "strategy", "geomean ratio", "configurations", "slower", "faster", "same", "noisy",
               "missing", "slower vs run", "faster vs run"], table)


def moved_tables(doc: Doc, other: Side, rows: list, min_effect: float):
    """The configurations found faster or slower, absolutely and relative to the run."""
    moved = [r for r in rows if r.cmp.verdict in ("faster", "slower")]
    doc.h(3, "Configurations found faster or slower")
    if not moved:
        doc.p(f"None: no configuration differs by {min_effect:.0%} or more beyond its noise and the band.")
    else:
        doc.table(["configuration", "base", other.label, "ratio", "95% interval (with the band)", "p", "verdict"],
                  [[r.label, Cell(plot.fmt_ns(r.cmp.base_median), "num"), Cell(plot.fmt_ns(r.cmp.median), "num"),
                    Cell(f"{fmt_sig(r.cmp.ratio)}×", "num"),
                    Cell(f"{fmt_sig(r.cmp.ci_low)} – {fmt_sig(r.cmp.ci_high)}", "num"),
                    Cell(f"{r.cmp.p_value:.3g}", "num"), r.cmp.verdict] for r in moved])
    moved = [r for r in rows if r.cmp.verdict_vs_run in ("faster", "slower")]
    doc.h(3, "Configurations faster or slower relative to the run")
    if not moved:
        doc.p(f"None: no configuration moved by {min_effect:.0%} or more against the rest of the run beyond its "
              "noise.")
        return
    doc.table(["configuration", "ratio", "ratio / g", "95% interval", "mde", "verdict vs run"],
              [[r.label, Cell(f"{fmt_sig(r.cmp.ratio)}×", "num"), Cell(f"{fmt_sig(r.cmp.ratio_vs_run)}×", "num"),
                Cell(f"{fmt_sig(r.cmp.ci_low_vs_run)} – {fmt_sig(r.cmp.ci_high_vs_run)}", "num"),
                Cell(f"{r.cmp.mde_pct:.1f}%", "num"), r.cmp.verdict_vs_run] for r in moved])


def write_headline_csv(path: Path, ratios: list[Ratio]):
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


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", metavar="RUN_DIR", help="runs to compare (default: latest per machine)")
    ap.add_argument("--base", metavar="MACHINE", help="machine the others are divided by (default: the first)")
    ap.add_argument("--data", default="data", metavar="DATA_DIR", help="where to find runs (default: data)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: plots/compare/<machines>)")
    ap.add_argument("--scenario", help="only these scenarios (comma-separated)")
    ap.add_argument("--strategy", help="only these strategies (comma-separated)")
    ap.add_argument("--variant", help="only these variants (comma-separated)")
    ap.add_argument("--min-effect", type=float, default=wxstats.MIN_EFFECT * 100, metavar="PCT",
                    help=f"smallest difference called faster or slower, in percent (default "
                         f"{wxstats.MIN_EFFECT * 100:g})")
    ap.add_argument("--ref-adjust", action="store_true",
                    help="adjust every value for the reference loop timed in its process (processes.csv's "
                         "ref_start_ns, ref_end_ns; off by default)")
    args = ap.parse_args(argv)
    if not 0 < args.min_effect < 100:
        raise wxdata.DataError(f"--min-effect {args.min_effect}: needs a percentage between 0 and 100")
    return args


def pick_sides(args) -> list[Side]:
    """The runs to compare, the base first."""
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
    return [base] + [s for s in sides if s is not base]


def one_line(base: Side, other: Side, rc: wxcompare.RunComparison) -> str:
    """What a comparison found, in one line for stderr."""
    s = rc.shift
    whole = (f"whole run {s.ratio:.3f} ({s.ci_low:.3f}-{s.ci_high:.3f}) {s.verdict} (band {s.band_low:.3f}-"
             f"{s.band_high:.3f}, {s.band_source})" if s.ratio is not None else "whole run: nothing compared")
    levels = [", ".join(f"{c[v]} {v}" for v in wxstats.VERDICTS) for c in (rc.counts(), rc.counts("verdict_vs_run"))]
    return (f"{other.label} vs {base.label}: {whole}; {len(rc.compared)} configurations compared: absolute: "
            f"{levels[0]}; relative to the run: {levels[1]}")


def write_pair(out: Path, k: int, base: Side, other: Side, rc: wxcompare.RunComparison, min_effect: float) -> list:
    """compare.csv and compare_summary.json of one other run (suffixed _vs_<run> after the first)."""
    tail = "" if k == 0 else f"_vs_{slug(other.label)}"
    names = [f"compare{tail}.csv", f"compare_summary{tail}.json"]
    write_compare_csv(out / names[0], rc)
    (out / names[1]).write_text(json.dumps(summary(base, other, rc, min_effect), indent=2) + "\n", encoding="utf-8")
    print(one_line(base, other, rc), file=sys.stderr)
    return names


def main(argv=None) -> int:
    args = parse_args(argv)
    min_effect = args.min_effect / 100
    only = {"scenario": _pick(args.scenario), "strategy": _pick(args.strategy), "variant": _pick(args.variant)}
    sides = pick_sides(args)
    base = sides[0]
    out = Path(args.out) if args.out else default_out(sides, args.data, bool(args.runs))
    out.mkdir(parents=True, exist_ok=True)
    per_other = [(o, compare_pair(base, o, only, min_effect, args.ref_adjust)) for o in sides[1:]]
    doc, ratios = build(sides, base, out, per_other, min_effect)
    (out / "compare.md").write_text(doc.markdown(), encoding="utf-8")
    (out / "compare.html").write_text(doc.html("wxbench comparison"), encoding="utf-8")
    write_headline_csv(out / "compare_headline.csv", ratios)
    names = [n for k, (o, rc) in enumerate(per_other) for n in write_pair(out, k, base, o, rc, min_effect)]
    print(f"wrote {out}/compare.html, compare.md, {', '.join(names)}, compare_headline.csv and "
          f"{len(list(out.glob('compare_*.png')))} figures")
    for name in ["compare.html", "compare.md"] + names:
        print(out / name)
    return 0


if __name__ == "__main__":
    wxdata.run_main(main)
