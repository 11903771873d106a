"""Two runs compared configuration by configuration, and as a whole, with the
statistics of scripts/wxstats.py (shared by compare.py and aa.py):

- every configuration in both runs: its ok processes' log(ns_per_op) (values
  not above 0 left out), the Hodges-Lehmann shift with its exact interval, and
  both verdicts (absolute, and relative to the run-wide shift);
- the run-wide shift g with its clustered bootstrap interval (processes resampled
  within each (scenario, strategy) pair, a process being one repetition of a pair),
  judged against the machine's band: `data/<machine>/aa.json` beside the base run
  (its folder's parent) when present, else wxstats.DEFAULT_BAND;
- optionally (ref_adjust) the reference-loop covariate: processes.csv's
  ref_start_ns / ref_end_ns (a fixed CPU loop timed at the start and end of each
  child; the row of the highest `try` of a (scenario, strategy, repetition)), the
  process's ref = their geometric mean. Per scenario and per run, the slope b of
  log(ns_per_op) on log(ref), each configuration's values centred on their own
  means and pooled over the scenario's configurations (wxstats.pooled_slope); the
  adjusted values are log(ns) - b (log(ref) - c), c the mean log(ref) of the
  scenario's processes in both runs, a level common to both runs, so that a host
  slower for a whole run, as its ref shows, is taken out too. Values whose process
  has no ref are left as they are. The slope is fitted once, not per resample.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import wxdata
import wxstats


@dataclass
class Band:
    """The machine's run-to-run band of the run-wide shift, and where it comes from."""

    low: float
    high: float
    source: str  # the aa.json path, or "default"
    spread: float = wxstats.DEFAULT_SPREAD  # per-configuration spread between runs (log units)

    @property
    def pair(self) -> tuple[float, float]:
        return self.low, self.high


def band_path(run_dir: Path) -> Path:
    """Where a run's machine keeps its band: data/<machine>/aa.json beside data/<machine>/<run>."""
    return Path(run_dir).parent / "aa.json"


def load_band(run_dir: Path) -> Band:
    """The band from band_path(run_dir) when it holds band_low and band_high, else DEFAULT_BAND."""
    path = band_path(run_dir)
    if not path.exists():
        return Band(*wxstats.DEFAULT_BAND, "default")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        low, high = float(doc["band_low"]), float(doc["band_high"])
        spread = float(doc.get("config_spread_log", wxstats.DEFAULT_SPREAD))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"note: {path}: no band_low and band_high ({exc}); using the default band", file=sys.stderr)
        return Band(*wxstats.DEFAULT_BAND, "default")
    if not 0 < low <= 1 <= high:
        raise wxdata.DataError(f"{path}: band_low {low} and band_high {high} must bracket 1")
    return Band(low, high, str(path), spread)


# ---------------------------------------------------------------- process values

@dataclass
class Sample:
    """One configuration's ok processes in one run."""

    reps: np.ndarray    # repetition of each value
    values: np.ndarray  # ns_per_op
    logs: np.ndarray    # log(ns_per_op), or the reference-adjusted value

    @classmethod
    def of(cls, config: wxdata.Config, factor: float = 1.0) -> "Sample":
        rows = [r for r in config.ok_rows if r.ns_per_op is not None and r.ns_per_op > 0]
        values = np.array([r.ns_per_op for r in rows], dtype=float) * factor
        return cls(np.array([r.repetition or 0 for r in rows], dtype=int), values, np.log(values))


def read_refs(run_dir: Path) -> dict | None:
    """{(scenario, strategy, repetition): ref} from processes.csv, ref = sqrt(ref_start_ns x
    ref_end_ns) (the one that is above 0 when only one is), taken from the row of the
    highest `try` (1 when the column is absent); None when the file or the ref columns
    are missing."""
    path = Path(run_dir) / "processes.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"ref_start_ns", "ref_end_ns"} <= set(reader.fieldnames or ()):
                return None
            best: dict = {}
            for rec in reader:
                key = (rec["scenario"], rec["strategy"], int(rec["repetition"]))
                attempt = int(rec.get("try") or 1)
                if key not in best or attempt >= best[key][0]:
                    best[key] = (attempt, _ref(rec))
    except (OSError, KeyError, ValueError):
        return None
    return {k: ref for k, (_, ref) in best.items() if ref is not None}


def _ref(rec: dict) -> float | None:
    """The geometric mean of a processes.csv row's positive ref timings, or None."""
    times = []
    for col in ("ref_start_ns", "ref_end_ns"):
        try:
            t = float(rec.get(col) or "nan")
        except ValueError:
            continue
        if t > 0 and math.isfinite(t):
            times.append(t)
    return math.exp(sum(map(math.log, times)) / len(times)) if times else None


def _ref_logs(key: tuple, sample: Sample, refs: dict) -> np.ndarray:
    """log(ref) of each value's process (NaN where its process has none)."""
    return np.array([math.log(refs[(key[0], key[1], r)]) if (key[0], key[1], r) in refs else np.nan
                     for r in sample.reps])


def ref_adjust(keys: list, sides: tuple, refs: tuple) -> dict:
    """Replace every Sample's logs by the reference-adjusted values (module docstring);
    sides: ({key: Sample} of A, of B), refs: (read_refs of A, of B). Returns
    {scenario: (slope in A, slope in B)}."""
    slopes = {}
    for scenario in sorted({k[0] for k in keys}):
        mine = [k for k in keys if k[0] == scenario]
        centre = _centre(mine, sides, refs)
        slopes[scenario] = tuple(_adjust_side(side, {k: _ref_logs(k, side[k], ref) for k in mine}, mine, centre)
                                 for side, ref in zip(sides, refs))
    return slopes


