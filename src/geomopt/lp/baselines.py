"""Baselines for HASD (spec §3): unaccelerated ℓp steepest descent and Nesterov's AGD with a
chosen Euclidean smoothness constant (1/L_p, which the theory compares against, or the true 1/L₂).

Not implemented: the Nemirovskii–Nesterov (1985) ℓp method with rate O(L R_p²/T^{(p+2)/p}).
The spec names it and its rate but gives no iteration, and we do not invent one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from geomopt.lp.steepest import lp_steepest_step


@dataclass
class Trace:
    """f(x_T) at the requested iterations; each baseline costs one gradient per iteration."""

    x: np.ndarray
    checkpoints: list[int] = field(default_factory=list)
    f_values: list[float] = field(default_factory=list)

    @property
    def grad_calls(self) -> list[int]:
        return list(self.checkpoints)


def _record(trace: Trace, t: int, want: set[int], f, x) -> None:
    if t in want and f is not None:
        trace.checkpoints.append(t)
        trace.f_values.append(float(f(x)))


def lp_steepest_descent(grad: Callable, x0: np.ndarray, L: float, p: float, T: int,
                        f: Callable | None = None, checkpoints: list[int] | None = None) -> Trace:
    """x ← x + argmin_Δ ⟨∇f(x), Δ⟩ + (L/2)‖Δ‖_p²: the minimiser of the ℓp descent-lemma bound
    f(x+Δ) ≤ f(x) + ⟨∇f(x), Δ⟩ + (L/2)‖Δ‖_p² (Kelner et al. 2014 for p = ∞); rate O(L R_p²/T)."""
    x = np.array(x0, dtype=np.float64)
    want, trace = set(checkpoints or []), Trace(x=x)
    _record(trace, 0, want, f, x)
    for t in range(1, T + 1):
        x = x + lp_steepest_step(grad(x), L / 2.0, p)
        _record(trace, t, want, f, x)
    trace.x = x
    return trace


def agd(grad: Callable, x0: np.ndarray, L: float, T: int, f: Callable | None = None,
        checkpoints: list[int] | None = None) -> Trace:
    """Nesterov's accelerated gradient for convex L-smooth f (FISTA form):
    x_{k+1} = y_k − ∇f(y_k)/L, t_{k+1} = (1 + √(1 + 4t_k²))/2, y_{k+1} = x_{k+1} + (t_k−1)/t_{k+1}·(x_{k+1} − x_k);
    f(x_k) − f* ≤ 2L‖x₀ − x*‖₂²/(k+1)²."""
    x = np.array(x0, dtype=np.float64)
    y, tk = x.copy(), 1.0
    want, trace = set(checkpoints or []), Trace(x=x)
    _record(trace, 0, want, f, x)
    for t in range(1, T + 1):
        x_next = y - grad(y) / L
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * tk * tk))
        y = x_next + ((tk - 1.0) / t_next) * (x_next - x)
        x, tk = x_next, t_next
        _record(trace, t, want, f, x)
    trace.x = x
    return trace
