#!/usr/bin/python3
"""A/A test: two runs of the same binary on the same machine, compared the way
compare.py compares any two runs, to say what difference this machine can resolve;
and, over several such pairs, the machine's run-to-run band (data/<machine>/aa.json).

Usage:
    aa.py RUN_A RUN_B [--min-effect PCT] [--shift PCT] [--out DIR]
    aa.py RUN --split [--min-effect PCT] [--shift PCT] [--out DIR]
    aa.py --band PAIR_DIR [PAIR_DIR ...] [--out DIR]

With --split, the odd repetitions of one run are A and the even ones B: both
halves ran interleaved, in the same minutes, so the host's drift between runs
is not in the comparison; what is left is the statistics' own false-positive
rate and power. Set beside two runs made back to back, the difference is what
the machine's drift between runs costs.

One pair prints (and writes to DIR/aa.txt, with the per-configuration table in
DIR/aa.csv and the figures in DIR/aa_pair.json; DIR defaults to beside RUN_A):
- the whole-run verdict (scripts/wxstats.py) unscaled (should be within_band) and
  with every value of B multiplied by 1 + SHIFT (default 15%; must be slower);
- the false-positive rates: the share of configurations compared that get the
  verdict faster or slower although nothing changed, absolute (the interval
  includes the band) and relative to the run; each should be at most 5%;
- the noise floor: the median and 90th percentile over configurations of the
  half-width of ratio / g's exact 95% interval, and of mde_pct;
- the power: a seeded random 20% of B's configurations multiplied by 1 + SHIFT,
  the share of those then called slower relative to the run, and the share of
  the others called faster or slower;
- the drift inside each run (its second half of processes against its first);
- where both runs' processes.csv time the reference loop, all of the above again
  with the values adjusted for it (scripts/wxcompare.py), to judge whether the
  adjustment helps (compare.py --ref-adjust applies it).
The band used is the one compare.py would use (aa.json beside RUN_A's folder, or
the default).

--band reads the aa_pair.json and aa.csv of A/A pairs (`make aa` makes 3 by
default) and writes DIR/aa.json (DIR defaults to data/<machine>): per pair the
run-wide shift g and its interval; the band, exp(-+w) with w = max(2 x RMS of
log g over the pairs, the largest |log g|); the false-positive rates, absolute
(with that band) and relative, pooled and per pair; and the per-configuration
spread between runs beyond the sampling noise (wxstats.between_run_spread).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wxcompare  # noqa: E402
import wxdata  # noqa: E402
import wxstats  # noqa: E402

POWER_SHARE = 0.2
BAND_RULE = "exp(-+max(2 x RMS of log g over the pairs, the largest |log g|)), g each pair's run-wide shift"
AA_COLUMNS = ("configuration", "n_a", "n_b", "ratio", "ci_low", "ci_high", "p_value", "verdict", "ratio_vs_run",
              "ci_low_vs_run", "ci_high_vs_run", "verdict_vs_run", "mde_pct", "log_ratio", "log_low", "log_high",
              "scaled")


def flagged(rows: list, attr: str) -> int:
    """How many of these ConfigResults are called faster or slower (attr: verdict, verdict_vs_run)."""
    return sum(getattr(r.cmp, attr) in ("faster", "slower") for r in rows)


def rate(count: int, n: int) -> float:
    return count / n if n else 0.0


def quantiles(values: list) -> tuple:
    """(median, 90th percentile), or (None, None) for no values."""
    return (float(np.median(values)), float(np.percentile(values, 90))) if values else (None, None)


def power_keys(rows: list, share: float = POWER_SHARE) -> set:
    """A seeded random `share` of the compared configurations (their keys)."""
    rng = np.random.default_rng(wxstats.seed_for("power"))
    k = max(1, round(share * len(rows))) if rows else 0
    return {rows[i].key for i in rng.choice(len(rows), k, replace=False)}


def figures(a: wxdata.Run, b: wxdata.Run, band: wxcompare.Band, min_effect: float, factor: float,
            refs: tuple | None = None) -> tuple[dict, list, set, dict]:
    """One A/A pair analysed (with the reference-loop adjustment when refs is given):
    (figures, the comparison's rows, the keys scaled for the power check, verdict_vs_run of
    every row with those keys scaled)."""
    rc = wxcompare.compare_runs(a, b, band=band, min_effect=min_effect, refs=refs)
    rows = rc.compared
    chosen = power_keys(rows)
    scaled = wxcompare.compare_runs(a, b, band=band, min_effect=min_effect, refs=refs, resamples=0,
                                    scale={k: factor for k in chosen})
    after = {r.key: r.cmp.verdict_vs_run for r in scaled.compared}
    hits = sum(after[k] == "slower" for k in chosen)
    others = [k for k in after if k not in chosen]
    moved = sum(after[k] in ("faster", "slower") for k in others)
    # the exact sampling interval's half-width (the spread between runs, which widens the verdicts'
    # intervals, is the machine's and the same for every configuration)
    halves = [math.expm1(max(c.shift.high - c.shift.estimate, c.shift.estimate - c.shift.low))
              for c in (r.cmp for r in rows) if c.shift is not None and c.shift.low is not None]
    fig = {
        "configurations": len(rows), "run_shift": rc.shift.summary(),
        "run_shift_scaled": rc.shift.scaled(factor).summary(),
        "fp_absolute": flagged(rows, "verdict"), "fp_relative": flagged(rows, "verdict_vs_run"),
        "fp_absolute_rate": rate(flagged(rows, "verdict"), len(rows)),
        "fp_relative_rate": rate(flagged(rows, "verdict_vs_run"), len(rows)),
        "floor": quantiles(halves), "mde_pct": quantiles([r.cmp.mde_pct for r in rows if r.cmp.mde_pct is not None]),
        "power_scaled": len(chosen), "power_hits": hits, "power_rate": rate(hits, len(chosen)),
        "power_others": len(others), "power_others_moved": moved, "power_others_rate": rate(moved, len(others)),
        "slopes": {k: list(v) for k, v in rc.slopes.items()},
    }
    return fig, rows, chosen, after


def figure_lines(f: dict, factor: float) -> list[str]:
    """The lines that report one analysis (figures())."""
    s, t = f["run_shift"], f["run_shift_scaled"]
    n = f["configurations"]
    floor, mde = f["floor"], f["mde_pct"]

    def over(key):
        return "" if f[key + "_rate"] <= 0.05 else "  <-- ABOVE 5%"

    return [
        f"whole run: B / A = {s['ratio']:.3f}, 95% interval {s['ci_low']:.3f}-{s['ci_high']:.3f} (processes "
        f"resampled): {s['verdict']} (expected: within_band)",
        f"whole run with every configuration of B x{factor:g}: {t['ratio']:.3f}, {t['ci_low']:.3f}-{t['ci_high']:.3f}: "
        f"{t['verdict']} (expected: slower)",
        f"false positives, absolute (the interval includes the band): {f['fp_absolute']} of {n} called faster or "
        f"slower ({f['fp_absolute_rate']:.1%}; at most 5% expected){over('fp_absolute')}",
        f"false positives, relative to the run: {f['fp_relative']} of {n} ({f['fp_relative_rate']:.1%}; at most 5% "
        f"expected){over('fp_relative')}",
        (f"noise floor: the exact 95% interval of ratio / g spans +-{floor[0]:.1%} for half the configurations, "
         f"+-{floor[1]:.1%} for nine in ten; mde (80% power) {mde[0]:.1f}% for half, {mde[1]:.1f}% for nine in ten"
         if floor[0] is not None else "noise floor: no configuration has a 95% interval"),
        f"power: {f['power_scaled']} configurations of B ({POWER_SHARE:.0%}, seeded) x{factor:g}: {f['power_hits']} "
        f"of {f['power_scaled']} ({f['power_rate']:.1%}) called slower relative to the run; of the other "
        f"{f['power_others']}, {f['power_others_moved']} ({f['power_others_rate']:.1%}) called faster or slower",
    ]


def first_repetitions(run: wxdata.Run, n: int | None) -> wxdata.Run:
    """run with only its repetitions 1..n (all with None): what a run of n processes would have
    measured (repetitions are numbered in the order they ran, interleaved with the rest)."""
    if not n:
        return run
    return dataclasses.replace(run, rows=[r for r in run.rows if (r.repetition or 0) <= n], _configs=None)


def open_pair(args) -> tuple[wxdata.Run, wxdata.Run, str]:
    """Runs A and B (the odd and even repetitions of one run with --split) and a title."""
    if not args.split:
        a = first_repetitions(wxdata.open_run(args.run_a), args.repetitions)
        b = first_repetitions(wxdata.open_run(args.run_b), args.repetitions)
        return a, b, f"{a.dir} vs {b.dir}" + (f", repetitions 1-{args.repetitions}" if args.repetitions else "")
    whole = wxdata.open_run(args.run_a)
    a = dataclasses.replace(whole, rows=[r for r in whole.rows if (r.repetition or 0) % 2 == 1], _configs=None)
    b = dataclasses.replace(whole, rows=[r for r in whole.rows if (r.repetition or 0) % 2 == 0], _configs=None)
    return a, b, f"{a.dir}, odd repetitions vs even ones (interleaved)"


def ref_lines(adjusted: dict | None, factor: float) -> list[str]:
    """The reference-loop evaluation's lines."""
    if adjusted is None:
        return ["reference loop: not timed in both runs' processes.csv (ref_start_ns, ref_end_ns): not evaluated"]
    slopes = ", ".join(f"{k} {sa:.2f}/{sb:.2f}" for k, (sa, sb) in adjusted["slopes"].items())
    return (["with the reference-loop adjustment (compare.py --ref-adjust); slopes per scenario, A/B: " + slopes]
            + ["  " + line for line in figure_lines(adjusted, factor)])


