"""Tail-index estimators (spec §3.6): α̂ ≈ 2 for Gaussian noise, ≈ 1 for Cauchy.

* Hill: α̂_H(k) = [(1/k) Σ_{i≤k} log(x₍ᵢ₎ / x₍ₖ₊₁₎)]⁻¹ on the order statistics of |x|,
  read on the plateau k ∈ [0.5%, 5%] of n (median of the curve there).
* Simsekli et al. (2019), for symmetric α-stable data: with K = K₁K₂ and block sums
  Y_i = Σ_{j≤K₁} X_{(i−1)K₁+j},  1/α̂ = (1/log K₁)[(1/K₂) Σ log|Y_i| − (1/K) Σ log|X_i|].
  Not clipped to (0, 2]: an estimate above 2 is reported as such. Note that the Hill estimator of a Gaussian sample has no true
  power tail to find and reads the local slope of the Gaussian tail (large α̂, growing with n);
  Simsekli's estimator reads α = 2 there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _flat64(x) -> Tensor:
    return torch.as_tensor(x).detach().reshape(-1).to(torch.float64)


def hill_curve(x, k_max: int | None = None) -> Tensor:
    """α̂_H(k) for k = 1..k_max (default n−1)."""
    a = torch.sort(_flat64(x).abs(), descending=True).values
    a = a[a > 0]
    n = a.numel()
    k_max = n - 1 if k_max is None else min(k_max, n - 1)
    logs = a.log()
    k = torch.arange(1, k_max + 1, dtype=torch.float64)
    mean_top = torch.cumsum(logs[:k_max], 0) / k
    return 1.0 / (mean_top - logs[1 : k_max + 1])


def hill_alpha(x, frac: tuple[float, float] = (0.005, 0.05)) -> float:
    """Median of the Hill curve over k ∈ [frac[0]·n, frac[1]·n]."""
    n = _flat64(x).numel()
    lo, hi = max(1, int(frac[0] * n)), max(2, int(frac[1] * n))
    return float(hill_curve(x, hi)[lo - 1 :].median())


def simsekli_alpha(x, k1: int | None = None) -> float:
    """Simsekli's estimator with K₁ = ⌊√K⌋ by default (x centred first)."""
    v = _flat64(x)
    v = v - v.median()
    k = v.numel()
    k1 = int(math.isqrt(k)) if k1 is None else k1
    if k1 < 2 or k // k1 < 2:
        raise ValueError(f"need K₁ >= 2 and K₂ >= 2, got K = {k}, K₁ = {k1}")
    k2 = k // k1
    v = v[: k1 * k2]
    v = v[v != 0]
    k2 = v.numel() // k1
    v = v[: k1 * k2]
    y = v.reshape(k2, k1).sum(1)
    inv_alpha = float((y.abs().log().mean() - v.abs().log().mean()) / math.log(k1))
    return 1.0 / inv_alpha if inv_alpha > 0 else math.inf
