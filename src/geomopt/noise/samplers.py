"""Noise matrices for the checks: Gaussian, Student-t, and the Cauchy-contaminated model of
spec §2.1, E_ij ~ (1−ε)·N(0, τ²) + ε·Cauchy(0, γ). All draw from an explicit generator."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def gaussian(shape, scale: float = 1.0, generator: torch.Generator | None = None,
             dtype=torch.float32) -> Tensor:
    return scale * torch.randn(shape, generator=generator, dtype=dtype)


def cauchy(shape, scale: float = 1.0, generator: torch.Generator | None = None, dtype=torch.float32) -> Tensor:
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return (scale * torch.tan(math.pi * (u - 0.5))).to(dtype)


def student_t(shape, df: int = 3, scale: float = 1.0, generator: torch.Generator | None = None,
              dtype=torch.float32) -> Tensor:
    """Student-t with integer ``df`` (tail index α = df): Z / √(χ²_df / df)."""
    if not (isinstance(df, int) and df >= 1):
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    z = torch.randn(shape, generator=generator, dtype=torch.float64)
    chi2 = torch.randn((df, *shape), generator=generator, dtype=torch.float64).square().sum(0)
    return (scale * z / torch.sqrt(chi2 / df)).to(dtype)


def cauchy_contaminated(shape, tau: float = 1.0, gamma: float = 1.0, eps: float = 0.01,
                        generator: torch.Generator | None = None, dtype=torch.float32) -> Tensor:
    """(1−ε)·N(0, τ²) + ε·Cauchy(0, γ), entry-wise independent (spec §2.1)."""
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"contamination rate eps must be in [0, 1], got {eps!r}")
    out = gaussian(shape, tau, generator, dtype)
    mask = torch.rand(shape, generator=generator) < eps
    return torch.where(mask, cauchy(shape, gamma, generator, dtype), out)
