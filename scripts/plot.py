#!/usr/bin/python3
"""Draw one figure per wxbench scenario of a run (PNG and SVG).

Usage:
    plot.py RUN_DIR [--out PLOTS_DIR]
    plot.py RUN_DIR/results.csv [--out PLOTS_DIR]

RUN_DIR is data/<machine>/<run>; figures go to plots/<machine>/<run>/ unless --out
is given (required when RUN_DIR is not under a data/ folder). Every point is the
median of the ok repetitions (each a process of its own) of one configuration with its
95% interval as whiskers (min-max where there are fewer than 6 processes). Rows that
are not ok (unsupported, failed, crashed, timeout, interfered) are never drawn: they are listed
under the figure and, in full, in <scenario>_not_ok.txt beside it.

Adding a figure for a new scenario = one function registered in FIGURES.
"""

from __future__ import annotations

import math
import sys
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wxdata  # noqa: E402
from wxdata import fmt_bytes, fmt_ns  # noqa: E402

DPI = 120
MAX_ISSUE_LINES = 12
# A strategy's colour is its place in the display order (the strategy table's
# order, wxdata.strategy_order): the same strategy has the same colour in
# every figure of every run from the same table.
CYCLE = ["#7f7f7f", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22",
         "#17becf"]
MARKERS = "osD^v<>ph*"

plt.rcParams.update({
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
    "axes.spines.right": False, "svg.hashsalt": "wxbench", "svg.fonttype": "none",
})


def strategy_color(name: str, fallback_index: int = 0) -> str:
    order = wxdata.strategy_order()
    if name == "none":
        return CYCLE[-1]
    return CYCLE[order.index(name) % (len(CYCLE) - 1)] if name in order else CYCLE[fallback_index % len(CYCLE)]


# ---------------------------------------------------------------------------
# One scenario's figure: layout, titles, the not-ok list, footnote


