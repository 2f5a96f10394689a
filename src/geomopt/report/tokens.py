"""Tokens-to-target: how many training tokens a run needs to first reach a validation loss.

T = tokens at the first evaluation whose val loss ≤ L*, refined by interpolating
log-loss linearly in tokens between that evaluation and the previous one (an
eval grid of 2.5% granularity cannot resolve a 2% effect otherwise). Savings,
pairing and verdicts live in :mod:`geomopt.report.verdict`; here: T, and the
descriptive per-arm mean interval of the report tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


def tokens_to_target(tokens, losses, target: float) -> float:
    """First (interpolated) token count at which ``losses`` reach ``target``; inf if never."""
    t = np.asarray(tokens, dtype=float)
    y = np.asarray(losses, dtype=float)
    ok = np.isfinite(y)
    t, y = t[ok], y[ok]
    hit = np.nonzero(y <= target)[0]
    if hit.size == 0:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(t[0])
    # log-loss is close to linear in tokens over one eval interval
    y0, y1 = math.log(y[i - 1]), math.log(y[i])
    frac = (y0 - math.log(target)) / (y0 - y1)
    return float(t[i - 1] + frac * (t[i] - t[i - 1]))


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int
    failed: int = 0  # non-finite values among the n (a failed run is counted, never dropped)

    def fmt(self, pct: bool = True, digits: int = 1) -> str:
        k = 100.0 if pct else 1.0
        unit = "%" if pct else ""
        f = f"{{:+.{digits}f}}"
        if self.n == 0:
            return "n/a"
        if self.failed:
            return f"— ({self.failed}/{self.n} runs failed)"
        if self.n < 2 or not math.isfinite(self.low):
            return f"{f.format(k * self.mean)}{unit} (n={self.n})"
        return (f"{f.format(k * self.mean)}{unit} [{f.format(k * self.low)}, {f.format(k * self.high)}] "
                f"(n={self.n})")


def mean_interval(values, level: float = 0.95) -> Interval:
    """Mean and Student-t interval of one arm's values (descriptive; comparisons are paired in
    geomopt.report.verdict). A non-finite value is a failed run: it is counted (``failed``) and makes
    the mean undefined (NaN), never silently dropped. Fewer than two values: NaN bounds."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    bad = int((~np.isfinite(v)).sum())
    if bad:
        return Interval(math.nan, math.nan, math.nan, int(v.size), bad)
    m = float(v.mean())
    if v.size < 2:
        return Interval(m, math.nan, math.nan, int(v.size))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(m, m - half, m + half, int(v.size))
