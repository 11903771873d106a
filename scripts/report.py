#!/usr/bin/python3
"""Write a report of one wxbench run: report.html (self-contained) and report.md.

Usage:
    report.py RUN_DIR [--out DIR]

RUN_DIR is data/<machine>/<run> (or its results.csv); the report and the figures it
shows go to plots/<machine>/<run>/ unless --out is given. Sections: the machine
(meta.json), headline numbers per strategy, the figures (drawn by plot.py), rows that
are not ok with their reasons, noisy configurations, and, where the run has them,
the W^X audit and cost per patch against exposure window. A piece whose data is
absent is left out.
"""

from __future__ import annotations

import base64
import html
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plot  # noqa: E402  (also selects the Agg backend)
import wxdata  # noqa: E402
from wxdata import fmt_ns, fmt_value  # noqa: E402

import numpy as np  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

PARTIAL_MARK = "†"
AUDIT_COLOURS = {"yes": "#cfe3f7", "no": "#f9d8bd", "n/a": "#e4e4e4"}


# ---------------------------------------------------------------------------
# A tiny document model rendered both as Markdown and as HTML


@dataclass
class Cell:
    """A table cell: its text, and optionally a CSS class and a tooltip (HTML only)."""

    text: str
    css: str = ""
    tip: str = ""