@dataclass
class Scene:
    """What a figure function draws from, and what it collects while drawing."""

    run: wxdata.Run
    scenario: str
    configs: list  # every configuration of the scenario, whatever its status
    notes: list = field(default_factory=list)  # extra footnotes (e.g. values not drawable on a log axis)
    fig: object = None
    grid: tuple = (1, 1)  # rows, columns of axes
    axes_size: tuple = (4.6, 2.9)  # one axes, inches
    rows_of: object = None  # the axes, row by row
    legend_outside: bool = True
    custom_handles: dict = field(default_factory=dict)
    noisy: list = field(default_factory=list)  # configurations drawn whose processes scatter > 5% (CV)

    @property
    def cores(self) -> list[str]:
        return wxdata.core_classes(self.configs)

    def ok(self, core: str | None = None, **match) -> list:
        """Configurations with at least one ok repetition, of a core class (None: any) and
        with the given field values."""
        return [c for c in self.configs if c.n and (core is None or c.core_class == core)
                and all(getattr(c, k) == v for k, v in match.items())]

    def of_core(self, core: str) -> list:
        return [c for c in self.configs if c.core_class == core]

    def reps_text(self, configs=None) -> str:
        counts = sorted({c.n for c in (configs if configs is not None else self.configs) if c.n})
        if not counts:
            return "no reps"
        n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        return f"{n} process{'es' if counts[-1] != 1 else ''}"

    def whisker_text(self, configs=None) -> str:
        """What the whiskers are: the 95% interval of the median over processes (min..max where
        there are fewer than 6, which have no 95% interval)."""
        counts = [c.n for c in (configs if configs is not None else self.configs) if c.n]
        if counts and min(counts) < 6:
            return f"whiskers min–max over {self.reps_text(configs)} (fewer than 6: no 95% interval)"
        return f"whiskers 95% interval over {self.reps_text(configs)}"

    def ns_label(self, what: str = "ns per op", configs=None) -> str:
        return f"{what}\n(median; {self.whisker_text(configs)})"

    def note_noisy(self, cfg, st) -> None:
        """A configuration whose processes scatter more than 5% is named under the figure."""
        if st is not None and st.noisy:
            self.noisy.append(f"{cfg.label()} {st.cv:.0%}")

    def panels(self, names: list[str], side_by_side: bool = False, ax_w: float = 4.6, ax_h: float = 2.9) -> dict:
        """Axes for each (panel name, core class): rows = panels, columns = core classes.

        With one core class and side_by_side, the panels are laid out in one row and
        each keeps its legend inside."""
        cores = self.cores
        if side_by_side and len(cores) == 1:
            nrows, ncols = 1, len(names)
            pos = {(n, cores[0]): (0, i) for i, n in enumerate(names)}
            self.legend_outside = False
        else:
            nrows, ncols = len(names), len(cores)
            pos = {(n, c): (i, j) for i, n in enumerate(names) for j, c in enumerate(cores)}
        self.fig, axs = plt.subplots(nrows, ncols, squeeze=False, figsize=(8, 6))
        self.grid, self.axes_size, self.rows_of = (nrows, ncols), (ax_w, ax_h), axs
        axes = {}
        for (name, core), (i, j) in pos.items():
            ax = axs[i][j]
            where = "" if core == "any" and len(cores) == 1 else wxdata.core_text(core)
            ax.set_title(f"{name}" + (f" — {where}" if where else ""), loc="left")
            axes[(name, core)] = ax
        return axes

    def legend(self, ax, handles):
        """Use these legend entries for ax (instead of its labelled artists)."""
        self.custom_handles[ax] = list(handles)

    def _place_legends(self):
        """One legend per row outside the right edge, or one inside each axes."""
        def entries(ax):
            if ax in self.custom_handles:
                return [(h, h.get_label()) for h in self.custom_handles[ax]]
            hs, ls = ax.get_legend_handles_labels()
            return list(zip(hs, ls))

        for row in self.rows_of:
            if self.legend_outside:
                merged, seen = [], set()
                for ax in row:
                    for h, label in entries(ax):
                        if label not in seen:
                            seen.add(label)
                            merged.append((h, label))
                if merged:
                    row[-1].legend(*zip(*merged), loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False,
                                   borderaxespad=0)
            else:
                for ax in row:
                    if entries(ax):
                        ax.legend(*zip(*entries(ax)), loc="best", framealpha=0.85)

    def finish(self, title: str, subtitle: str) -> None:
        """Legends, titles, the not-ok list and the footnote; sizes the figure in inches."""
        fig = self.fig
        nrows, ncols = self.grid
        ax_w, ax_h = self.axes_size
        gap_w, gap_h = 1.05, 1.15
        left, top = 1.05, 1.0
        self._place_legends()
        renderer = fig.canvas.get_renderer()
        inches = lambda artist: artist.get_window_extent(renderer).width / fig.dpi  # noqa: E731
        legend_w = max((inches(ax.get_legend()) for ax in fig.axes if ax.get_legend()), default=0)
        right = legend_w + 0.45 if self.legend_outside and legend_w else 0.35
        t1 = fig.text(0, 0, title, fontsize=13, fontweight="bold", va="top")
        t2 = fig.text(0, 0, subtitle, fontsize=9, color="#444444", va="top")
        width = left + ncols * ax_w + (ncols - 1) * gap_w + right
        width = max(width, left + inches(t1) + 0.3, left + inches(t2) + 0.3)
        right = width - (left + ncols * ax_w + (ncols - 1) * gap_w)
        chars = int((width - 0.3) / 0.062)
        issue_lines = [i.line() for i in wxdata.issues(self.configs)]
        footer = []  # (text, colour)
        if issue_lines:
            footer.append((f"Not drawn (status not ok; full reasons in {self.scenario}_not_ok.txt):", "#8b0000"))
            for line in issue_lines[:MAX_ISSUE_LINES]:
                for k, part in enumerate(textwrap.wrap(line, chars - 6, break_on_hyphens=False) or [""]):
                    footer.append((("  • " if k == 0 else "     ") + part, "#8b0000"))
            if len(issue_lines) > MAX_ISSUE_LINES:
                footer.append((f"  … and {len(issue_lines) - MAX_ISSUE_LINES} more", "#8b0000"))
        noisy = list(dict.fromkeys(self.noisy))
        if noisy:
            shown = "; ".join(noisy[:8]) + (f"; … and {len(noisy) - 8} more" if len(noisy) > 8 else "")
            text = (f"Noisy (drawn hollow, or ~ beside a value; coefficient of variation between processes above "
                    f"{wxdata.NOISE_THRESHOLD:.0%}): {shown}")
            footer += [(part, "#8a5a00") for part in textwrap.wrap(text, chars, break_on_hyphens=False)]
        for note in dict.fromkeys(self.notes):
            footer += [(part, "#333333") for part in textwrap.wrap(note, chars, break_on_hyphens=False)]
        footer += [(part, "#666666") for part in textwrap.wrap(footnote(self.run), chars, break_on_hyphens=False)]
        bottom = 1.0 + 0.165 * len(footer)
        height = top + nrows * ax_h + (nrows - 1) * gap_h + bottom
        fig.set_size_inches(width, height)
        fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                            wspace=gap_w / ax_w, hspace=gap_h / ax_h)
        t1.set_position((left / width, 1 - 0.2 / height))
        t2.set_position((left / width, 1 - 0.5 / height))
        y = 0.12
        for text, colour in reversed(footer):
            fig.text(0.15 / width, y / height, text, fontsize=7.5, va="bottom", color=colour)
            y += 0.165


