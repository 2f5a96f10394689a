"""Convex test problems with known ℓp and ℓ2 smoothness constants and a known optimum (spec §3).

- Diagonal quadratic f = ½Σ h_i (x_i − x*_i)²: L_p = ‖h‖_{p/(p−2)} exactly (Hölder with
  1/q = 1/p + 1/r, r = p/(p−2)), L₂ = max_i h_i exactly.
- Smoothed ℓ∞ regression f = μ·log Σ_i (e^{r_i/μ} + e^{−r_i/μ}), r = Ax − b: its Hessian is
  ⪯ (1/μ)Σ_j π_j ã_j ã_jᵀ over the 2n rows ±a_i (π a softmax), so L_p = max_i‖a_i‖_q²/μ and
  L₂ = max_i‖a_i‖₂²/μ are valid constants (upper bounds). If Ax = b is solvable, f* = μ·log(2n)
  (each pair e^{r/μ} + e^{−r/μ} ≥ 2, equality iff r = 0) and the minimiser nearest x₀ is
  x₀ + A⁺(b − Ax₀) (= A⁺b for x₀ = 0).

ℓp regression ((1/p)‖Ax − b‖_p^p) is not here: for p > 2 its Hessian grows with the residual,
so it has no global smoothness constant to test a smooth-case bound against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp, softmax

from geomopt.lp.steepest import dual_exponent, lp_norm


@dataclass
class ConvexProblem:
    name: str
    p: float
    f: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    x0: np.ndarray
    x_star: np.ndarray
    f_star: float
    L_p: float  # smoothness in ‖·‖_p (gradients measured in ‖·‖_q)
    L_2: float  # smoothness in ‖·‖₂

    @property
    def d(self) -> int:
        return self.x0.size

    @property
    def R2(self) -> float:
        """‖x₀ − x*‖₂."""
        return float(np.linalg.norm(self.x0 - self.x_star))


def diagonal_quadratic(h: np.ndarray, x_star: np.ndarray, x0: np.ndarray, p: float,
                       name: str = "diagonal quadratic") -> ConvexProblem:
    h, x_star, x0 = (np.asarray(a, dtype=np.float64) for a in (h, x_star, x0))
    if np.any(h < 0) or p <= 2:
        raise ValueError(f"need h >= 0 and p > 2, got min h={h.min()}, p={p}")

    def f(x):
        e = x - x_star
        return 0.5 * float(np.dot(h * e, e))

    def grad(x):
        return h * (x - x_star)

    L_p = lp_norm(h, p / (p - 2.0)) if np.isfinite(p) else float(h.sum())
    return ConvexProblem(name, p, f, grad, x0, x_star, 0.0, L_p, float(h.max()))


def smoothed_linf_regression(A: np.ndarray, b: np.ndarray, mu: float, x0: np.ndarray, p: float,
                             name: str = "smoothed ℓ∞ regression") -> ConvexProblem:
    A, b, x0 = (np.asarray(a, dtype=np.float64) for a in (A, b, x0))
    if mu <= 0 or p <= 2:
        raise ValueError(f"need mu > 0 and p > 2, got mu={mu}, p={p}")
    x_star = x0 + np.linalg.lstsq(A, b - A @ x0, rcond=None)[0]
    if np.linalg.norm(A @ x_star - b) > 1e-8 * max(1.0, np.linalg.norm(b)):
        raise ValueError("Ax = b has no solution: f* = μ·log(2n) needs a consistent system (take b = A x_true)")
    n = A.shape[0]

    def f(x):
        z = (A @ x - b) / mu
        return mu * float(logsumexp(np.concatenate([z, -z])))

    def grad(x):
        z = (A @ x - b) / mu
        pi = softmax(np.concatenate([z, -z]))
        return A.T @ (pi[:n] - pi[n:])

    q = dual_exponent(p)
    L_p = max(lp_norm(row, q) ** 2 for row in A) / mu
    L_2 = float(np.max(np.sum(A * A, axis=1))) / mu
    return ConvexProblem(name, p, f, grad, x0, x_star, mu * float(np.log(2 * n)), L_p, L_2)
