"""The Bayes-optimal entry-wise estimator of spec §2.3 (numpy/scipy, float64; used by checks).

**Reconstructed (paper text not available).** y = s + n, s ~ N(0, σ_s²),
n ~ (1−ε)N(0, τ²) + ε Cauchy(0, γ). Tweedie's identity for a Gaussian prior,
E[s | y] = −σ_s² d/dy log p_Y(y), gives in closed form (v = σ_s² + τ², κ = σ_s²/v,
z = (y + iγ)/(σ_s√2), w the Faddeeva function, V the Voigt density Re w(z)/(σ_s√(2π))):

    E[s|y] = r(y)·κy + (1 − r(y))·√2 σ_s Re[z w(z)] / Re[w(z)],
    r(y) = (1−ε)N(y; 0, v) / [(1−ε)N(y; 0, v) + ε V(y)]   (evaluated from log-densities).

``posterior_mean_quad`` is the definition ∫ s φ(s) f_n(y−s) ds / ∫ φ(s) f_n(y−s) ds by
quadrature, the check's reference; ``gate_threshold`` solves r(t*) = ½.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special


def _z(y, sigma_s, gamma):
    return (np.asarray(y, dtype=np.float64) + 1j * gamma) / (sigma_s * math.sqrt(2.0))


def voigt_log_density(y, sigma_s: float, gamma: float) -> np.ndarray:
    """log V(y): density of N(0, σ_s²) + Cauchy(0, γ) (Re w > 0 since Im z > 0)."""
    return np.log(special.wofz(_z(y, sigma_s, gamma)).real) - math.log(sigma_s * math.sqrt(2 * math.pi))


def gaussian_branch_log_odds(y, sigma_s: float, tau: float, gamma: float, eps: float) -> np.ndarray:
    """log[(1−ε)N(y; 0, v)] − log[ε V(y)]; r(y) = sigmoid of it."""
    y = np.asarray(y, dtype=np.float64)
    v = sigma_s**2 + tau**2
    log_gauss = math.log1p(-eps) - 0.5 * math.log(2 * math.pi * v) - y * y / (2 * v)
    return log_gauss - (math.log(eps) + voigt_log_density(y, sigma_s, gamma))


def posterior_mean(y, sigma_s: float, tau: float, gamma: float, eps: float) -> np.ndarray:
    """Exact E[s | y] (Tweedie + Voigt, spec §2.3); ε = 0 is the Wiener filter κy."""
    y = np.asarray(y, dtype=np.float64)
    kappa = sigma_s**2 / (sigma_s**2 + tau**2)
    if eps == 0.0:
        return kappa * y
    z = _z(y, sigma_s, gamma)
    w = special.wofz(z)
    m_cauchy = math.sqrt(2.0) * sigma_s * (z * w).real / w.real
    r = special.expit(gaussian_branch_log_odds(y, sigma_s, tau, gamma, eps))
    return r * kappa * y + (1 - r) * m_cauchy


def noise_density(n, tau: float, gamma: float, eps: float):
    gauss = np.exp(-0.5 * (n / tau) ** 2) / (tau * math.sqrt(2 * math.pi)) if tau > 0 else 0.0
    return (1 - eps) * gauss + eps * gamma / (math.pi * (n * n + gamma * gamma))


def posterior_mean_quad(y: float, sigma_s: float, tau: float, gamma: float, eps: float) -> float:
    """E[s | y] from its definition by adaptive quadrature (the prior vanishes beyond 14σ_s)."""
    lo, hi = -14 * sigma_s, 14 * sigma_s
    pts = [y] if lo < y < hi else None

    def weight(s):
        return math.exp(-0.5 * (s / sigma_s) ** 2) * noise_density(y - s, tau, gamma, eps)

    den = integrate.quad(weight, lo, hi, points=pts, limit=400, epsabs=0.0, epsrel=1e-11)[0]
    # the numerator changes sign (it is 0 at y = 0): an absolute tolerance relative to den·σ_s
    num = integrate.quad(lambda s: s * weight(s), lo, hi, points=pts, limit=400,
                         epsabs=1e-13 * den * sigma_s, epsrel=1e-11)[0]
    return num / den


def gate_threshold(sigma_s: float, tau: float, gamma: float, eps: float) -> float:
    """t* > 0 with r(t*) = ½ ((1−ε)N(t*; 0, v) = ε V(t*)); 0 if the Cauchy branch wins already at 0."""
    def f(t):
        return float(gaussian_branch_log_odds(t, sigma_s, tau, gamma, eps))

    if eps == 0.0:
        return math.inf
    if f(0.0) <= 0:
        return 0.0
    hi = 1.0
    while f(hi) > 0:
        hi *= 2
    return optimize.brentq(f, 0.0, hi, xtol=1e-12)


def sample_contaminated(rng: np.random.Generator, n: int, sigma_s: float, tau: float, gamma: float,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(s, y) with s ~ N(0, σ_s²), y = s + n, n ~ (1−ε)N(0, τ²) + ε Cauchy(0, γ)."""
    s = sigma_s * rng.standard_normal(n)
    noise = np.where(rng.random(n) < eps, gamma * rng.standard_cauchy(n), tau * rng.standard_normal(n))
    return s, s + noise