def footnote(run: wxdata.Run) -> str:
    bits = [run.stamp()]
    os_name = next((r.os for r in run.rows if r.os), "")
    arch = next((r.arch for r in run.rows if r.arch), "")
    page = next((r.page_size for r in run.rows if r.page_size), None)
    bits += [b for b in (os_name, arch, f"page {fmt_bytes(page)}" if page else "") if b]
    bits.append(f"data {run.csv_path}")
    return " · ".join(bits)


def machine_title(run: wxdata.Run) -> str:
    return f"{run.machine} ({run.chip})" if run.chip else run.machine


# ---------------------------------------------------------------------------
# Drawing helpers


def size_axis(ax, xs, formatter=fmt_bytes, base=2):
    """Log axis with ticks at the measured values (thinned when crowded)."""
    xs = sorted({x for x in xs if x and x > 0})
    ax.set_xscale("log", base=base)
    if xs:
        step = max(1, math.ceil(len(xs) / 8))
        ticks = xs[::step]
        if xs[-1] not in ticks:
            ticks.append(xs[-1])
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: formatter(v)))


def count_format(v) -> str:
    return f"{v:g}"


def _sort_item(value, preferred):
    """Sort numbers by value, names by `preferred` first, then alphabetically."""
    if isinstance(value, str):
        return (0, wxdata.order_key(value, preferred), 0)
    return (1, (0, ""), -1 if value is None else value)


class SeriesSet:
    """How a scenario's configurations split into series (lines, or points per category).

    A series is keyed by key_fields plus every other parameter that varies among the
    measured configurations of the `universe` (so two different configurations never
    share one point; the parameters of rows that are not ok do not split series). Keys,
    their order and labels are fixed over the whole scenario, so a series keeps its
    colour and its slot in every core-class panel."""

    def __init__(self, universe, key_fields, x_field, preferred=()):
        x_param = "size_bytes" if x_field == "pages" else x_field
        measured = [c for c in universe if c.n] or list(universe)
        extra = [f for f in wxdata.varying(measured, wxdata.PARAM_FIELDS) if f != x_param and f not in key_fields]
        self.fields = list(key_fields) + extra
        self.x_field = x_field
        order = tuple(preferred) + wxdata.strategy_order()
        self.keys = sorted({self.key(c) for c in universe}, key=lambda k: [_sort_item(v, order) for v in k])
        n = len(key_fields)
        self.labels = {}
        for k in self.keys:
            siblings = [o for o in self.keys if o[:n] == k[:n]]
            parts = [str(v) for v in k[:n]]
            parts += [wxdata.fmt_param(f, v) for i, (f, v) in enumerate(zip(self.fields[n:], k[n:]))
                      if len({o[n + i] for o in siblings}) > 1]
            self.labels[k] = ", ".join(parts)

    def key(self, cfg) -> tuple:
        return tuple(getattr(cfg, f) for f in self.fields)

    def x(self, cfg):
        return cfg.pages if self.x_field == "pages" else getattr(cfg, self.x_field)

    def groups(self, configs) -> dict:
        """{key: configs sorted by x} for the given configurations, in series order."""
        out = {k: [] for k in self.keys}
        for c in configs:
            out[self.key(c)].append(c)
        return {k: sorted(v, key=lambda c: (self.x(c) is None, self.x(c) or 0)) for k, v in out.items() if v}


def draw_series(scene, ax, configs, x_of, label, color, marker="o", linestyle="-", column="ns_per_op",
                y_of=None, log=True):
    """One line on a log x axis: medians with their 95% intervals as whiskers (min..max
    under 6 processes). Points that a log axis cannot show (x or median not above 0) are
    left out and noted under the figure; noisy points are drawn hollow."""
    pts = []
    for c in configs:
        vals = y_of(c) if y_of else c.values(column)
        if len(vals) == 0:
            continue
        st = wxdata.Stats.of(vals)
        x = x_of(c)
        if x is None or x <= 0:
            scene.notes.append(f"{c.label()}: no positive size or count for the log x axis; left out")
            continue
        if log and st.median <= 0:
            scene.notes.append(f"{c.label()}: median {st.median:g} cannot be drawn on a log axis; left out")
            continue
        if c.status == "partial":
            scene.notes.append(f"{c.label()}: median of the {c.n} ok repetitions out of {len(c.rows)} "
                               "(the others are listed above)")
        scene.note_noisy(c, st)
        pts.append((x, st))
    if not pts:
        return None
    xs = [p[0] for p in pts]
    med = [p[1].median for p in pts]
    lo = [max(p[1].median - p[1].low, 0) for p in pts]
    hi = [p[1].high - p[1].median for p in pts]
    if log:  # a whisker reaching 0 cannot be drawn on a log axis: clip it just above
        lo = [min(low, m * 0.999) for low, m in zip(lo, med)]
    line = ax.errorbar(xs, med, yerr=[lo, hi], label=label, color=color, marker=marker, markersize=4,
                       linestyle=linestyle, linewidth=1.4, capsize=2.5, elinewidth=0.9)
    noisy = [(x, st.median) for x, st in pts if st.noisy]
    if noisy:
        ax.plot([p[0] for p in noisy], [p[1] for p in noisy], linestyle="none", marker=marker, markersize=6,
                markerfacecolor="white", markeredgecolor=color, zorder=5)
    return line


