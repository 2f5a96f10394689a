"""Tokens-to-target: how many training tokens a run needs to first reach a validation loss.

T = tokens at the first evaluation whose val loss ≤ L*, refined by interpolating
log-loss linearly in tokens between that evaluation and the previous one (an
eval grid of 2.5% granularity cannot resolve a 2% effect otherwise). The saving
of a method over a baseline is 1 − T_method / T_baseline; over seeds we report
the mean and a Student-t 95% confidence interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
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

    def fmt(self, pct: bool = True, digits: int = 1) -> str:
        k = 100.0 if pct else 1.0
        unit = "%" if pct else ""
        f = f"{{:+.{digits}f}}"
        if self.n == 0:
            return "n/a"
        if self.n < 2 or not math.isfinite(self.low):
            return f"{f.format(k * self.mean)}{unit} (n={self.n})"
        return (f"{f.format(k * self.mean)}{unit} [{f.format(k * self.low)}, {f.format(k * self.high)}] "
                f"(n={self.n})")


def mean_interval(values, level: float = 0.95) -> Interval:
    """Mean and Student-t interval; with fewer than two finite values the interval is NaN."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    m = float(v.mean())
    if v.size < 2:
        return Interval(m, math.nan, math.nan, int(v.size))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(m, m - half, m + half, int(v.size))


def savings_table(evals: pd.DataFrame, baseline: str, target: float | None = None,
                  method_col: str = "optimizer") -> tuple[float, pd.DataFrame]:
    """Per-method tokens-to-target and saving against ``baseline``.

    ``evals`` has one row per evaluation with columns ``method_col``, ``seed``,
    ``tokens``, ``val_loss``. The target defaults to the baseline's final val loss
    (mean over its seeds). Savings pair seeds where the baseline has the same seed,
    else use the baseline's mean T. Returns (target, table).
    """
    evals = evals.dropna(subset=["val_loss"]).sort_values("tokens")
    base = evals[evals[method_col] == baseline]
    if base.empty:
        raise ValueError(f"baseline {baseline!r} has no evaluations; methods present: "
                         f"{sorted(evals[method_col].unique())}")
    if target is None:
        target = float(base.groupby("seed")["val_loss"].last().mean())
    T = {(m, s): tokens_to_target(g["tokens"], g["val_loss"], target)
         for (m, s), g in evals.groupby([method_col, "seed"])}
    base_T = {s: t for (m, s), t in T.items() if m == baseline}
    base_mean = float(np.mean([t for t in base_T.values() if math.isfinite(t)])) if base_T else math.nan
    rows = []
    for m in sorted(evals[method_col].unique()):
        seeds = sorted(s for (mm, s) in T if mm == m)
        ts = [T[(m, s)] for s in seeds]
        sav = [1 - T[(m, s)] / base_T.get(s, base_mean) for s in seeds]
        final = evals[evals[method_col] == m].groupby("seed")["val_loss"].last()
        rows.append({method_col: m, "seeds": len(seeds), "reached": sum(math.isfinite(t) for t in ts),
                     "tokens_to_target": float(np.mean(ts)) if all(map(math.isfinite, ts)) else math.inf,
                     "saving": mean_interval(sav), "final_val_loss": mean_interval(final.tolist())})
    return target, pd.DataFrame(rows)
