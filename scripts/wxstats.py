"""The statistics wxbench's scripts compare runs with (compare.py, aa.py).

Every value is one process's measurement of one configuration (each repetition
of a configuration is a fresh process, and one process measures every
configuration of one (scenario, strategy) pair), so estimates and intervals are
over process-level values, where the variance is. On shared VMs those values
are often bimodal, and two runs made minutes apart sit a few percent apart as a
whole (the host moved): the run-wide shift. Verdicts therefore come at two
levels, each with distribution-free statistics on log(ns_per_op).

Comparing a configuration between a base run A and a run B:
- shift: the two-sample Hodges-Lehmann estimate, the median of the n_A x n_B
  pairwise differences log b_j - log a_i; ratio = exp(shift) (> 1: B is slower);
- its exact 95% interval (Mann-Whitney): the sorted pairwise differences
  D_(k) .. D_(n_A n_B + 1 - k), with k the largest rank for which the exact null
  distribution of U (a recursion over n_A and n_B) gives P(U <= k - 1) <= 2.5%;
  above n_A n_B = 2500 the normal approximation of U gives k; with too few
  processes (3 a side) there is no such k and no interval;
- p: the two-sided Mann-Whitney test of the same values, exact where the interval
  is (normal approximation with tie correction otherwise); informative only, no
  verdict uses it (an interval clear of 0 is that test rejecting);
- absolute verdict: ratio with the interval [exp(dL) x band_low, exp(dU) x band_high],
  the sampling interval widened by the machine's run-to-run band (aa.json from
  `make aa`, or DEFAULT_BAND);
- verdict relative to the run: ratio_vs_run = ratio / g, interval
  [exp(dL) / g, exp(dU) / g], g the run-wide shift below;
- each verdict, from a ratio and its interval:
    missing  the configuration has no ok value in one of the runs;
    noisy    fewer than 3 values on a side or no 95% interval, or the sampling
             interval (before the band and the spread widen it)
             reaches beyond 1 +- 2 x the minimum effect (a change of twice the
             minimum effect could hide in it): this comparison cannot tell;
    slower   the interval lies above 1 and the ratio is at least 1 + min_effect;
    faster   the interval lies below 1 and the ratio is at most 1 / (1 + min_effect);
    same     otherwise: no difference of min_effect or more that the noise allows
             to see;
- mde_pct: the smallest change the relative verdict finds with 80% power,
  100 x (exp(h x (z_0.975 + z_0.80) / z_0.975) - 1) with h the half-width of the
  exact interval in log units, (dU - dL) / 2 (h / z_0.975 is the shift's standard
  error), never below the minimum effect.

The whole run:
- whole run: the run-wide shift g = exp(median over configurations of their
  shifts);
- its 95% interval: percentile bootstrap (1000 resamples, seeded) that
  resamples processes, not configurations: for every (scenario, strategy) pair and
  each run, its repetitions with replacement, the same resampled repetitions for
  every configuration of the pair (they were measured by the same processes);
- whole-run verdict: slower when the interval lies above the band (ci_low > band_high),
  faster when below it (ci_high < band_low), else within_band.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from dataclasses import dataclass

import numpy as np

SEED = 20240601
MIN_EFFECT = 0.05
MIN_N = 3
ALPHA = 0.05
VERDICTS = ("faster", "slower", "same", "noisy", "missing")
RUN_VERDICTS = ("faster", "slower", "within_band")
EXACT_MAX_PAIRS = 2500      # n_A x n_B up to which U's null distribution is computed exactly
RUN_RESAMPLES = 1000        # bootstrap resamples of the run-wide shift (the docstring states it)
Z975 = 1.959963984540054    # standard normal quantiles
Z80 = 0.8416212335729143
# The machine's run-to-run band of the run-wide shift when no aa.json has measured
# it, and the per-configuration spread between runs beyond sampling noise (log units):
# what `make aa` measured on our 2-vCPU KVM guests, rounded outward: amd-epyc-vm on
# 2026-12-08 (3 pairs at the defaults: band 0.937-1.067, spread +-2.3%; data/amd-epyc-vm/
# aa.json) and intel-xeon-vm on 2026-12-01 (run-wide shifts 1.055, 0.936, 0.973).
DEFAULT_BAND = (1 / 1.07, 1.07)
DEFAULT_SPREAD = 0.025


def seed_for(*names: str) -> int:
    """A reproducible generator seed from SEED and names."""
    return SEED ^ zlib.crc32("\0".join(names).encode())


def method_lines() -> list[str]:
    """The bullets of this module's docstring (how a configuration and the whole run are
    compared), each on one line, for the reports' method sections."""
    body = __doc__.split("Comparing a configuration", 1)[1]
    return [" ".join(item.split("\n\n")[0].split()) for item in re.split(r"\n- ", body)[1:]]