def draw_categories(scene, ax, cats, series, lookup, kind="dot", log=True):
    """Categorical plot: one group per category, one point (or bar) per series.

    series: list of (key, label, color, marker); lookup(cat, key) -> Config or None.
    A configuration without ok repetitions is written as its status, never drawn;
    a category with nothing ok at all gets its status once, across its middle."""
    width = 0.8
    step = width / max(1, len(series))
    tops, bottoms, labelled = [], [], set()
    for ci, cat in enumerate(cats):
        cfgs = [(si, cfg) for si, s in enumerate(series) if (cfg := lookup(cat, s[0])) is not None]
        if cfgs and not any(c.n for _, c in cfgs):
            statuses = sorted({r.status for _, c in cfgs for r in c.rows})
            ax.text(ci, 0.5, "/".join(statuses), transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                    va="center", fontsize=8, color="#8b0000", style="italic")
            continue
        for si, cfg in cfgs:
            key, label, color, marker = series[si]
            x = ci - width / 2 + step * (si + 0.5)
            st = cfg.stats()
            if st is None or (log and st.median <= 0):
                text = cfg.status
                if st is not None:
                    scene.notes.append(f"{cfg.label()}: median {st.median:g} cannot be drawn on a log axis")
                    text = f"{fmt_ns(st.median)}, off the log axis"
                ax.text(x, 0.03, text, transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                        va="bottom", fontsize=7, color="#8b0000", style="italic")
                continue
            low = st.median - st.low
            yerr = [[min(low, st.median * 0.999) if log else low], [st.high - st.median]]
            scene.note_noisy(cfg, st)
            lab = None if si in labelled else label
            labelled.add(si)
            if kind == "bar":
                ax.bar(x, st.median, step * 0.8, yerr=yerr, color=color, label=lab, capsize=3,
                       error_kw={"elinewidth": 0.9})
            else:
                ax.errorbar([x], [st.median], yerr=yerr, color=color, marker=marker, markersize=5, linestyle="none",
                            capsize=3, elinewidth=1.0, label=lab)
            tops.append(st.high)
            bottoms.append(st.low)
            text = ("~" if st.noisy else "") + fmt_ns(st.median)
            if cfg.status == "partial":
                text += "*"
                scene.notes.append("* median of the ok repetitions; other repetitions of that configuration were "
                                   "not ok (listed above)")
            ax.annotate(text, (x, st.high), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        rotation=0 if kind == "bar" else 90, fontsize=7 if kind == "bar" else 6.5, color="#333333")
    ax.set_xticks(range(len(cats)))
    tilt = len(cats) > 4
    ax.set_xticklabels(cats, rotation=20 if tilt else 0, ha="right" if tilt else "center")
    ax.set_xlim(-0.6, len(cats) - 0.4)
    ax.grid(axis="x", visible=False)
    if log:
        ax.set_yscale("log")
        if tops:
            ax.set_ylim(min(bottoms) / 3, max(tops) * 6)
    elif tops:
        ax.set_ylim(0, max(tops) * 1.3)
    return tops


def variant_order(names, preferred):
    return sorted(set(names), key=lambda v: wxdata.order_key(v, preferred))


def draw_by_strategy(scene, ax, configs, universe, preferred=(), log=True):
    """x = strategy; one point per variant (and per varying parameter) with whiskers.
    `universe`: the configurations of every panel, which fix series order and colours."""
    strategies = sorted({c.strategy for c in configs}, key=wxdata.strategy_key)
    ss = SeriesSet(universe, ["variant"], "strategy", preferred)
    groups = ss.groups(configs)
    series = [(k, ss.labels[k], CYCLE[i % len(CYCLE)], MARKERS[i % len(MARKERS)]) for i, k in enumerate(ss.keys)
              if k in groups]
    index = {(c.strategy, k): c for k, cfgs in groups.items() for c in cfgs}
    draw_categories(scene, ax, strategies, series, lambda s, k: index.get((s, k)), log=log)
    ax.set_xlabel("strategy")
    return strategies