def pair_text(a, b, title: str, band: wxcompare.Band, raw: dict, adjusted: dict | None, args) -> str:
    """aa.txt of one pair."""
    factor, min_effect = 1 + args.shift / 100, args.min_effect / 100
    reps = sorted({c.n for c in a.configs if c.n} | {c.n for c in b.configs if c.n})
    da, db = a.drift(), b.drift()
    lines = [f"configurations compared: {raw['configurations']}, {reps[0]}-{reps[-1]} processes each, minimum "
             f"effect {min_effect:.0%}, band {band.low:.3f}-{band.high:.3f} ({band.source})"]
    lines += figure_lines(raw, factor)
    lines.append("drift inside each run (its second half of processes / its first half): "
                 + ", ".join(f"{n} {d[0]:.3f}" if d else f"{n} n/a" for n, d in (("A", da), ("B", db))))
    lines += ref_lines(adjusted, factor)
    if max(raw["fp_absolute_rate"], raw["fp_relative_rate"]) > 0.05 or raw["power_rate"] < 0.8:
        lines.append("advice: use more repetitions (--repetitions) or longer ones (--min-time), and compare "
                     "runs made back to back on an idle machine")
    head = f"A/A test on {a.machine} ({a.chip}): {title}"
    return "\n".join([head] + ["  " + line for line in lines]) + "\n"


