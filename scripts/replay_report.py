#!/usr/bin/python3
"""What real programs' W^X costs under each strategy: a figure and a table
from trace directories that `wxbench replay` has replayed.

Usage:
    replay_report.py TRACE_DIR [TRACE_DIR...] --out PLOTS_DIR

Each TRACE_DIR holds trace.csv, summary.json and replay.csv (and, where the
engine scripts wrote one, engine.txt naming the program and its version).
Writes PLOTS_DIR/replay.png, replay.svg and replay.md: per program, the
traced time in its protection calls, and the time the replay predicts under
each strategy (median over the replay's processes, 95% interval where there
are 6 or more, else min..max), and the program's W^X pattern (how many
switches, how large, which regions). Exit 2 on bad input, naming the file."""
from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wxdata import fmt_bytes  # noqa: E402

ORDER = ["mprotect", "dualmap", "pkey", "rwx", "mapjit", "mapjit_callback"]
COLOURS = {"mprotect": "#d62728", "dualmap": "#1f77b4", "pkey": "#ff7f0e", "rwx": "#7f7f7f",
           "mapjit": "#2ca02c", "mapjit_callback": "#9467bd"}


class BadInput(Exception):
    pass


def read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        raise BadInput(f"{path}: {e.strerror}") from e


def pattern(rows: list[dict]) -> dict:
    """The program's W^X pattern from its trace rows."""
    prot = [r for r in rows if r["call"] in ("mprotect", "pkey_mprotect") and r["result"] == "0"]
    w = [r for r in prot if "w" in r["prot_after"]]
    x = [r for r in prot if "x" in r["prot_after"] and "w" not in r["prot_after"]]
    regions = Counter()
    for r in rows:
        if r["region"]:
            regions[(r["process"], r["region"])] = max(regions[(r["process"], r["region"])], int(r["region_size"]))
    sizes = Counter(regions.values())

    def common(rs):
        if not rs:
            return "none"
        (length, n), = Counter(int(r["length"]) for r in rs).most_common(1)
        return f"{len(rs):,} × {fmt_bytes(length)}" + (" (mostly)" if n < len(rs) else "")

    return {"switches": len(prot), "writable": common(w), "executable": common(x),
            "regions": ", ".join(f"{n} × {fmt_bytes(s)}" for s, n in sorted(sizes.items())),
            "redundant": sum(1 for r in prot if r["prot_before"] == r["prot_after"])}


def load(d: Path) -> dict:
    summary_path = d / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except OSError as e:
        raise BadInput(f"{summary_path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise BadInput(f"{summary_path}:{e.lineno}: not JSON ({e.msg})") from e
    replay = read_csv(d / "replay.csv")
    if not replay or "predicted_ns" not in replay[0]:
        raise BadInput(f"{d / 'replay.csv'}: no replay rows (run wxbench replay {d})")
    engine = (d / "engine.txt").read_text().strip() if (d / "engine.txt").exists() else " ".join(summary["command"])
    rows = read_csv(d / "trace.csv")
    return {"dir": d, "summary": summary, "replay": {r["strategy"]: r for r in replay}, "engine": engine,
            "pattern": pattern(rows)}


def ms(v) -> str:
    return f"{float(v) / 1e6:,.2f}" if v not in ("", None) else ""


def table(runs: list[dict]) -> str:
    out = ["| program | W^X pattern | wall (ms) | traced in mprotect (ms) | predicted: mprotect (ms, ratio) "
           "| dualmap (ms) | pkey (ms) | rwx (ms) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        rp, p, s = run["replay"], run["pattern"], run["summary"]

        def cell(name, ratio=False):
            r = rp.get(name)
            if not r:
                return "not replayed"
            if r["status"] != "ok":
                return f"{r['status']}"
            text = ms(r["predicted_ns"])
            if "predicted_ns_low" in r and r["predicted_ns_low"]:
                text += f" [{ms(r['predicted_ns_low'])}–{ms(r['predicted_ns_high'])}]"
            if ratio:
                text += f" (×{float(r['ratio']):.2f}"
                if r.get("ratio_low"):
                    text += f", {float(r['ratio_low']):.2f}–{float(r['ratio_high']):.2f}"
                text += ")"
            return text

        traced = next((r["traced_ns"] for r in rp.values() if r["traced_ns"]), "")
        pat = (f"{p['switches']:,} switches: writable {p['writable']}, executable {p['executable']}; "
               f"code regions {p['regions']}")
        out.append(f"| {run['engine']} | {pat} | {s['wall_ns'] / 1e6:,.0f} | {ms(traced)} | {cell('mprotect', True)} "
                   f"| {cell('dualmap')} | {cell('pkey')} | {cell('rwx')} |")
    return "\n".join(out) + "\n"


def figure(runs: list[dict], out: Path) -> None:
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs) + 0.6, 3.9), squeeze=False)
    for ax, run in zip(axes[0], runs):
        rp = run["replay"]
        names = [s for s in ORDER if s in rp and rp[s]["status"] == "ok"]
        traced = float(next(r["traced_ns"] for r in rp.values() if r["traced_ns"])) / 1e6
        xs = list(range(len(names) + 1))
        vals = [traced] + [float(rp[s]["predicted_ns"]) / 1e6 for s in names]
        lo = [traced] + [float(rp[s].get("predicted_ns_low") or rp[s]["predicted_ns"]) / 1e6 for s in names]
        hi = [traced] + [float(rp[s].get("predicted_ns_high") or rp[s]["predicted_ns"]) / 1e6 for s in names]
        colours = ["#333333"] + [COLOURS.get(s, "#888888") for s in names]
        ax.bar(xs, vals, color=colours, width=0.65,
               yerr=[[max(v - low, 0) for v, low in zip(vals, lo)], [max(h - v, 0) for v, h in zip(vals, hi)]],
               capsize=3, ecolor="#222222")
        ax.set_xticks(xs, ["traced\n(mprotect)"] + [f"replay\n{s}" for s in names], fontsize=8)
        ax.set_yscale("log")
        for x, v in zip(xs, vals):
            ax.annotate(f"{v:,.2f} ms" if v >= 0.01 else f"{v * 1e3:,.1f} µs", (x, v), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=7)
        wall = run["summary"]["wall_ns"] / 1e6
        name = run["engine"].replace(" (", "\n(", 1)
        ax.set_title(f"{name}\n{run['pattern']['switches']:,} switches; program wall {wall:,.0f} ms",
                     fontsize=8, loc="left")
        ax.set_ylabel("ms in the W^X calls (log)")
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("What each program's W^X costs under each strategy\n(black: traced time in its mprotect calls; "
                 "colours: the replay of its trace on this machine, median over processes, whiskers 95% interval)",
                 fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "replay.png", dpi=120)
    fig.savefig(out / "replay.svg")
    plt.close(fig)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    if "--out" not in argv or argv.index("--out") + 1 >= len(argv):
        print(__doc__, file=sys.stderr)
        return 2
    i = argv.index("--out")
    out = Path(argv[i + 1])
    dirs = [Path(a) for a in argv[:i] + argv[i + 2:]]
    if not dirs:
        print("replay_report.py: no trace directory", file=sys.stderr)
        return 2
    try:
        runs = [load(d) for d in dirs]
    except BadInput as e:
        print(f"replay_report.py: {e}", file=sys.stderr)
        return 2
    figure(runs, out)
    (out / "replay.md").write_text(table(runs))
    print(f"{out / 'replay.png'}\n{out / 'replay.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