def draw_lines(scene, ax, configs, ss: SeriesSet, style, column="ns_per_op", y_of=None, log=True):
    """One line per series of `ss` present in configs; style(key, index) -> (colour, marker, linestyle)."""
    groups = ss.groups(configs)
    for key, cfgs in groups.items():
        colour, marker, linestyle = style(key, ss.keys.index(key))
        draw_series(scene, ax, cfgs, ss.x, ss.labels[key], colour, marker, linestyle, column, y_of, log)
    return groups


# ---------------------------------------------------------------------------
# Scenario figures. Each takes a Scene, draws, and returns (title, subtitle).


def plot_harness(scene: Scene):
    axes = scene.panels(["harness overhead per op"], ax_w=3.2, ax_h=2.6)
    variants = SeriesSet(scene.configs, ["variant"], "strategy", ("shim", "native"))
    for core in scene.cores:
        ax = axes[("harness overhead per op", core)]
        mine = scene.of_core(core)
        strategies = sorted({c.strategy for c in mine}, key=wxdata.strategy_key)
        groups = variants.groups(mine)
        index = {(variants.labels[k], c.strategy): c for k, cfgs in groups.items() for c in cfgs}
        series = [(s, s, strategy_color(s, i), "o") for i, s in enumerate(strategies)]
        draw_categories(scene, ax, [variants.labels[k] for k in groups], series,
                        lambda cat, s: index.get((cat, s)), kind="bar", log=False)
        ax.set_ylabel(scene.ns_label(configs=mine))
        ax.set_xlabel("variant")
        if len(strategies) == 1:
            scene.legend(ax, [])  # a single strategy ("none"): nothing to tell apart
    return "harness", "an empty op timed through the C shim and natively: the harness's own cost per op"


def plot_toggle_latency(scene: Scene):
    axes = scene.panels(["cost per op by strategy"])
    measured = [c for c in scene.configs if c.variant != "baseline"]
    for core in scene.cores:
        ax = axes[("cost per op by strategy", core)]
        mine = scene.of_core(core)
        strategies = draw_by_strategy(scene, ax, [c for c in mine if c.variant != "baseline"], measured,
                                      ("flip", "patch", "redundant"))
        # baseline: the same patch loop without the permission change, a dashed reference per strategy
        label = "baseline: patch loop without permission change"
        for ci, s in enumerate(strategies):
            for c in mine:
                if c.strategy == s and c.variant == "baseline" and c.n and c.stats().median > 0:
                    ax.hlines(c.stats().median, ci - 0.45, ci + 0.45, colors="#555555", linestyles="--",
                              linewidth=1.1, label=label)
                    label = None
        ax.set_ylabel(scene.ns_label(configs=mine))
    return ("toggle_latency",
            "flip = one W→X→W round trip · patch = one verified patch · "
            "redundant = requesting the state already in force")