# ------------------------------------------------------------ rank statistics

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


@functools.lru_cache(maxsize=None)
def _u_null_cdf(n1: int, n2: int) -> np.ndarray:
    """P(U <= u), u = 0 .. n1*n2, for U = #{(i, j): y_j > x_i} with n1 x's and n2 y's
    drawn from one continuous distribution. Recursion on the largest of the
    n1 + n2 values: a y with probability n2 / (n1 + n2), adding n1 to U, else an x:
    P[i, j](u) = j / (i+j) P[i, j-1](u - i) + i / (i+j) P[i-1, j](u)."""
    prev = [np.ones(1)] * (n2 + 1)          # i = 0: U = 0 for any j
    for i in range(1, n1 + 1):
        cur = [np.ones(1)]                   # j = 0: U = 0
        for j in range(1, n2 + 1):
            p = np.zeros(i * j + 1)
            p[:len(prev[j])] += i / (i + j) * prev[j]
            p[i:i + len(cur[j - 1])] += j / (i + j) * cur[j - 1]
            cur.append(p)
        prev = cur
    return np.cumsum(prev[n2])


def u_null_cdf(n1: int, n2: int) -> np.ndarray:
    """The exact null CDF of U (symmetric in n1, n2; computed once per pair of sizes)."""
    return _u_null_cdf(min(n1, n2), max(n1, n2))


def mw_rank(n1: int, n2: int, alpha: float = ALPHA) -> tuple[int, float]:
    """(k, coverage): the interval D_(k) .. D_(n1 n2 + 1 - k) of the sorted pairwise
    differences covers the shift with probability `coverage` >= 1 - alpha. k is the
    largest rank with P(U <= k - 1) <= alpha / 2, from the exact distribution up to
    n1 n2 = EXACT_MAX_PAIRS, else from the normal approximation (continuity
    corrected); k = 0 when no rank is small enough (no interval)."""
    m = n1 * n2
    if m == 0:
        return 0, 0.0
    if m <= EXACT_MAX_PAIRS:
        cdf = u_null_cdf(n1, n2)
        k = int(np.searchsorted(cdf, alpha / 2 * (1 + 1e-12), side="right"))
        return k, (1 - 2 * float(cdf[k - 1])) if k else 0.0
    sd = math.sqrt(m * (n1 + n2 + 1) / 12)
    z = -_normal_quantile(alpha / 2)
    k = max(int(math.floor(m / 2 + 0.5 - z * sd)), 0)
    return k, (1 - 2 * _normal_cdf((k - 0.5 - m / 2) / sd)) if k else 0.0


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (bisection on the CDF; good to 1e-12)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _normal_cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def mw_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann-Whitney p of x against y: exact (2 min(P(U <= u), P(U >= u)))
    when there are no ties and n1 n2 <= EXACT_MAX_PAIRS, else mann_whitney_u's
    normal approximation."""
    both = np.concatenate([x, y])
    if len(x) * len(y) > EXACT_MAX_PAIRS or len(np.unique(both)) < len(both):
        return mann_whitney_u(x, y)[1]
    u = int((y[None, :] > x[:, None]).sum())
    cdf = u_null_cdf(len(x), len(y))
    upper = 1.0 - (cdf[u - 1] if u else 0.0)
    return float(min(1.0, 2 * min(cdf[u], upper)))


@dataclass
class Shift:
    """Hodges-Lehmann shift of y against x (log units) and its exact interval."""

    estimate: float
    low: float | None      # None when no 95% interval exists (too few values)
    high: float | None
    coverage: float


def hodges_lehmann(x, y, alpha: float = ALPHA) -> Shift:
    """The median of the pairwise differences y_j - x_i, and the Mann-Whitney interval
    D_(k) .. D_(m + 1 - k) of the sorted differences (mw_rank)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = np.sort((y[None, :] - x[:, None]).ravel())
    k, coverage = mw_rank(len(x), len(y), alpha)
    if not k:
        return Shift(float(np.median(d)), None, None, 0.0)
    return Shift(float(np.median(d)), float(d[k - 1]), float(d[len(d) - k]), coverage)