def write_aa_csv(path: Path, rows: list, chosen: set, after: dict, shift: float):
    """aa.csv: every configuration compared, its verdicts, and its verdict vs the run when scaled."""
    def num(v):
        return "" if v is None else repr(v)

    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(AA_COLUMNS + (f"verdict_vs_run_scaled_{shift:g}pct",))
        for r in rows:
            c, s = r.cmp, r.cmp.shift
            w.writerow([r.label, c.n_base, c.n, num(c.ratio), num(c.ci_low), num(c.ci_high), num(c.p_value),
                        c.verdict, num(c.ratio_vs_run), num(c.ci_low_vs_run), num(c.ci_high_vs_run), c.verdict_vs_run,
                        num(c.mde_pct), num(s.estimate), num(s.low), num(s.high), int(r.key in chosen), after[r.key]])


def analyse_pair(args) -> int:
    """One A/A pair: print and write aa.txt, aa.csv and aa_pair.json."""
    a, b, title = open_pair(args)
    min_effect, factor = args.min_effect / 100, 1 + args.shift / 100
    band = wxcompare.load_band(a.dir)
    raw, rows, chosen, after = figures(a, b, band, min_effect, factor)
    if not rows:
        raise wxdata.NoData(f"{a.csv_path} and {b.csv_path}: no configuration with ok values in both")
    refs = wxcompare.run_refs(a, b)
    adjusted = figures(a, b, band, min_effect, factor, refs)[0] if refs else None
    text = pair_text(a, b, title, band, raw, adjusted, args)
    print(text, end="")
    out = Path(args.out) if args.out else a.dir.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "aa.txt").write_text(text, encoding="utf-8")
    write_aa_csv(out / "aa.csv", rows, chosen, after, args.shift)
    doc = {"machine": a.machine, "chip": a.chip, "a": str(a.dir), "b": str(b.dir), "split": args.split,
           "min_effect": min_effect, "shift": args.shift / 100,
           "band": {"band_low": band.low, "band_high": band.high, "band_source": band.source},
           "raw": raw, "ref_adjusted": adjusted}
    (out / "aa_pair.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out / 'aa.txt'}, {out / 'aa.csv'} and {out / 'aa_pair.json'}")
    return 0