def plot_mprotect_tlb(scene: Scene):
    # A panel per strategy that measured something (the others are listed
    # under the figure with their reasons, not drawn as empty panels).
    strategies = sorted({c.strategy for c in scene.ok()}, key=wxdata.strategy_key)
    ns_panels = {s: (f"{s}: ns per op vs region size" if len(strategies) > 1 else "ns per op vs region size")
                 for s in strategies}
    # Shootdowns are drawn for one strategy, so that lines never join points
    # of different strategies: mprotect, the question's subject, where counted.
    tlb_strategy = next((s for s in ["mprotect"] + strategies
                         if any(c.values("tlb_shootdowns_per_op").size for c in scene.ok(strategy=s))), None)
    has_tlb = tlb_strategy is not None
    tlb_panel = f"{tlb_strategy}: TLB shootdowns per op" if has_tlb else None
    names = list(ns_panels.values()) + ([tlb_panel] if has_tlb else [])
    axes = scene.panels(names)
    victims = sorted({c.victims for c in scene.ok() if c.victims is not None})
    cmap = plt.get_cmap("viridis")
    vcolor = {v: cmap(0.85 * i / max(1, len(victims) - 1)) for i, v in enumerate(victims)}
    styles = {"flip": ("-", "o", "thread victims (same address space)"),
              "flip_victim_processes": ("--", "s", "process victims (own address spaces)"),
              "noop": (":", "x", "noop: mprotect to the protection already set")}

    series = {s: SeriesSet(scene.ok(strategy=s), ["variant", "victims"], "pages", tuple(styles)) for s in strategies}
    tlb_series = SeriesSet(scene.ok(strategy=tlb_strategy) if has_tlb else [], ["variant", "victims"], "pages",
                           tuple(styles))

    def style(key, i):
        linestyle, marker, _ = styles.get(key[0], ("-.", "^", key[0]))
        return ("#999999" if key[0] == "noop" else vcolor.get(key[1], "#333333")), marker, linestyle

    for core in scene.cores:
        for s in strategies:
            ax = axes[(ns_panels[s], core)]
            mine = scene.ok(core, strategy=s)
            draw_lines(scene, ax, mine, series[s], style)
            ax.set_yscale("log")
            ax.set_ylabel(scene.ns_label(configs=mine))
        if has_tlb:
            ax = axes[(tlb_panel, core)]
            mine = [c for c in scene.ok(core, strategy=tlb_strategy) if c.values("tlb_shootdowns_per_op").size]
            draw_lines(scene, ax, mine, tlb_series, style, "tlb_shootdowns_per_op", log=False)
            ax.set_ylim(bottom=0)
            ax.set_ylabel(f"TLB shootdowns per op\n(median; {scene.whisker_text(mine)})")
        for name in names:
            ax = axes[(name, core)]
            size_axis(ax, [c.pages for c in scene.ok(core)], formatter=count_format)
            ax.set_xlabel("region size (pages)")
        handles = [Line2D([], [], color=vcolor[v], marker="o", label=wxdata.fmt_param("victims", v)) for v in victims]
        handles += [Line2D([], [], color="#333333", linestyle=ls, marker=m, label=text)
                    for var, (ls, m, text) in styles.items() if scene.ok(core, variant=var)]
        for name in names:
            scene.legend(axes[(name, core)], handles)
    return ("mprotect_tlb",
            "mprotect RW↔RX of a region vs its size, with victim threads (TLB shootdowns) or victim processes (none)")


def plot_dualmap_overhead(scene: Scene):
    known = {"setup": "setup cost vs region size", "steady": "steady-state patch",
             "exec_span": "execution spanning pages"}
    variants = variant_order([c.variant for c in scene.configs], tuple(known))
    names = [known.get(v, v) for v in variants]
    axes = scene.panels(names, side_by_side=True)

    def style(key, i):
        return strategy_color(key[0], i), MARKERS[i % len(MARKERS)], "-"

    for core in scene.cores:
        for variant, name in zip(variants, names):
            ax = axes[(name, core)]
            mine = [c for c in scene.of_core(core) if c.variant == variant]
            ok = [c for c in mine if c.n]
            universe = [c for c in scene.ok() if c.variant == variant]
            if variant == "setup":
                draw_lines(scene, ax, ok, SeriesSet(universe, ["strategy"], "size_bytes"), style)
                size_axis(ax, [c.size_bytes for c in ok])
                ax.set_xlabel("region size (both views)")
                ax.set_ylabel(scene.ns_label("ns per setup", mine))
                ax.set_yscale("log")
            elif variant == "exec_span":
                draw_lines(scene, ax, ok, SeriesSet(universe, ["strategy"], "pages"), style)
                size_axis(ax, [c.pages for c in ok], formatter=count_format)
                ax.set_xlabel("pages spanned by the executed code")
                ax.set_ylabel(scene.ns_label("ns per op", mine))
                ax.set_yscale("log")
            else:
                draw_by_strategy(scene, ax, mine, [c for c in scene.configs if c.variant == variant])
                ax.set_ylabel(scene.ns_label("ns per patch" if variant == "steady" else "ns per op", mine))
    return ("dualmap_overhead",
            "dual mapping: creating the RW and RX views, patching through them, executing code spread over pages")


def plot_icache_flush(scene: Scene):
    axes = scene.panels(["ns per flush vs range size"])
    methods = ("builtin", "manual", "serialize", "membarrier", "sys_icache_invalidate")
    multi = len({c.strategy for c in scene.configs}) > 1
    series = SeriesSet(scene.ok(), ["variant"] + (["strategy"] if multi else []), "size_bytes", methods)
    variants = variant_order([c.variant for c in scene.ok()], methods)
    strategies = sorted({c.strategy for c in scene.ok()}, key=wxdata.strategy_key)
    dashes = ["-", "--", ":", "-."]

    def style(key, i):  # colour per series, marker per method, dashes per strategy
        vi = variants.index(key[0])
        linestyle = dashes[strategies.index(key[1]) % len(dashes)] if multi else "-"
        return CYCLE[i % len(CYCLE)], MARKERS[vi % len(MARKERS)], linestyle

    for core in scene.cores:
        ax = axes[("ns per flush vs range size", core)]
        ok = scene.ok(core)
        draw_lines(scene, ax, ok, series, style)
        ax.set_yscale("log")
        size_axis(ax, [c.size_bytes for c in ok])
        ax.set_xlabel("range made visible to instruction fetch")
        ax.set_ylabel(scene.ns_label("ns per flush", ok))
    return "icache_flush", "making freshly written code visible to instruction fetch, per method and range size"