# ------------------------------------------------------------ verdicts

def verdict(ratio: float, low: float, high: float, min_effect: float,
            sampling: tuple[float, float] | None = None) -> tuple[str, str]:
    """(verdict, why) for a ratio and its interval (the module's rule, either level).
    sampling: the interval "noisy" is judged on, where it is not (low, high) itself
    (the absolute verdict: its sampling interval, before the band widens it: the band
    is the machine's, not this comparison's noise)."""
    if low > 1 and ratio >= 1 + min_effect:
        return "slower", ""
    if high < 1 and ratio <= 1 / (1 + min_effect):
        return "faster", ""
    wl, wh = sampling if sampling else (low, high)
    if wh > 1 + 2 * min_effect or wl < 1 / (1 + 2 * min_effect):
        return "noisy", (f"the 95% interval {wl:.3g}-{wh:.3g} reaches beyond +-{2 * min_effect:.0%}: "
                         "too wide to tell")
    return "same", ""


def widen(half: float, spread: float) -> float:
    """A half-width (log units) widened by the machine's per-configuration spread between
    runs (a standard deviation in log units): sqrt(half^2 + (z_0.975 x spread)^2)."""
    return math.hypot(half, Z975 * spread)


def mde(shift: Shift, min_effect: float, spread: float = 0.0) -> float | None:
    """The smallest change (a fraction) found with 80% power: exp(h (z_.975 + z_.8) / z_.975) - 1,
    h the interval's half-width in log units (widened by spread), never below min_effect; None
    without an interval."""
    if shift.low is None:
        return None
    h = widen((shift.high - shift.low) / 2, spread)
    return max(math.expm1(h * (Z975 + Z80) / Z975), min_effect)


@dataclass
class Comparison:
    """One configuration compared between a base run and another run."""

    n_base: int
    n: int
    base_median: float | None = None
    median: float | None = None
    shift: Shift | None = None       # log(B / A): Hodges-Lehmann and exact interval
    p_value: float | None = None
    ratio: float | None = None       # absolute: exp(shift), interval widened by the band
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: str = "missing"
    why: str = ""
    ratio_vs_run: float | None = None  # relative to the run-wide shift g
    ci_low_vs_run: float | None = None
    ci_high_vs_run: float | None = None
    verdict_vs_run: str = "missing"
    mde_pct: float | None = None


def estimate(base_logs, other_logs) -> Comparison:
    """The sampling part of a comparison: sizes, shift with its interval, p (log values
    in; medians are left to the caller)."""
    a, b = np.asarray(base_logs, dtype=float), np.asarray(other_logs, dtype=float)
    c = Comparison(len(a), len(b))
    if len(a) and len(b):
        c.shift = hodges_lehmann(a, b)
        c.p_value = mw_p_value(a, b)
    return c


