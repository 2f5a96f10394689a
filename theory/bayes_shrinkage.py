"""Paper 1, C4 (Reconstructed): "smooth shrinkage" is a tractable surrogate of the
Bayes-optimal entry-wise estimator under a Gaussian signal prior (spec §2.3–2.4, §3.2–3.3).

Three measurements on the spec's grid of (σ_s, τ, γ, ε):
1. Tweedie's closed form (Voigt profile) against quadrature of its definition;
2. the surrogate ψ (Cauchy width γ_e = √(γ² + σ_s²) in place of the Voigt density)
   against the exact posterior mean, worst |ψ − E[s|y]| relative to the peak, y ∈ [0, 50];
3. Monte-Carlo Bayes risk E[(ψ(y) − s)²] of the exact estimator, the surrogate, the hard,
   soft and redescending clips at the gate threshold t* (slope κ), and the identity.
PASS: closed form = quadrature (rel. 1e-8) and surrogate risk ≤ 1.10 × Bayes risk everywhere.
"""

from __future__ import annotations

import numpy as np
import torch

from geomopt.noise import bayes
from geomopt.optim.shrink import bayes_surrogate, psi
from geomopt.report.checks import Outcome

PAPER = "paper1"
CLAIM = ("Smooth shrinkage is a tractable surrogate of the Bayes-optimal entry-wise estimator "
         "(Gaussian signal prior, Cauchy-contaminated noise): its risk is within 10% of the Bayes risk")
GRID = [(1.0, 1.0, 1.0, 0.05), (1.0, 1.0, 1.0, 0.01), (1.0, 1.0, 1.0, 0.001), (0.3, 1.0, 1.0, 0.05),
        (1.0, 0.5, 2.0, 0.1)]
RISK_RATIO_MAX = 1.10


def _surrogate(y: np.ndarray, point) -> np.ndarray:
    return bayes_surrogate(torch.from_numpy(y), *point).numpy()


def _clip(y: np.ndarray, name: str, t: float, kappa: float) -> np.ndarray:
    return psi(torch.from_numpy(y), name, t, kappa).numpy()


def _shape(point, ys, exact) -> dict:
    sigma_s, tau, gamma, eps = point
    kappa = sigma_s**2 / (sigma_s**2 + tau**2)
    h = 1e-5
    slope0 = float(bayes.posterior_mean(h, *point) / h)
    y_far = 1e4  # tail: E[s|y] ~ 2σ_s² y/(y² + γ²) ~ 2σ_s²/y
    tail = float(bayes.posterior_mean(y_far, *point) * y_far / (2 * sigma_s**2))
    wiener = float(np.abs(bayes.posterior_mean(ys, sigma_s, tau, gamma, 0.0) - kappa * ys).max())
    return {"kappa": kappa, "slope_at_0": slope0, "tail_y_times_mean_over_2sigma2": tail,
            "peak_at": float(ys[np.argmax(exact)]), "t_star": bayes.gate_threshold(*point), "wiener_err": wiener}


def check(quick: bool = False, seed: int = 0) -> Outcome:
    rng = np.random.default_rng(seed)
    n_mc = 200_000 if quick else 4_000_000
    n_quad = 12 if quick else 60
    ys = np.linspace(0.0, 50.0, 501)
    ys_quad = np.linspace(0.0, 50.0, n_quad)
    points, worst_quad, worst_risk = [], 0.0, 0.0
    for point in GRID:
        exact = bayes.posterior_mean(ys, *point)
        sur = _surrogate(ys, point)
        peak = float(np.abs(exact).max())
        quad = np.array([bayes.posterior_mean_quad(y, *point) for y in ys_quad])
        quad_err = float(np.abs(bayes.posterior_mean(ys_quad, *point) - quad).max() / peak)
        shape = _shape(point, ys, exact)
        s, y = bayes.sample_contaminated(rng, n_mc, *point)
        t_star, kappa = shape["t_star"], shape["kappa"]
        estimates = {"bayes": bayes.posterior_mean(y, *point), "surrogate": _surrogate(y, point),
                     "hard": _clip(y, "hard", t_star, kappa), "soft": _clip(y, "soft", t_star, kappa),
                     "redescend": _clip(y, "redescend", t_star, kappa), "identity": y}
        risk = {k: float(np.mean((v - s) ** 2)) for k, v in estimates.items()}
        ratio = risk["surrogate"] / risk["bayes"]
        worst_quad, worst_risk = max(worst_quad, quad_err), max(worst_risk, ratio)
        points.append({"sigma_s": point[0], "tau": point[1], "gamma": point[2], "eps": point[3],
                       "quad_rel_err": quad_err, "surrogate_rel_err": float(np.abs(sur - exact).max() / peak),
                       "risk": risk, "surrogate_over_bayes": ratio,
                       "bayes_is_smallest": min(risk, key=risk.get) == "bayes", **shape,
                       "curves": {"exact": exact[::5], "surrogate": sur[::5],
                                  "hard": _clip(ys[::5], "hard", t_star, kappa),
                                  "soft": _clip(ys[::5], "soft", t_star, kappa),
                                  "redescend": _clip(ys[::5], "redescend", t_star, kappa)}})
    passed = worst_quad < 1e-8 and worst_risk <= RISK_RATIO_MAX
    worst_sur = max(p["surrogate_rel_err"] for p in points)
    hard_worst = max(p["risk"]["hard"] / p["risk"]["bayes"] for p in points)
    summary = (f"Tweedie vs quad {worst_quad:.1e}; surrogate vs exact ≤{worst_sur:.1%} of peak; "
               f"risk surrogate/Bayes ≤{worst_risk:.3f} (hard clip ≤{hard_worst:.2f}) over {len(points)} grid pts")
    return Outcome(measured={"n_mc": n_mc, "y": ys[::5], "points": points, "worst_quad_rel_err": worst_quad,
                             "worst_surrogate_rel_err": worst_sur, "worst_risk_ratio": worst_risk,
                             "risk_ratio_max": RISK_RATIO_MAX},
                   passed=passed, summary=summary)


if __name__ == "__main__":
    import sys

    from geomopt.report.checks import main

    sys.exit(main(only=["bayes_shrinkage"]))