def plot_thread_contention(scene: Scene):
    variants = variant_order([c.variant for c in scene.configs], ("private", "shared"))
    titles = {"private": "private regions (one per thread)", "shared": "one shared region"}
    names = [titles.get(v, v) for v in variants]
    axes = scene.panels(names)
    series = SeriesSet(scene.ok(), ["strategy"], "threads")

    def style(key, i):
        return strategy_color(key[0], i), MARKERS[i % len(MARKERS)], "-"

    for core in scene.cores:
        for variant, name in zip(variants, names):
            ax = axes[(name, core)]
            ok = scene.ok(core, variant=variant)
            groups = draw_lines(scene, ax, ok, series, style, y_of=wxdata.throughput)
            for key, cfgs in groups.items():
                one = [c for c in cfgs if c.threads == 1]
                if one:  # will-it-scale's "linear" column: 1-thread throughput times threads
                    base = wxdata.Stats.of(wxdata.throughput(one[0])).median
                    ts = [c.threads for c in cfgs]
                    colour = style(key, series.keys.index(key))[0]
                    ax.plot(ts, [base * t for t in ts], color=colour, linestyle=":", linewidth=1.0)
            ax.plot([], [], color="#333333", linestyle=":", label="linear scaling from 1 thread")
            ax.set_yscale("log")
            size_axis(ax, [c.threads for c in ok], formatter=count_format)
            ax.set_xlabel("threads")
            ax.set_ylabel(f"patches per second, all threads\n(median; {scene.whisker_text(ok)})")
    return ("thread_contention",
            "aggregate throughput = threads / ns_per_op × 1e9 (ns_per_op is per thread); dotted: linear scaling")


def plot_code_heap(scene: Scene):
    """Layouts side by side (one page patched), then the heap-size and mapping-count sweeps."""
    names = ["one page patched, by layout", "page in a heap of this size", "code mappings held"]
    axes = scene.panels(names, side_by_side=True)
    sizes = sorted({c.size_bytes for c in scene.configs if c.variant == "reserved" and c.size_bytes})
    # the layout panel shows the heaps at the size nearest 256 KiB (the issue's 64-page heap on 4 KiB pages)
    heap = min(sizes, key=lambda s: abs(s - (256 << 10))) if sizes else None

    def in_layout(c):
        return c.variant in ("isolated", "neighbour") or (c.variant in ("reserved", "page_then_heap")
                                                          and c.size_bytes == heap)

    def style_variant(key, i):
        return strategy_color(key[0], i), "os"[i % 2], "-" if key[1] == "reserved" else "--"

    def style(key, i):
        return strategy_color(key[0], i), MARKERS[i % len(MARKERS)], "-"

    layout_universe = [c for c in scene.configs if in_layout(c)]
    heap_universe = [c for c in scene.ok() if c.variant in ("reserved", "page_then_heap")]
    map_universe = [c for c in scene.ok() if c.variant == "mappings"]
    for core in scene.cores:
        ax = axes[(names[0], core)]
        mine = [c for c in scene.of_core(core) if in_layout(c)]
        draw_by_strategy(scene, ax, mine, layout_universe, ("isolated", "neighbour", "reserved", "page_then_heap"))
        ax.set_yscale("log")
        ax.set_ylabel(scene.ns_label("ns per verified patch", mine))
        ax = axes[(names[1], core)]
        ok = [c for c in scene.ok(core) if c.variant in ("reserved", "page_then_heap")]
        draw_lines(scene, ax, ok, SeriesSet(heap_universe, ["strategy", "variant"], "size_bytes"), style_variant)
        size_axis(ax, [c.size_bytes for c in ok])
        ax.set_yscale("log")
        ax.set_xlabel("heap size (every page populated)")
        ax.set_ylabel(scene.ns_label("ns per verified patch", ok))
        ax = axes[(names[2], core)]
        ok = scene.ok(core, variant="mappings")
        draw_lines(scene, ax, ok, SeriesSet(map_universe, ["strategy"], "pages"), style)
        size_axis(ax, [c.pages for c in ok], formatter=count_format, base=10)
        ax.set_yscale("log")
        ax.set_xlabel("separate one-page code mappings (patched round robin)")
        ax.set_ylabel(scene.ns_label("ns per verified patch", ok))
    return ("code_heap",
            "one verified patch of one page: its own mapping, after writable data, in a heap (split/merge), "
            "page then whole heap; dashed: page_then_heap")