def judge(c: Comparison, g: float | None, band: tuple[float, float], min_effect: float = MIN_EFFECT,
          spread: float = 0.0) -> Comparison:
    """Fill both verdicts of an estimated comparison: absolute (interval widened by the
    band) and relative to the run-wide shift g (None: no relative verdict). spread: the
    machine's per-configuration spread between runs (log units, aa.json's config_spread_log;
    0: the exact sampling interval alone) widens both intervals' sides (widen())."""
    if c.shift is None:
        c.verdict = c.verdict_vs_run = "missing"
        c.why = "no ok value in " + ("either run" if c.n_base == c.n else
                                    "the base run" if c.n_base == 0 else "the other run")
        return c
    s = c.shift
    c.ratio = math.exp(s.estimate)
    if g is not None:
        c.ratio_vs_run = c.ratio / g
    if s.low is None or min(c.n_base, c.n) < MIN_N:
        c.verdict = c.verdict_vs_run = "noisy"
        c.why = f"fewer than {MIN_N} processes on a side" if min(c.n_base, c.n) < MIN_N else \
            f"no 95% interval from {c.n_base} and {c.n} processes"
        return c
    low = s.estimate - widen(s.estimate - s.low, spread)
    high = s.estimate + widen(s.high - s.estimate, spread)
    c.ci_low, c.ci_high = math.exp(low) * band[0], math.exp(high) * band[1]
    c.verdict, c.why = verdict(c.ratio, c.ci_low, c.ci_high, min_effect, (math.exp(s.low), math.exp(s.high)))
    c.mde_pct = 100 * mde(s, min_effect, spread)
    if g is not None:
        c.ci_low_vs_run, c.ci_high_vs_run = math.exp(low) / g, math.exp(high) / g
        c.verdict_vs_run = verdict(c.ratio_vs_run, c.ci_low_vs_run, c.ci_high_vs_run, min_effect,
                                   (math.exp(s.low) / g, math.exp(s.high) / g))[0]
    return c


def compare(base, other, min_effect: float = MIN_EFFECT, band: tuple[float, float] = (1.0, 1.0),
            g: float | None = 1.0) -> Comparison:
    """Compare two sets of process-level values (ns, > 0) of one configuration: estimate
    on their logs, then judge (band (1, 1): the sampling interval alone)."""
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    c = estimate(np.log(a), np.log(b))
    if len(a) and len(b):
        c.base_median, c.median = float(np.median(a)), float(np.median(b))
    return judge(c, g, band, min_effect)