# ---------------------------------------------------------------- the band, over pairs

def read_pair(pair_dir: Path) -> tuple[dict, list]:
    """A pair's aa_pair.json and aa.csv rows."""
    try:
        doc = json.loads((pair_dir / "aa_pair.json").read_text(encoding="utf-8"))
        with open(pair_dir / "aa.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError) as exc:
        raise wxdata.DataError(f"{pair_dir}: not an analysed A/A pair (aa.py RUN_A RUN_B --out {pair_dir}): {exc}")
    if doc["raw"]["run_shift"]["ratio"] is None:
        raise wxdata.DataError(f"{pair_dir}: no run-wide shift in aa_pair.json")
    return doc, rows


def rejudge(row: dict, band: tuple, min_effect: float, g: float | None = None, spread: float = 0.0,
            extra: float = 0.0) -> tuple:
    """(absolute, relative) verdicts of an aa.csv row under another band and spread, with
    extra added to its log shift (the power check's scaling) and g the run-wide shift."""
    if row["log_ratio"] == "":
        return "missing", "missing"

    def val(k):
        return float(row[k]) + extra if row[k] != "" else None

    c = wxstats.Comparison(int(row["n_a"]), int(row["n_b"]))
    c.shift = wxstats.Shift(val("log_ratio"), val("log_low"), val("log_high"), 0.95)
    wxstats.judge(c, g, band, min_effect, spread)
    return c.verdict, c.verdict_vs_run


MOVED = ("faster", "slower")


def evaluate(doc: dict, rows: list, band: tuple, spread: float) -> dict:
    """One pair judged with a band and a spread: false positives (absolute, relative) and
    the power check (the rows aa.py scaled, shifted by its factor: share called slower
    relative to the run; share of the others called anything)."""
    me, g = doc["min_effect"], doc["raw"]["run_shift"]["ratio"]
    judged = [rejudge(r, band, me, g, spread) for r in rows]
    extra = math.log1p(doc["shift"])
    logs = [float(r["log_ratio"]) + extra * (r["scaled"] == "1") for r in rows if r["log_ratio"] != ""]
    gs = math.exp(float(np.median(logs))) if logs else None
    scaled = [rejudge(r, band, me, gs, spread, extra * (r["scaled"] == "1")) for r in rows]
    hits = sum(v[1] == "slower" for v, r in zip(scaled, rows) if r["scaled"] == "1")
    n_scaled = sum(r["scaled"] == "1" for r in rows)
    others = [v[1] for v, r in zip(scaled, rows) if r["scaled"] != "1"]
    return {"configurations": len(rows),
            "absolute_count": sum(v[0] in MOVED for v in judged), "relative_count": sum(v[1] in MOVED for v in judged),
            "absolute": rate(sum(v[0] in MOVED for v in judged), len(rows)),
            "relative": rate(sum(v[1] in MOVED for v in judged), len(rows)),
            "power_hits": hits, "power_scaled": n_scaled, "power": rate(hits, n_scaled),
            "others_moved": sum(v in MOVED for v in others), "others": len(others),
            "others_rate": rate(sum(v in MOVED for v in others), len(others))}


def pair_summary(pair_dir: Path, doc: dict, rows: list, band: tuple, spread_log: float) -> dict:
    """One pair's entry of aa.json: its shift, and its false positives and power judged with the
    band and spread of every pair (in sample)."""
    s = doc["raw"]["run_shift"]
    ev = evaluate(doc, rows, band, spread_log)
    return {"dir": str(pair_dir), "a": doc["a"], "b": doc["b"], "configurations": len(rows),
            "run_shift": {k: s[k] for k in ("ratio", "ci_low", "ci_high")},
            "false_positives": {"absolute": ev["absolute"], "relative": ev["relative"],
                                "absolute_count": ev["absolute_count"], "relative_count": ev["relative_count"]},
            "power_vs_run": ev["power"], "others_moved": ev["others_rate"]}


def leave_one_out(pairs: list) -> dict:
    """Each pair judged with the band and spread of the other pairs only (an honest estimate
    of what the band does for a comparison it was not made from); pooled counts."""
    tot = {"configurations": 0, "absolute_count": 0, "relative_count": 0, "power_hits": 0, "power_scaled": 0,
           "others_moved": 0, "others": 0}
    per = []
    for k, (doc, rows) in enumerate(pairs):
        rest = pairs[:k] + pairs[k + 1:]
        band = wxstats.band_rule([math.log(d["raw"]["run_shift"]["ratio"]) for d, _ in rest])
        ev = evaluate(doc, rows, band, spread(rest))
        per.append(ev)
        for key in tot:
            tot[key] += ev[key]
    return {"pairs": per, "absolute": rate(tot["absolute_count"], tot["configurations"]),
            "relative": rate(tot["relative_count"], tot["configurations"]),
            "power": rate(tot["power_hits"], tot["power_scaled"]),
            "others_rate": rate(tot["others_moved"], tot["others"]), **tot}


def spread(pairs: list) -> float:
    """The per-configuration spread between runs beyond sampling noise, over every pair (log units)."""
    res, half = [], []
    for doc, rows in pairs:
        g = math.log(doc["raw"]["run_shift"]["ratio"])
        for r in rows:
            if r["log_low"] != "":
                res.append(float(r["log_ratio"]) - g)
                half.append((float(r["log_high"]) - float(r["log_low"])) / 2)
    return wxstats.between_run_spread(res, half) if res else 0.0


def aggregate(pair_dirs: list, out: str | None, power_shift: float | None = None) -> int:
    """--band: the machine's band from A/A pairs, written to aa.json (power_shift: the power
    check judged at this shift, in percent, instead of the one the pairs were analysed with)."""
    pairs = [read_pair(Path(d)) for d in pair_dirs]
    if power_shift is not None:
        for doc, _ in pairs:
            doc["shift"] = power_shift / 100
    machine = pairs[0][0]["machine"]
    if len(pairs) < 3:
        print(f"note: {len(pairs)} A/A pair(s); the band wants at least 3", file=sys.stderr)
    band = wxstats.band_rule([math.log(doc["raw"]["run_shift"]["ratio"]) for doc, _ in pairs])
    w = spread(pairs)
    entries = [pair_summary(Path(d), doc, rows, band, w) for d, (doc, rows) in zip(pair_dirs, pairs)]
    n = sum(e["configurations"] for e in entries)
    fp = {k: rate(sum(e["false_positives"][k + "_count"] for e in entries), n) for k in ("absolute", "relative")}
    loo = leave_one_out(pairs) if len(pairs) >= 2 else None
    doc = {"machine": machine, "chip": pairs[0][0]["chip"],
           "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "pairs": entries, "false_positives": dict(fp, configurations=n),
           "band_low": band[0], "band_high": band[1],
           "band_rule": BAND_RULE,
           "config_spread_log": w, "config_spread_pct": 100 * math.expm1(w), "min_effect": pairs[0][0]["min_effect"],
           "leave_one_out": loo}
    path = Path(out or Path("data") / machine) / "aa.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(band_text(doc), end="")
    print(f"wrote {path}")
    return 0


def band_text(doc: dict) -> str:
    """What aa.json says, for the terminal."""
    pairs = doc["pairs"]
    fp = doc["false_positives"]
    per = {k: ", ".join(f"{e['false_positives'][k]:.1%}" for e in pairs) for k in ("absolute", "relative")}
    return (f"A/A band of {doc['machine']} from {len(pairs)} pairs:\n"
            "  run-wide shift per pair: " + ", ".join(
                f"{e['run_shift']['ratio']:.3f} ({e['run_shift']['ci_low']:.3f}-{e['run_shift']['ci_high']:.3f})"
                for e in pairs) + "\n"
            f"  band: {doc['band_low']:.3f}-{doc['band_high']:.3f} ({doc['band_rule']})\n"
            f"  false positives, absolute with this band: {fp['absolute']:.1%} pooled (per pair {per['absolute']})\n"
            f"  false positives, relative to the run: {fp['relative']:.1%} pooled (per pair {per['relative']})\n"
            f"  per-configuration spread between runs beyond sampling noise: +-{doc['config_spread_pct']:.1f}%\n"
            + loo_text(doc.get("leave_one_out")))


def loo_text(loo: dict | None) -> str:
    """The leave-one-out lines of band_text."""
    if not loo:
        return ""
    return (f"  each pair judged with the band and spread of the other pairs (leave one out), pooled:\n"
            f"    false positives: absolute {loo['absolute']:.1%} ({loo['absolute_count']} of "
            f"{loo['configurations']}), relative {loo['relative']:.1%} ({loo['relative_count']})\n"
            f"    power (a seeded 20% of B scaled): {loo['power']:.1%} called slower relative to the run "
            f"({loo['power_hits']} of {loo['power_scaled']}); the others called anything: {loo['others_rate']:.1%}\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_a", metavar="RUN_A", nargs="?")
    ap.add_argument("run_b", metavar="RUN_B", nargs="?")
    ap.add_argument("--split", action="store_true",
                    help="A = the odd repetitions of RUN_A, B = the even ones (no RUN_B)")
    ap.add_argument("--band", nargs="+", metavar="PAIR_DIR",
                    help="write the machine's band (aa.json) from these analysed A/A pairs (no RUN_A)")
    ap.add_argument("--min-effect", type=float, default=wxstats.MIN_EFFECT * 100, metavar="PCT",
                    help=f"smallest difference called faster or slower, in percent (default "
                         f"{wxstats.MIN_EFFECT * 100:g})")
    ap.add_argument("--shift", type=float, default=15.0, metavar="PCT", help="the power checks' shift (default 15)")
    ap.add_argument("--repetitions", type=int, metavar="N",
                    help="use only the first N repetitions of each run (a power curve: what N processes resolve)")
    ap.add_argument("--power-shift", type=float, metavar="PCT",
                    help="with --band: judge the power check at this shift instead of the pairs' own")
    ap.add_argument("--out", metavar="DIR",
                    help="where aa.txt, aa.csv and aa_pair.json go (default: beside RUN_A); with --band, where "
                         "aa.json goes (default: data/<machine>)")
    args = ap.parse_args(argv)
    if args.band:
        if args.run_a or args.split:
            ap.error("--band takes analysed pair folders only")
        return aggregate(args.band, args.out, args.power_shift)
    if args.run_a is None or args.split == (args.run_b is not None):
        ap.error("give RUN_A and RUN_B, or one run with --split")
    return analyse_pair(args)


if __name__ == "__main__":
    wxdata.run_main(main)