def plot_generic(scene: Scene):
    """Any scenario without its own figure: median ns per op per strategy and configuration."""
    axes = scene.panels(["ns per op by strategy"])
    for core in scene.cores:
        ax = axes[("ns per op by strategy", core)]
        mine = scene.of_core(core)
        draw_by_strategy(scene, ax, mine, scene.configs)
        ax.set_ylabel(scene.ns_label(configs=mine))
    return scene.scenario, "median ns per op of each configuration (no dedicated figure for this scenario yet)"


# The one table of figures: scenario -> function. A scenario not listed gets plot_generic.
FIGURES = {
    "harness": plot_harness,
    "toggle_latency": plot_toggle_latency,
    "mprotect_tlb": plot_mprotect_tlb,
    "dualmap_overhead": plot_dualmap_overhead,
    "icache_flush": plot_icache_flush,
    "thread_contention": plot_thread_contention,
    "code_heap": plot_code_heap,
}


# ---------------------------------------------------------------------------
# Running it


@dataclass
class Output:
    """Files written for one scenario."""

    scenario: str
    png: Path | None
    svg: Path | None
    not_ok: Path | None
    issues: list
    error: str | None = None  # why the figure could not be drawn (a bug to report)


def write_not_ok(path: Path, run: wxdata.Run, scenario: str, issues: list) -> Path | None:
    if not issues:
        if path.exists():
            path.unlink()  # stale list from an earlier drawing of the same run
        return None
    lines = [f"# {scenario}: configurations not drawn (status not ok), {run.csv_path}", ""]
    for iss in issues:
        lines.append(f"{iss.what} ({iss.where_text()}): {iss.status}")
        for c in iss.configs:
            lines.append(f"    configuration: {c.label()}")
        lines.append("    reason: " + "\n            ".join(iss.reason.splitlines() or ["(no reason given)"]))
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def draw_scenario(run: wxdata.Run, scenario: str, out_dir: Path) -> Output:
    """Draw one scenario (if it has anything drawable) and write its not-ok list."""
    configs = run.scenario_configs(scenario)
    issues = wxdata.issues(configs)
    not_ok = write_not_ok(out_dir / f"{scenario}_not_ok.txt", run, scenario, issues)
    if not any(c.n for c in configs):
        return Output(scenario, None, None, not_ok, issues)
    scene = Scene(run, scenario, configs)
    draw = FIGURES.get(scenario, plot_generic)
    png, svg = out_dir / f"{scenario}.png", out_dir / f"{scenario}.svg"
    try:
        name, subtitle = draw(scene)
        scene.finish(f"{name} — {machine_title(run)}", subtitle)
        scene.fig.savefig(png, dpi=DPI, metadata={"Software": None})
        scene.fig.savefig(svg, metadata={"Date": None})
    except Exception as exc:  # one scenario's bad shape must not cost the other figures
        traceback.print_exc()
        for p in (png, svg):
            p.unlink(missing_ok=True)
        return Output(scenario, None, None, not_ok, issues, f"{type(exc).__name__}: {exc}")
    finally:
        plt.close("all")
    return Output(scenario, png, svg, not_ok, issues)


def draw_run(run: wxdata.Run, out_dir: Path) -> list[Output]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [draw_scenario(run, s, out_dir) for s in run.scenarios]


def load_drawable(arg: str) -> wxdata.Run:
    """Load a run; NoData when there is no ok row to draw (nothing is written then)."""
    run = wxdata.open_run(arg)
    if not run.rows:
        raise wxdata.NoData(f"{run.csv_path}: no rows; nothing to draw, nothing written")
    if not run.has_ok_rows:
        lines = [f"{run.csv_path}: no ok rows; nothing to draw, nothing written. Rows not ok:"]
        lines += ["  " + i.line() for i in wxdata.issues(run.configs)]
        raise wxdata.NoData("\n".join(lines))
    return run


def main(argv=None) -> int:
    ap = wxdata.run_parser(__doc__)
    ap.add_argument("--out", metavar="PLOTS_DIR", help="output folder (default: plots/<machine>/<run>)")
    args = ap.parse_args(argv)
    run = load_drawable(args.run)
    out_dir = wxdata.output_dir(run, args.out)
    outputs = draw_run(run, out_dir)
    for o in outputs:
        for p in (o.png, o.svg, o.not_ok):
            if p:
                print(p)
    failed = [o for o in outputs if o.error]
    for o in failed:
        wxdata.fail(f"{o.scenario}: figure not drawn: {o.error}")
    return 1 if failed else 0


if __name__ == "__main__":
    wxdata.run_main(main)
