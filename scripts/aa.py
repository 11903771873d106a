#!/usr/bin/python3
"""A/A test: two runs of the same binary on the same machine, compared the way
compare.py compares any two runs, to say what difference this machine can resolve.

Usage:
    aa.py RUN_A RUN_B [--min-effect PCT] [--shift PCT] [--out DIR]
    aa.py RUN --split [--min-effect PCT] [--shift PCT] [--out DIR]

With --split, the odd repetitions of one run are A and the even ones B: both
halves ran interleaved, in the same minutes, so the host's drift between runs
is not in the comparison; what is left is the statistics' own false-positive
rate and power. Set beside two runs made back to back, the difference is what
the machine's drift between runs costs.

Prints (and writes to DIR/aa.txt, with the per-configuration table in DIR/aa.csv):
- the false-positive rate: the share of configurations compared that get the
  verdict faster or slower although nothing changed (compare.py's rule,
  scripts/wxstats.py); it should be at most 5%;
- the noise floor: over the configurations, the median and the 90th percentile of
  the half-width of the ratio's 95% interval, i.e. the smallest difference a
  comparison of two such runs can resolve for half (nine tenths) of them;
- the power: the same comparison with every value of RUN_B multiplied by
  1 + SHIFT (default 15%), the share of configurations then called slower;
- the run-wide shift (B / A, the median ratio over configurations) beside the
  drift inside each run (its second half of processes against its first half):
  a shared machine's host can move every configuration of a run at once, and a
  shift no larger than the drift inside the runs is the host, not a change.
`make aa` runs two quick runs back to back and then this script.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wxdata  # noqa: E402
import wxstats  # noqa: E402


def paired(a: wxdata.Run, b: wxdata.Run) -> list:
    """(config of A, config of B) for every configuration with ok values in both runs."""
    other = {c.key: c for c in b.configs}
    return [(ca, other[ca.key]) for ca in a.configs if ca.n and ca.key in other and other[ca.key].n]


def compare_runs(pairs: list, min_effect: float, scale: float = 1.0) -> list:
    """(config label, Comparison) for every pair of configurations (paired())."""
    return [(ca.label(), wxstats.compare(ca.values(), cb.values() * scale, "/".join(str(k) for k in ca.key),
                                         min_effect)) for ca, cb in pairs]


def summarise(results: list) -> dict:
    n = len(results)
    flagged = sum(1 for _, c in results if c.verdict in ("faster", "slower"))
    slower = sum(1 for _, c in results if c.verdict == "slower")
    halves = [max(c.ci_high - c.ratio, c.ratio - c.ci_low) / c.ratio for _, c in results
              if c.ratio and c.ci_low is not None]
    return {"n": n, "flagged": flagged, "slower": slower,
            "rate": flagged / n if n else 0.0, "slower_rate": slower / n if n else 0.0,
            "floor_median": float(np.median(halves)) if halves else None,
            "floor_p90": float(np.percentile(halves, 90)) if halves else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", metavar="RUN_A")
    ap.add_argument("run_b", metavar="RUN_B", nargs="?")
    ap.add_argument("--split", action="store_true",
                    help="A = the odd repetitions of RUN_A, B = the even ones (no RUN_B)")
    ap.add_argument("--min-effect", type=float, default=wxstats.MIN_EFFECT * 100, metavar="PCT")
    ap.add_argument("--shift", type=float, default=15.0, metavar="PCT", help="the power check's shift (default 15)")
    ap.add_argument("--out", metavar="DIR", help="where aa.txt and aa.csv go (default: beside RUN_A)")
    args = ap.parse_args(argv)
    if args.split == (args.run_b is not None):
        ap.error("give RUN_A and RUN_B, or one run with --split")
    if args.split:
        whole = wxdata.open_run(args.run_a)
        a = dataclasses.replace(whole, rows=[r for r in whole.rows if (r.repetition or 0) % 2 == 1], _configs=None)
        b = dataclasses.replace(whole, rows=[r for r in whole.rows if (r.repetition or 0) % 2 == 0], _configs=None)
    else:
        a, b = wxdata.open_run(args.run_a), wxdata.open_run(args.run_b)
    min_effect = args.min_effect / 100
    pairs = paired(a, b)
    same = compare_runs(pairs, min_effect)
    if not same:
        raise wxdata.NoData(f"{a.csv_path} and {b.csv_path}: no configuration with ok values in both")
    shifted = compare_runs(pairs, min_effect, 1 + args.shift / 100)
    s, p = summarise(same), summarise(shifted)
    reps = sorted({c.n for c in a.configs if c.n} | {c.n for c in b.configs if c.n})
    lines = [
        f"A/A test on {a.machine} ({a.chip}): "
        + (f"{a.dir}, odd repetitions vs even ones (interleaved)" if args.split else f"{a.dir} vs {b.dir}"),
        f"  {s['n']} configurations compared, {reps[0]}-{reps[-1]} processes each, minimum effect "
        f"{min_effect:.0%}",
        f"  false positives: {s['flagged']} of {s['n']} called faster or slower ({s['rate']:.1%}; at most 5% "
        f"expected){'' if s['rate'] <= 0.05 else '  <-- ABOVE 5%: this machine is too noisy for these settings'}",
        f"  noise floor: the 95% interval of a ratio spans +-{s['floor_median']:.1%} for half the configurations, "
        f"+-{s['floor_p90']:.1%} for nine in ten",
        f"  power: with run B scaled by {1 + args.shift / 100:g}, {p['slower']} of {p['n']} called slower "
        f"({p['slower_rate']:.1%})",
    ]
    shift = wxstats.run_shift([(ca.values(), cb.values()) for ca, cb in pairs])
    da, db = a.drift(), b.drift()
    if shift:
        lines.append(f"  run-wide shift: B / A = {shift:.3f} (the median ratio over configurations)")
        lines.append("  drift inside each run (its second half of processes / its first half): "
                     + ", ".join(f"{n} {d[0]:.3f}" if d else f"{n} n/a" for n, d in (("A", da), ("B", db))))
        if not args.split:
            lines.append("  so: " + wxstats.shift_note(shift, [d[0] if d else None for d in (da, db)]))
    if s["rate"] > 0.05 or p["slower_rate"] < 0.8:
        lines.append("  advice: use more repetitions (--repetitions) or longer ones (--min-time), and compare "
                     "runs made back to back on an idle machine")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(args.out) if args.out else a.dir.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "aa.txt").write_text(text, encoding="utf-8")
    with open(out / "aa.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["configuration", "n_a", "n_b", "ratio", "ci_low", "ci_high", "p_value", "verdict",
                    f"verdict_scaled_{args.shift:g}pct"])
        for (label, c), (_, c2) in zip(same, shifted):
            w.writerow([label, c.n_base, c.n, c.ratio, c.ci_low, c.ci_high, c.p_value, c.verdict, c2.verdict])
    print(f"wrote {out / 'aa.txt'} and {out / 'aa.csv'}")
    return 0


if __name__ == "__main__":
    wxdata.run_main(main)