class Doc:
    def __init__(self, base_dir: Path):
        self.blocks: list[tuple] = []
        self.base_dir = base_dir
        self.errors: list[str] = []  # what went wrong while building (reported, exit status 1)

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str, css: str = ""):
        self.blocks.append(("p", text, css))

    def ul(self, items: list[str]):
        if items:
            self.blocks.append(("ul", items))

    def table(self, header: list[str], rows: list[list], caption: str = ""):
        self.blocks.append(("table", header, [[c if isinstance(c, Cell) else Cell(str(c)) for c in r] for r in rows],
                            caption))

    def image(self, path: Path, alt: str, also: Path | None = None):
        self.blocks.append(("img", path, alt, also))

    def pre(self, text: str):
        self.blocks.append(("pre", text))

    # -- Markdown
    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                out.append("#" * b[1] + " " + b[2])
            elif kind == "p":
                out.append(b[1])
            elif kind == "ul":
                out.append("\n".join("- " + md_cell(i) for i in b[1]))
            elif kind == "table":
                _, header, rows, caption = b
                lines = ["| " + " | ".join(md_cell(h) for h in header) + " |",
                         "|" + "|".join(" --- " for _ in header) + "|"]
                lines += ["| " + " | ".join(md_cell(c.text) for c in r) + " |" for r in rows]
                if caption:
                    lines.append("\n" + caption)
                out.append("\n".join(lines))
            elif kind == "img":
                _, path, alt, also = b
                rel = path.name if path.parent == self.base_dir else str(path)
                text = f"![{alt}]({rel})"
                if also:
                    text += f"\n\n[{also.name}]({also.name})"
                out.append(text)
            elif kind == "pre":
                out.append("```\n" + b[1] + "\n```")
        return "\n\n".join(out) + "\n"

    # -- HTML (self-contained: inline CSS, images as data URIs, no links out)
    def html(self, title: str) -> str:
        body = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                body.append(f"<h{b[1]}>{esc(b[2])}</h{b[1]}>")
            elif kind == "p":
                cls = f' class="{b[2]}"' if b[2] else ""
                body.append(f"<p{cls}>{esc(b[1])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b[1]) + "</ul>")
            elif kind == "table":
                _, header, rows, caption = b
                t = ["<table>"]
                t.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
                for r in rows:
                    cells = []
                    for c in r:
                        attrs = f' class="{c.css}"' if c.css else ""
                        attrs += f' title="{esc(c.tip)}"' if c.tip else ""
                        cells.append(f"<td{attrs}>{esc(c.text)}</td>")
                    t.append("<tr>" + "".join(cells) + "</tr>")
                t.append("</table>")
                if caption:
                    t.append(f'<p class="caption">{esc(caption)}</p>')
                body.append("\n".join(t))
            elif kind == "img":
                _, path, alt, _ = b
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></figure>')
            elif kind == "pre":
                body.append(f"<pre>{esc(b[1])}</pre>")
        css = "\n".join(f"td.audit-{k.replace('/', '')} {{ background: {v}; }}" for k, v in AUDIT_COLOURS.items())
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top;
          white-space: pre-wrap; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.missing {{ color: #888; text-align: center; }}
td.notok {{ color: #8b0000; font-style: italic; }}
p.warn {{ background: #fff4e5; border-left: 4px solid #e69500; padding: 0.4em 0.8em; }}
p.caption {{ font-size: 0.85em; color: #555; margin-top: 0; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
{css}
</style></head>
<body>
{chr(10).join(body)}
</body></html>
"""


def esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def md_cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item: pipes and tags escaped,
    line breaks as <br>."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()] or [""]
    lines = [line.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;") for line in lines if line]
    return "<br>".join(lines)


# ---------------------------------------------------------------------------
# Sections


def meta_text(value) -> str:
    """A meta.json value as text: nested objects as 'key: value' lines, lists joined."""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {meta_text(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return ", ".join(meta_text(v) for v in value) or "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def machine_section(doc: Doc, run: wxdata.Run):
    doc.h(2, "Machine")
    if run.meta is None:
        doc.p(f"No machine details: {run.meta_note}.", "warn")
        first = run.rows[0] if run.rows else None
        if first:
            doc.table(["from results.csv", "value"], [["machine", first.machine], ["chip", first.chip],
                                                      ["os", first.os], ["arch", first.arch],
                                                      ["page_size", first.page_size]])
        return
    rows = []
    for key, value in run.meta.items():
        text = meta_text(value)
        rows.append([key, Cell(text)])
    doc.table(["meta.json key", "value"], rows)


def headline_section(doc: Doc, run: wxdata.Run):
    classes = wxdata.core_classes(run.configs)
    tables = [(c, wxdata.headline_table(run, c)) for c in classes]
    tables = [(c, t) for c, t in tables if any(v.value is not None for vals in t.values() for v in vals.values())]
    if not tables:
        return
    doc.h(2, "Headline numbers")
    partial, shown = False, set()
    for core, table in tables:
        if len(tables) > 1 or core in ("P", "E"):
            doc.h(3, wxdata.core_text(core))
        used = [m for m in wxdata.HEADLINE if any(m.key in vals for vals in table.values())]
        shown.update(m.key for m in used)
        header = ["strategy"] + [m.title for m in used]
        rows = []
        for strategy, vals in table.items():
            row = [strategy]
            for m in used:
                v = vals.get(m.key)
                if v is None:
                    row.append(Cell("—", "missing"))
                elif v.value is None:
                    row.append(Cell(v.status, "notok"))
                else:
                    text = fmt_value(v.value, m.unit)
                    if m.unit == "ns" and len(v.samples) == 1:
                        st = wxdata.Stats.of(v.samples[0])
                        text += (f" ({'95%' if st.exact95 else 'min–max'}: {wxdata.fmt_ns_range(st.low, st.high, v.value)}"
                                 f"{', noisy' if st.noisy else ''})")
                    if v.note:
                        text += f" ({v.note})"
                    if v.status == "partial":
                        text += PARTIAL_MARK
                        partial = True
                    row.append(Cell(text, "num", f"{v.n} ok repetitions; " + "; ".join(c.label() for c in v.configs)))
            rows.append(row)
        doc.table(header, rows)
    items = [f"{m.title}: {m.definition}." for m in wxdata.HEADLINE if m.key in shown]
    items.append(wxdata.HEADLINE_RULE)
    items.append("In brackets: the " + wxdata.INTERVAL_DEFINITION + "; \"noisy\" marks a configuration whose "
                 f"processes scatter more than {wxdata.NOISE_THRESHOLD:.0%} (coefficient of variation).")
    items.append("— means the run has no such configuration; a status word means it has one, but no ok repetition.")
    if partial:
        items.append(f"{PARTIAL_MARK} some repetitions of that configuration were not ok; the value is the median "
                     "of the ok ones (see the list of rows that are not ok).")
    doc.ul(items)


def figures_section(doc: Doc, outputs: list):
    drawn = [o for o in outputs if o.png or o.error]
    if not drawn:
        return
    doc.h(2, "Figures")
    for o in drawn:
        doc.h(3, o.scenario)
        if o.error:
            doc.p(f"The figure could not be drawn ({o.error}); the numbers above and below stand.", "warn")
        else:
            doc.image(o.png, f"{o.scenario} figure", o.svg)


def not_ok_section(doc: Doc, run: wxdata.Run):
    issues = wxdata.issues(run.configs)
    if not issues:
        return
    doc.h(2, "Not ok: unsupported, failed, crashed, timed out, interfered")
    doc.p("These configurations are not drawn and not counted in any median.")
    rows = []
    for i in issues:
        rows.append([i.scenario, i.what, Cell(i.status, "notok"), i.where_text(), i.reason])
    doc.table(["scenario", "strategy/variant", "status", "where", "reason"], rows)


def noise_section(doc: Doc, run: wxdata.Run) -> list:
    """How much the processes of each configuration scatter: the summary. Returns the
    noisy configurations (listed by noisy_list_section near the end)."""
    stats = [(c, st) for c in run.configs if (st := c.stats()) is not None]
    doc.h(2, "Noise")
    env = run.meta.get("environment") if run.meta else None
    if isinstance(env, dict) and env.get("busy"):
        doc.p(f"Warning: {env.get('warning') or 'the machine was busy before timing'}.", "warn")
    if not stats:
        doc.p("No ok configuration.")
        return []
    cvs = [st.cv for _, st in stats if st.cv is not None]
    noisy = sorted([(c, st) for c, st in stats if st.noisy], key=lambda cs: -cs[1].cv)
    few = sum(1 for _, st in stats if not st.exact95)
    reps = sorted({st.n for _, st in stats})
    span = f"{reps[0]}" + (f"–{reps[-1]}" if len(reps) > 1 else "")
    replication = run.meta.get("replication") if run.meta else None
    unit = "process" if isinstance(replication, dict) and replication.get("unit") == "process" else "repetition"
    doc.p(f"{len(stats)} configurations, {span} {unit}{'es' if unit == 'process' else 's'} each. Between-"
          f"{unit} coefficient of variation: median {np.median(cvs):.1%}, 90th percentile "
          f"{np.percentile(cvs, 90):.1%}, largest {max(cvs):.1%}. " if cvs else
          f"{len(stats)} configurations, {span} {unit}es each.")
    doc.p(f"Definition: {wxdata.SPREAD_DEFINITION}. Intervals: {wxdata.INTERVAL_DEFINITION}.")
    if noisy:
        doc.p(f"Warning: {len(noisy)} of {len(stats)} configuration{'s' if len(noisy) != 1 else ''} scatter more "
              f"than {wxdata.NOISE_THRESHOLD:.0%} between processes (listed at the end); their medians move more "
              "from run to run.", "warn")
    else:
        doc.p(f"No configuration scatters more than {wxdata.NOISE_THRESHOLD:.0%} between processes.")
    if few:
        doc.p(f"{few} configuration{'s have' if few != 1 else ' has'} fewer than 6 ok processes: no 95% interval "
              "of the median exists for them (min–max is shown instead).", "warn")
    return noisy


def noisy_list_section(doc: Doc, noisy: list):
    if not noisy:
        return
    doc.h(2, "Noisy configurations")
    doc.table(["configuration", "processes", "median", "95% interval", "cv"],
              [[c.label(), st.n, Cell(fmt_ns(st.median), "num"),
                Cell(f"{fmt_ns(st.low)} – {fmt_ns(st.high)}" + ("" if st.exact95 else " (min–max)"), "num"),
                Cell(f"{st.cv:.1%}", "num")] for c, st in noisy])


def audit_section(doc: Doc, run: wxdata.Run):
    if not run.audit:
        return
    strategies = sorted({a.strategy for a in run.audit}, key=wxdata.strategy_key)
    properties = list(dict.fromkeys(a.property for a in run.audit))
    cell = {(a.strategy, a.property): a for a in run.audit}
    doc.h(2, "W^X audit")
    doc.p(f"From {run.audit_path}. Colours mark the answer (yes, no, n/a), not whether it is good; "
          "hover a cell in the HTML report for its evidence.")
    rows = []
    for s in strategies:
        row = [s]
        for prop in properties:
            a = cell.get((s, prop))
            if a is None:
                row.append(Cell("—", "missing"))
            else:
                row.append(Cell(a.result, "audit-" + a.result.replace("/", ""), a.evidence))
        rows.append(row)
    doc.table(["strategy"] + properties, rows)
    doc.ul([f"{a.strategy} / {a.property}: {a.evidence}" for a in run.audit if a.evidence.strip()])


def exposure_scatter(run: wxdata.Run, out_dir: Path) -> tuple[Path, Path] | None:
    """Cost per patch (toggle_latency/patch) against exposure window (wx_audit/exposure_window)."""
    core = wxdata.preferred_core_class(run)
    pts = []
    for s in sorted({c.strategy for c in run.configs}, key=wxdata.strategy_key):
        mine = [c for c in run.configs if c.strategy == s and c.core_class == core]
        patch = wxdata.headline_value(wxdata.metric("patch"), mine)
        expo = [c for c in mine if c.scenario == "wx_audit" and c.variant == "exposure_window" and c.n]
        if patch is None or patch.value is None or not expo:
            continue
        pts.append((s, min(expo, key=wxdata.param_sort_key).stats(), wxdata.Stats.of(patch.samples[0])))
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 5.8))
    for i, (s, ex, pa) in enumerate(pts):
        colour = plot.strategy_color(s, i)
        ax.errorbar([ex.median], [pa.median], xerr=[[min(ex.median - ex.min, ex.median * 0.999)], [ex.max - ex.median]],
                    yerr=[[min(pa.median - pa.min, pa.median * 0.999)], [pa.max - pa.median]], marker="o",
                    color=colour, capsize=3, linestyle="none", label=s)
        ax.annotate(s, (ex.median, pa.median), xytext=(6, 4), textcoords="offset points", fontsize=8, color=colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("exposure window: ns the code stays writable per patch\n"
                  "(wx_audit/exposure_window, median; min–max)")
    ax.set_ylabel("cost per verified patch, ns\n(toggle_latency/patch, median; min–max)")
    where = "" if core == "any" else f", {wxdata.core_text(core)}"
    ax.set_title(f"cost per patch vs exposure window\n{plot.machine_title(run)}{where}", fontsize=10, loc="left")
    note = textwrap.wrap(plot.footnote(run), 150, break_on_hyphens=False)
    fig.text(0.01, 0.01, "\n".join(note), fontsize=6.5, color="#666666", va="bottom")
    fig.tight_layout(rect=(0, 0.02 + 0.025 * len(note), 1, 1))
    png, svg = out_dir / "exposure_vs_patch.png", out_dir / "exposure_vs_patch.svg"
    fig.savefig(png, dpi=plot.DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None})
    plt.close(fig)
    return png, svg


# ---------------------------------------------------------------------------


def build(run: wxdata.Run, out_dir: Path) -> Doc:
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = plot.draw_run(run, out_dir)
    doc = Doc(out_dir)
    doc.errors = [f"{o.scenario}: figure not drawn: {o.error}" for o in outputs if o.error]
    doc.h(1, f"wxbench report — {plot.machine_title(run)}")
    n_ok = sum(r.ok for r in run.rows)
    doc.p(f"Run {run.name}, from {run.csv_path}: {len(run.rows)} rows, {n_ok} ok, "
          f"{len(run.configs)} configurations. Every number is a {wxdata.MEDIAN_DEFINITION}; "
          "the headline table and the noise summary come first, the machine last.")
    warnings = list(run.warnings)
    if run.meta is not None and (run.meta.get("finished") is False or run.meta.get("interrupted") is True):
        warnings.append("meta.json says the run did not finish (interrupted?): some configurations may be missing.")
    for w in warnings:
        doc.p(f"Warning: {w}", "warn")
    headline_section(doc, run)
    noisy = noise_section(doc, run)
    figures_section(doc, outputs)
    scatter = exposure_scatter(run, out_dir)
    if scatter:
        doc.h(2, "Cost per patch vs exposure window")
        doc.image(scatter[0], "cost per patch vs exposure window", scatter[1])
    audit_section(doc, run)
    not_ok_section(doc, run)
    noisy_list_section(doc, noisy)
    machine_section(doc, run)
    doc.p(plot.footnote(run))
    return doc


def main(argv=None) -> int:
    ap = wxdata.run_parser(__doc__)
    ap.add_argument("--out", metavar="DIR", help="output folder (default: plots/<machine>/<run>)")
    args = ap.parse_args(argv)
    run = wxdata.open_run(args.run)
    if not run.rows:
        raise wxdata.NoData(f"{run.csv_path}: no rows; nothing to report, nothing written")
    out_dir = wxdata.output_dir(run, args.out)
    doc = build(run, out_dir)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(doc.markdown(), encoding="utf-8")
    page.write_text(doc.html(f"wxbench report — {run.machine} {run.name}"), encoding="utf-8")
    print(page)
    print(md)
    for e in doc.errors:
        wxdata.fail(e)
    return 1 if doc.errors else 0


if __name__ == "__main__":
    wxdata.run_main(main)