def _centre(keys: list, sides: tuple, refs: tuple) -> float:
    """Mean log(ref) over the processes (scenario, strategy, repetition) that measured these
    configurations, in both runs."""
    logs = []
    for side, ref in zip(sides, refs):
        procs = {(k[0], k[1], int(r)) for k in keys for r in side[k].reps}
        logs += [math.log(ref[p]) for p in procs if p in ref]
    return float(np.mean(logs)) if logs else 0.0


def _adjust_side(side: dict, xs: dict, keys: list, centre: float) -> float:
    """Fit one run's slope for a scenario and adjust its Samples in place; returns the slope."""
    ys, xx = [], []
    for k in keys:
        have = ~np.isnan(xs[k])
        ys.append(side[k].logs[have])
        xx.append(xs[k][have])
    b = wxstats.pooled_slope(ys, xx)
    for k in keys:
        x = xs[k]
        side[k].logs = np.where(np.isnan(x), side[k].logs, side[k].logs - b * (x - centre))
    return b


# ---------------------------------------------------------------- the comparison

@dataclass
class ConfigResult:
    """One configuration of both runs, compared."""

    key: tuple          # wxdata.CONFIG_FIELDS values
    label: str
    cmp: wxstats.Comparison


@dataclass
class RunComparison:
    """Every configuration of two runs, and the whole run."""

    rows: list
    shift: wxstats.RunShift
    ref_adjusted: bool = False
    slopes: dict = field(default_factory=dict)   # scenario -> (slope in A, slope in B) when adjusted

    def counts(self, attr: str = "verdict") -> dict:
        """How many configurations got each verdict (attr: verdict or verdict_vs_run)."""
        return verdict_counts(self.rows, attr)

    @property
    def compared(self) -> list:
        return [r for r in self.rows if r.cmp.verdict != "missing"]


def verdict_counts(rows: list, attr: str = "verdict") -> dict:
    """How many of these ConfigResults got each verdict (attr: verdict or verdict_vs_run)."""
    out = {v: 0 for v in wxstats.VERDICTS}
    for r in rows:
        out[getattr(r.cmp, attr)] += 1
    return out


def _matrix(keys: list, side: dict) -> np.ndarray:
    """(configs x repetitions) log values of one (scenario, strategy) pair, NaN where missing."""
    reps = sorted({int(r) for k in keys for r in side[k].reps})
    col = {r: i for i, r in enumerate(reps)}
    m = np.full((len(keys), len(reps)), np.nan)
    for i, k in enumerate(keys):
        m[i, [col[int(r)] for r in side[k].reps]] = side[k].logs
    return m


def cluster_groups(keys: list, a: dict, b: dict) -> list:
    """(A matrix, B matrix) per (scenario, strategy) pair, for wxstats.clustered_bootstrap."""
    pairs: dict = {}
    for k in keys:
        pairs.setdefault((k[0], k[1]), []).append(k)
    return [(_matrix(ks, a), _matrix(ks, b)) for _, ks in sorted(pairs.items())]


def shared_configs(a: wxdata.Run, b: wxdata.Run, only: dict | None = None) -> list:
    """(config of A, config of B) for every configuration in both runs matching the filters
    ({field: set of values or None})."""
    other = {c.key: c for c in b.configs}
    only = only or {}
    return [(ca, other[ca.key]) for ca in a.configs if ca.key in other
            and not any(want is not None and getattr(ca, f) not in want for f, want in only.items())]


def compare_runs(a: wxdata.Run, b: wxdata.Run, *, band: Band, min_effect: float = wxstats.MIN_EFFECT,
                 only: dict | None = None, scale: dict | None = None, refs: tuple | None = None,
                 resamples: int = wxstats.RUN_RESAMPLES) -> RunComparison:
    """Every configuration of both runs compared, and the run-wide shift. scale: {key: factor}
    multiplies B's values (aa.py's power checks); refs: (read_refs of A, of B) to adjust for
    the reference loop; resamples 0: no bootstrap (g's interval is then g itself)."""
    pairs = shared_configs(a, b, only)
    keys = [ca.key for ca, _ in pairs]
    sa = {ca.key: Sample.of(ca) for ca, _ in pairs}
    sb = {cb.key: Sample.of(cb, (scale or {}).get(cb.key, 1.0)) for _, cb in pairs}
    slopes = ref_adjust(keys, (sa, sb), refs) if refs else {}
    cmps = {k: _estimate(sa[k], sb[k]) for k in keys}
    both = [k for k in keys if cmps[k].shift is not None]
    shift = wxstats.run_shift([cmps[k].shift.estimate for k in both], cluster_groups(both, sa, sb), band.pair,
                              band.source, resamples)
    for c in cmps.values():
        wxstats.judge(c, shift.ratio, band.pair, min_effect, band.spread)
    rows = [ConfigResult(ca.key, ca.label(), cmps[ca.key]) for ca, _ in pairs]
    order = {k: i for i, k in enumerate(keys)}
    rows.sort(key=lambda r: (r.key[0], wxdata.strategy_key(r.key[1]), order[r.key]))
    return RunComparison(rows, shift, bool(refs), slopes)


def _estimate(a: Sample, b: Sample) -> wxstats.Comparison:
    c = wxstats.estimate(a.logs, b.logs)
    if len(a.values) and len(b.values):
        c.base_median, c.median = float(np.median(a.values)), float(np.median(b.values))
    return c


def run_refs(a: wxdata.Run, b: wxdata.Run) -> tuple | None:
    """(refs of A, refs of B) when both runs' processes.csv have the reference loop, else None."""
    ra, rb = read_refs(a.dir), read_refs(b.dir)
    return (ra, rb) if ra and rb else None
