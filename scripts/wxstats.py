"""The statistics wxbench's scripts compare runs with (compare.py, aa.py).

Every value is one process's measurement of one configuration (each repetition
of a configuration is a fresh process), so these tests and intervals are over
process-level values, where the variance is.

Comparing a configuration between a base run A and a run B:
- ratio = median(B) / median(A) (> 1: B is slower);
- 95% interval of the ratio: percentile bootstrap, RESAMPLES resamples of each
  run's values (with replacement, each run separately), the ratio of the
  resampled medians, 2.5th to 97.5th percentile; the generator is seeded from the
  configuration's name, so the output is reproducible;
- p: two-sided Mann-Whitney U test of the two runs' values (normal approximation,
  tie and continuity corrections);
- verdict:
    missing  the configuration has no ok value in one of the runs;
    noisy    fewer than MIN_N values on a side, or the interval is so wide that a
             change of 2 x the minimum effect could hide in it (it reaches beyond
             1 +- 2 x min_effect): this comparison cannot tell;
    slower   the interval lies above 1, p < ALPHA, and the ratio is at least
             1 + min_effect;
    faster   the interval lies below 1, p < ALPHA, and the ratio is at most
             1 / (1 + min_effect);
    same     otherwise: no difference of min_effect or more that the noise allows
             to see.
A bootstrap interval over very few values is too narrow (with 3 values a side it
excludes 1 in about 1 A/A comparison in 10), so a verdict also needs the U test:
with 3 values a side it cannot reach p < 0.05, and the verdict is "same" or "noisy".
The minimum effect (default MIN_EFFECT) keeps a real but tiny shift that affects a
whole run (the host, the temperature) from being called a result; `make aa`
measures how often two runs of the same binary disagree on this machine.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

RESAMPLES = 4000
SEED = 20240601
MIN_EFFECT = 0.05
MIN_N = 3
ALPHA = 0.05
VERDICTS = ("faster", "slower", "same", "noisy", "missing")


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


def ratio_interval(base, other, seed: int, resamples: int = RESAMPLES) -> tuple[float, float]:
    """95% percentile-bootstrap interval of median(other) / median(base)."""
    rng = np.random.default_rng(seed)
    b = bootstrap_medians(np.asarray(base, dtype=float), rng, resamples)
    o = bootstrap_medians(np.asarray(other, dtype=float), rng, resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = np.percentile(o / b, [2.5, 97.5])
    return float(lo), float(hi)


@dataclass
class Comparison:
    """One configuration compared between a base run and another run."""

    n_base: int
    n: int
    base_median: float | None = None
    median: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    verdict: str = "missing"
    why: str = ""


def compare(base, other, name: str, min_effect: float = MIN_EFFECT) -> Comparison:
    """Compare two sets of process-level values of one configuration."""
    a = np.asarray(base, dtype=float)
    b = np.asarray(other, dtype=float)
    c = Comparison(len(a), len(b))
    if len(a) == 0 or len(b) == 0:
        c.why = "no ok value in " + ("either run" if len(a) == len(b) else "the base run" if len(a) == 0
                                    else "the other run")
        return c
    c.base_median, c.median = float(np.median(a)), float(np.median(b))
    if c.base_median <= 0:
        c.verdict, c.why = "noisy", "the base median is not above 0"
        return c
    c.ratio = c.median / c.base_median
    c.p_value = mann_whitney_u(b, a)[1]
    c.ci_low, c.ci_high = ratio_interval(a, b, seed_for(name))
    up, down = 1 + min_effect, 1 / (1 + min_effect)
    if len(a) < MIN_N or len(b) < MIN_N:
        c.verdict, c.why = "noisy", f"fewer than {MIN_N} processes on a side"
    elif c.ci_low > 1 and c.p_value < ALPHA and c.ratio >= up:
        c.verdict = "slower"
    elif c.ci_high < 1 and c.p_value < ALPHA and c.ratio <= down:
        c.verdict = "faster"
    elif c.ci_high > 1 + 2 * min_effect or c.ci_low < 1 / (1 + 2 * min_effect):
        c.verdict = "noisy"
        c.why = (f"the 95% interval {c.ci_low:.3g}-{c.ci_high:.3g} reaches beyond +-{2 * min_effect:.0%}: "
                 "too wide to tell")
    else:
        c.verdict = "same"
    return c


def geomean(values) -> float | None:
    v = [x for x in values if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


# ------------------------------------------------------------ run-wide shift
# Interleaving spreads the host's drift over every configuration of a run, but
# two runs made minutes apart can still sit at different levels of the host
# (a shared VM measured here moved by up to 17% between back-to-back runs): a
# shift common to every configuration. It is estimated, and set beside the
# drift the host showed inside each run, so that a reader can tell the host
# from a change; the per-configuration verdicts stay as defined above.

def run_shift(pairs) -> float | None:
    """The shift common to every configuration between two runs: the median over
    configurations of median(other) / median(base). pairs: (base values, other
    values) per configuration. None when no configuration has values on both
    sides. (No interval: the configurations of one process share its host
    state, so an interval over configurations would claim too much.)"""
    logs = [math.log(np.median(b) / np.median(a)) for a, b in pairs
            if len(a) and len(b) and np.median(a) > 0 and np.median(b) > 0]
    if not logs:
        return None
    return math.exp(float(np.median(logs)))


def within_run_drift(configs) -> tuple[float, int] | None:
    """How far the host moved inside one run: for every configuration with at
    least 2 processes in each half of the run (halves by the processes' start
    times), median(second half) / median(first half); the median of those
    ratios, and how many configurations gave one. configs: (start times,
    values) per configuration, a start time per value. None when no
    configuration can be split."""
    starts = sorted(t for ts, _ in configs for t in ts)
    if not starts:
        return None
    middle = starts[len(starts) // 2]
    logs = []
    for ts, vs in configs:
        first = [v for t, v in zip(ts, vs) if t < middle and v > 0]
        second = [v for t, v in zip(ts, vs) if t >= middle and v > 0]
        if len(first) >= 2 and len(second) >= 2:
            logs.append(math.log(np.median(second) / np.median(first)))
    if not logs:
        return None
    return math.exp(float(np.median(logs))), len(logs)


def shift_note(shift: float, drifts) -> str:
    """One sentence setting a run-wide shift beside the drift inside the runs."""
    inside = [d for d in drifts if d is not None]
    if not inside:
        return "no run has enough processes per configuration (4 and more) to say how far the host drifted inside it"
    largest = max(abs(math.log(d)) for d in inside)
    if abs(math.log(shift)) <= largest:
        return (f"the host moved by as much inside a run ({math.exp(largest) - 1:.1%}): on one machine this shift "
                "is the host's drift, not a change, and verdicts that follow it are not results")
    return (f"larger than the host moved inside either run ({math.exp(largest) - 1:.1%}): a real change, or the "
            "host drifting more slowly than a run lasts (`make aa` shows how far two runs of the same binary land "
            "apart on this machine)")
