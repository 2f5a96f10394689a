"""HASD — accelerated ℓp steepest descent (Bai & Bullins, arXiv 2409.19200).

Reconstructed: the paper's text is not available; the iteration below follows a
third-party (Lean 4) formalization of its main theorem, as written in spec §2.1. The
procedure that finds ρ_t (bisection on log ρ, warm-started at the previous ρ) is ours.

f is convex and L-smooth in ‖·‖_p (p ≥ 2, q = p/(p−1)). With A₀ = 0 and v₀ = x₀, step t:

    a       = [1 + √(1 + 144·L·ρ_t·A_t)] / (36·L·ρ_t)    # root of a² = (A_t + A_{t+1})/(18Lρ_t)
    y_t     = (1 − a/A_{t+1})·x_t + (a/A_{t+1})·v_t        # A_{t+1} = A_t + a
    x_{t+1} = y_t + argmin_Δ ⟨∇f(y_t), Δ⟩ + L‖Δ‖_p²      # ℓp steepest step, closed form
    accept ρ_t iff ½·r_t ≤ ρ_t ≤ 2·r_t,  r_t = ‖∇f(x_{t+1})‖₂² / ‖∇f(x_{t+1})‖_q²
    v_{t+1} = v_t − a·∇f(x_{t+1})                          # Euclidean dual averaging

Guarantee: f(x_T) − f* ≤ ‖x₀ − x*‖₂²/(2A_T) with √A_T ≥ G_T·T/(18√L), where
G_T = (1/T)Σ_t ‖∇f(x_{t+1})‖_q/‖∇f(x_{t+1})‖₂ ∈ [1, d^{1/2−1/p}].

ρ_t is a fixed point (r_t depends on x_{t+1}, which depends on ρ_t). r_t ∈ [d^{−(1−2/p)}, 1],
so h(ρ) = log(ρ/r(ρ)) is ≤ −log 2 at ρ = ½d^{−(1−2/p)} and ≥ log 2 at ρ = 2: bisection on
log ρ over that bracket finds the band if r(·) is continuous (spec §2.1, an open question).
Every probe costs two gradients, at y_t and at x_{t+1}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from geomopt.lp.steepest import dual_norm, lp_steepest_step

LOG2 = math.log(2.0)


@dataclass
class HASDTrace:
    """Per-step record of a HASD run (index t = 0..T−1 is the step that makes x_{t+1})."""

    x: np.ndarray  # x_T
    A: np.ndarray  # A_0..A_T
    rho: np.ndarray  # accepted ρ_t
    r: np.ndarray  # r_t at the accepted probe
    gain: np.ndarray  # ‖∇f(x_{t+1})‖_q / ‖∇f(x_{t+1})‖₂ = 1/√r_t
    probes: np.ndarray  # ρ probes spent on step t
    in_band: np.ndarray  # whether the accepted ρ_t met ½r ≤ ρ ≤ 2r
    grad_calls: np.ndarray  # cumulative gradient evaluations after step t
    checkpoints: list[int] = field(default_factory=list)  # iterations T at which f was evaluated
    f_values: list[float] = field(default_factory=list)  # f(x_T) at those iterations

    @property
    def G(self) -> np.ndarray:
        """G_T for T = 1..len: the running mean of the per-step gains."""
        return np.cumsum(self.gain) / np.arange(1, len(self.gain) + 1)


def interpolation_coefficient(A: float, L: float, rho: float) -> float:
    """a > 0 solving a² = (2A + a)/(18Lρ) (step 1)."""
    return (1.0 + math.sqrt(1.0 + 144.0 * L * rho * A)) / (36.0 * L * rho)


def rho_bracket(d: int, p: float) -> tuple[float, float]:
    """[½·d^{−(1−2/p)}, 2]: r_t lies in [d^{−(1−2/p)}, 1], so the band ½r ≤ ρ ≤ 2r lies inside."""
    return 0.5 * d ** (-(1.0 - 2.0 / p)), 2.0


def _ratio_r(g: np.ndarray, p: float) -> float:
    """r = ‖g‖₂²/‖g‖_q² (1 for a zero gradient: any ρ in the band is then harmless)."""
    gq = dual_norm(g, p)
    if gq == 0.0:
        return 1.0
    return float(np.dot(g, g)) / gq**2


def bisect_log_rho(probe: Callable[[float], tuple[float, object]], log_lo: float, log_hi: float,
                   log_start: float, max_probes: int) -> tuple[float, object, int, bool]:
    """Find log ρ with |h(ρ)| ≤ log 2, h = log(ρ/r(ρ)), by bisection on [log_lo, log_hi].

    ``probe(log_rho) -> (h, payload)``. The first probe is at ``log_start``; h > log 2 (ρ too large)
    moves the upper end down, h < −log 2 the lower end up. Returns (log ρ, payload, probes spent,
    in band); without a probe in the band after ``max_probes``, the one with the smallest |h|.
    """
    lo, hi, log_rho = log_lo, log_hi, min(max(log_start, log_lo), log_hi)
    best = None  # (|h|, log_rho, payload)
    for k in range(1, max_probes + 1):
        h, payload = probe(log_rho)
        if best is None or abs(h) < best[0]:
            best = (abs(h), log_rho, payload)
        if abs(h) <= LOG2:
            break
        if h > 0:
            hi = log_rho
        else:
            lo = log_rho
        log_rho = 0.5 * (lo + hi)
    return best[1], best[2], k, best[0] <= LOG2 + 1e-12


def hasd(grad: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, L: float, p: float, T: int,
         f: Callable[[np.ndarray], float] | None = None, checkpoints: list[int] | None = None,
         warm_start: bool = True, max_probes: int = 60) -> HASDTrace:
    """Run T steps of HASD from x0 on an ℓp-L-smooth convex f.

    ``checkpoints``: iterations at which f(x_T) is recorded (needs ``f``). ``warm_start``: the
    first probe of step t is ρ_{t−1} (inside the bracket) instead of the bracket's midpoint; the
    bisection is otherwise unchanged. If no probe lands in the band after ``max_probes``, the probe
    with the smallest |log(ρ/r)| is kept and the step is marked ``in_band = False``.
    """
    if p < 2 or L <= 0 or T < 1:
        raise ValueError(f"HASD needs p >= 2, L > 0, T >= 1; got p={p}, L={L}, T={T}")
    x = np.array(x0, dtype=np.float64)
    v = x.copy()
    log_lo, log_hi = (math.log(b) for b in rho_bracket(x.size, p))
    want = set(checkpoints or [])
    A = np.zeros(T + 1)
    rho_hist, r_hist = np.zeros(T), np.zeros(T)
    probes_hist, calls_hist = np.zeros(T, dtype=np.int64), np.zeros(T, dtype=np.int64)
    band_hist = np.zeros(T, dtype=bool)
    trace_cp, trace_f = [], []
    if 0 in want and f is not None:
        trace_cp.append(0)
        trace_f.append(float(f(x)))
    log_rho_prev = 0.5 * (log_lo + log_hi)

    for t in range(T):
        def probe(log_rho: float):
            """Steps 1–3 for this ρ, then h = log(ρ/r_t) (step 4); two gradient calls."""
            a = interpolation_coefficient(A[t], L, math.exp(log_rho))
            theta = a / (A[t] + a)
            y = (1.0 - theta) * x + theta * v
            x_next = y + lp_steepest_step(grad(y), L, p)
            g_next = grad(x_next)
            r = _ratio_r(g_next, p)
            return log_rho - math.log(r), (a, x_next, g_next, r)

        log_start = log_rho_prev if warm_start else 0.5 * (log_lo + log_hi)
        log_rho, (a, x_next, g_next, r), probes, in_band = bisect_log_rho(probe, log_lo, log_hi, log_start,
                                                                          max_probes)
        A[t + 1] = A[t] + a
        x = x_next
        v = v - a * g_next  # step 5
        rho_hist[t], r_hist[t], probes_hist[t], band_hist[t] = math.exp(log_rho), r, probes, in_band
        calls_hist[t] = 2 * probes + (calls_hist[t - 1] if t else 0)
        log_rho_prev = log_rho
        if (t + 1) in want and f is not None:
            trace_cp.append(t + 1)
            trace_f.append(float(f(x)))

    return HASDTrace(x=x, A=A, rho=rho_hist, r=r_hist, gain=1.0 / np.sqrt(r_hist), probes=probes_hist,
                     in_band=band_hist, grad_calls=calls_hist, checkpoints=trace_cp, f_values=trace_f)
