"""The ℓp steepest-descent step in closed form, its unscaled (Stacey) form, and dual norms.

For p ≥ 2 and q = p/(p−1) (the dual exponent), the ℓp-regularised linear model

    Δ* = argmin_Δ ⟨g, Δ⟩ + L‖Δ‖_p²

has ‖Δ*‖_p = ‖g‖_q/(2L) and points along −sign(g)|g|^{q−1} = −sign(g)|g|^{1/(p−1)}, so

    Δ* = −(1/(2L)) · ‖g‖_q^{(p−2)/(p−1)} · sign(g) ⊙ |g|^{1/(p−1)}        (spec §2.1 step 3)

with value −‖g‖_q²/(4L). Dropping the global factor ‖g‖_q^{(p−2)/(p−1)} gives Stacey's
*unscaled* direction s(c) = sign(c)|c|^{1/(p−1)} = −argmin_Δ ⟨c, Δ⟩ + (1/p)‖Δ‖_p^p; Stacey
evaluates it as s_ε(c) = c / (|c|^{(p−2)/(p−1)} + ε) (the paper's ε placement, spec §2.2).
"""

from __future__ import annotations

import numpy as np


def dual_exponent(p: float) -> float:
    """q with 1/p + 1/q = 1 (q = 1 for p = ∞)."""
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    if np.isinf(p):
        return 1.0
    if p == 1:
        return np.inf
    return p / (p - 1.0)


def lp_norm(x: np.ndarray, p: float) -> float:
    """‖x‖_p, with p = ∞ allowed; scaled by the max entry so |x|^p cannot overflow for large p."""
    x = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    top = x.max(initial=0.0)
    if top == 0.0 or np.isinf(p):
        return float(top)
    return float(top * np.sum((x / top) ** p) ** (1.0 / p))


def dual_norm(g: np.ndarray, p: float) -> float:
    """‖g‖_q, the norm dual to ‖·‖_p."""
    return lp_norm(g, dual_exponent(p))


def lp_steepest_step(g: np.ndarray, L: float, p: float) -> np.ndarray:
    """Δ* = argmin_Δ ⟨g, Δ⟩ + L‖Δ‖_p² (closed form above); p = 2 gives −g/(2L)."""
    if p < 2:
        raise ValueError(f"the ℓp step here is for p >= 2, got p={p}")
    if L <= 0:
        raise ValueError(f"L must be > 0, got {L}")
    g = np.asarray(g, dtype=np.float64)
    gq = dual_norm(g, p)
    if gq == 0.0:
        return np.zeros_like(g)
    if np.isinf(p):  # Δ* = −‖g‖₁/(2L) · sign(g)
        return -(gq / (2.0 * L)) * np.sign(g)
    # Normalise by ‖g‖_q before the fractional power so that the result is scale-stable:
    # ‖g‖_q^{(p−2)/(p−1)} |g|^{1/(p−1)} = ‖g‖_q · |g/‖g‖_q|^{1/(p−1)}.
    return -(gq / (2.0 * L)) * np.sign(g) * np.abs(g / gq) ** (1.0 / (p - 1.0))


def unscaled_direction(c: np.ndarray, p: float, eps: float = 0.0) -> np.ndarray:
    """Stacey's s_ε(c)_i = c_i / (|c_i|^{(p−2)/(p−1)} + ε); ε = 0 gives sign(c)|c|^{1/(p−1)}.

    −s_0(c) = argmin_Δ ⟨c, Δ⟩ + (1/p)‖Δ‖_p^p (coordinate-wise: c_i + |Δ_i|^{p−1}sign(Δ_i) = 0).
    """
    if p < 2:
        raise ValueError(f"Stacey's direction is for p >= 2, got p={p}")
    c = np.asarray(c, dtype=np.float64)
    if eps == 0.0:
        return np.sign(c) * np.abs(c) ** (1.0 / (p - 1.0))
    return c / (np.abs(c) ** ((p - 2.0) / (p - 1.0)) + eps)