def geomean(values) -> float | None:
    v = [x for x in values if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


# ------------------------------------------------------------ run-wide shift

@dataclass
class RunShift:
    """The run-wide shift g of B against A, its 95% interval, judged against the band."""

    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    band_low: float
    band_high: float
    band_source: str
    configurations: int = 0

    @property
    def verdict(self) -> str:
        """slower: interval above the band; faster: below it; else within_band."""
        if self.ratio is None:
            return "missing"
        if self.ci_low > self.band_high:
            return "slower"
        if self.ci_high < self.band_low:
            return "faster"
        return "within_band"

    def scaled(self, factor: float) -> "RunShift":
        """The shift had every value of B been multiplied by factor (the estimate and every
        resample move by log(factor) exactly)."""
        return RunShift(self.ratio * factor, self.ci_low * factor, self.ci_high * factor, self.band_low,
                        self.band_high, self.band_source, self.configurations)

    def summary(self) -> dict:
        """The compare_summary.json fields."""
        return {"ratio": self.ratio, "ci_low": self.ci_low, "ci_high": self.ci_high, "band_low": self.band_low,
                "band_high": self.band_high, "verdict": self.verdict, "band_source": self.band_source}


def _multiplicities(draws: np.ndarray, n: int) -> np.ndarray:
    """(resamples x n): how often each of n values was drawn in each resample (draws: resamples x n indices)."""
    rows = np.arange(draws.shape[0])[:, None] * n
    return np.bincount((rows + draws).ravel(), minlength=draws.shape[0] * n).reshape(draws.shape[0], n)


def _weighted_hl(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """The Hodges-Lehmann shift of every resample given as multiplicities wx (resamples x len(x)) and
    wy of the values x and y: a resample's pairwise differences are the original ones, y_j - x_i
    counted wx_i wy_j times, so its median is a weighted median of the sorted original differences
    (NaN values carry no weight; NaN where a resample has no difference)."""
    i, j = np.nonzero(~np.isnan(x)[:, None] & ~np.isnan(y)[None, :])
    if not len(i):
        return np.full(wx.shape[0], np.nan)
    d = y[j] - x[i]
    order = np.argsort(d, kind="stable")
    d, i, j = d[order], i[order], j[order]
    cum = np.cumsum(wx[:, i] * wy[:, j], axis=1)
    total = cum[:, -1]
    lower = (cum >= ((total + 1) // 2)[:, None]).argmax(axis=1)  # the middle one or two of `total`
    upper = (cum >= (total // 2 + 1)[:, None]).argmax(axis=1)
    return np.where(total > 0, (d[lower] + d[upper]) / 2, np.nan)


def _resampled_shifts(a: np.ndarray, b: np.ndarray, rng, resamples: int) -> np.ndarray:
    """Hodges-Lehmann shifts (configs x resamples) of one (scenario, strategy) pair with its
    processes resampled: a, b are (configs x repetitions) log values, NaN where a
    configuration has no value for a repetition; each resample draws repetitions (columns)
    with replacement, the same for every configuration."""
    wa = _multiplicities(rng.integers(0, a.shape[1], (resamples, a.shape[1])), a.shape[1])
    wb = _multiplicities(rng.integers(0, b.shape[1], (resamples, b.shape[1])), b.shape[1])
    return np.array([_weighted_hl(a[c], b[c], wa, wb) for c in range(a.shape[0])]).reshape(a.shape[0], resamples)


def clustered_bootstrap(groups: list, resamples: int = RUN_RESAMPLES, seed: int | None = None) -> np.ndarray:
    """Resampled log run-wide shifts, one per resample: the median over every configuration of its
    resampled Hodges-Lehmann shift (_resampled_shifts). groups: one (A, B) pair of (configs x
    repetitions) log-value matrices per (scenario, strategy) pair, NaN where a value is missing."""
    rng = np.random.default_rng(seed_for("run shift") if seed is None else seed)
    shifts = np.concatenate([_resampled_shifts(a, b, rng, resamples) for a, b in groups], axis=0)
    return np.nanmedian(shifts, axis=0)


def run_shift(shifts, groups: list, band: tuple[float, float], band_source: str,
              resamples: int = RUN_RESAMPLES) -> RunShift:
    """g = exp(median of the configurations' shifts, log units) with the clustered bootstrap's
    2.5th-97.5th percentile interval; None everywhere when no configuration has a shift."""
    shifts = [s for s in shifts if s is not None]
    if not shifts:
        return RunShift(None, None, None, band[0], band[1], band_source)
    boot = clustered_bootstrap(groups, resamples) if resamples else np.array([np.median(shifts)])
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return RunShift(math.exp(float(np.median(shifts))), math.exp(float(lo)), math.exp(float(hi)), band[0], band[1],
                    band_source, len(shifts))


# ------------------------------------------------------------ the band, from A/A pairs

def band_rule(log_shifts) -> tuple[float, float]:
    """The run-to-run band from the run-wide shifts of A/A pairs (log units): exp(-+w) with
    w = max(2 x RMS of the log shifts, the largest |log shift|)."""
    g = np.asarray(log_shifts, dtype=float)
    w = max(2 * math.sqrt(float(np.mean(g ** 2))), float(np.max(np.abs(g))))
    return math.exp(-w), math.exp(w)


def between_run_spread(residuals, half_widths) -> float:
    """Per-configuration spread between runs beyond sampling noise (log units):
    sqrt(max(0, mean(r^2) - mean(se^2))), r = log(ratio / g) of each configuration in each
    pair, se = its exact interval's half-width / z_0.975."""
    r, h = np.asarray(residuals, dtype=float), np.asarray(half_widths, dtype=float)
    return math.sqrt(max(0.0, float(np.mean(r ** 2) - np.mean((h / Z975) ** 2))))


# ------------------------------------------------------------ reference-loop covariate

def pooled_slope(ys: list, xs: list) -> float:
    """Least-squares slope of y on x pooled over groups, each group centred on its own
    means (the within-group slope); 0 when x does not vary."""
    sxy = sxx = 0.0
    for y, x in zip(ys, xs):
        if len(x) < 2:
            continue
        xc, yc = x - x.mean(), y - y.mean()
        sxy += float(xc @ yc)
        sxx += float(xc @ xc)
    return sxy / sxx if sxx > 0 else 0.0


# ------------------------------------------------------------ drift inside one run

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
