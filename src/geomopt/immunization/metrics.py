"""Immunization metrics: RIR (Eq. 15), RIR_θ₀ (Eq. 17), probe norm-ratio curves (Eq. 16).

    (i)  = κ(H_H(θ_I)) / κ(H_H(θ_ref)),   (ii) = κ(H_P(θ_I)) / κ(H_P(θ_ref)),   RIR = (i)/(ii)

with θ_ref = Id (Eq. 15, linear models) or the released θ₀ (Eq. 17, deep nets).
For feature extractors H̃ = FᵀF is formed from the extracted features of random
groups of samples (the paper: 20 groups of 100); the original extractor and the
immunized one are two different objects, evaluated on the same groups (the
public code passes one model as both, spec pitfall 7, so every ratio is 1).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from geomopt.immunization.spectra import (DEFAULT_RTOL, KAPPA_METRICS, as_float64_matrix, condition_number,
                                          condition_number_shifted, hessian, numerical_rank)


def immunization_ratios(theta_I, K_H, K_P, theta_ref=None, rank_H: int | None = None,
                        rank_P: int | None = None, metric: str = "nonzero") -> dict[str, float]:
    """Eq. 15 (θ_ref = Id) for a linear extractor: {'kappa_H', 'kappa_P', 'i', 'ii', 'rir'}.

    ``metric``: 'nonzero' (κ over the nonzero spectrum at the rank) or 'authors' (κ of H + 10⁻⁶·I
    over its eigenvalues above 10⁻⁶; the ranks are then unused). See ``spectra``."""
    if metric not in KAPPA_METRICS:
        raise ValueError(f"kappa metric {metric!r} unknown; choose one of: {', '.join(KAPPA_METRICS)}")
    K_H = as_float64_matrix(K_H, "K_H")
    K_P = as_float64_matrix(K_P, "K_P")
    theta_I = as_float64_matrix(theta_I, "theta_I")
    ref = np.eye(theta_I.shape[0]) if theta_ref is None else as_float64_matrix(theta_ref, "theta_ref")
    # rank θᵀKθ = min(rank K, Dout) for a generic θ ∈ ℝ^{Din×Dout}
    rank_H = min(numerical_rank(K_H) if rank_H is None else rank_H, theta_I.shape[1])
    rank_P = min(numerical_rank(K_P) if rank_P is None else rank_P, theta_I.shape[1])
    if metric == "authors":
        kappa = lambda theta, K, rank: condition_number_shifted(hessian(theta, K))  # noqa: E731
    else:
        kappa = lambda theta, K, rank: condition_number(hessian(theta, K), rank=rank)  # noqa: E731
    k_H, k_P = kappa(theta_I, K_H, rank_H), kappa(theta_I, K_P, rank_P)
    ratio_H = k_H / kappa(ref, K_H, rank_H)
    ratio_P = k_P / kappa(ref, K_P, rank_P)
    return {"kappa_H": k_H, "kappa_P": k_P, "i": ratio_H, "ii": ratio_P, "rir": ratio_H / ratio_P}


def relative_immunization_ratio(kappa_H_I: float, kappa_H_ref: float, kappa_P_I: float, kappa_P_ref: float) -> float:
    """Eq. 15/17 from the four condition numbers."""
    for name, v in (("kappa_H_I", kappa_H_I), ("kappa_H_ref", kappa_H_ref),
                    ("kappa_P_I", kappa_P_I), ("kappa_P_ref", kappa_P_ref)):
        if not v >= 1.0:
            raise ValueError(f"{name} = {v} is not a condition number (must be >= 1)")
    return (kappa_H_I / kappa_H_ref) / (kappa_P_I / kappa_P_ref)


def feature_condition_number(features, rtol: float = DEFAULT_RTOL) -> float:
    """κ(FᵀF) over its nonzero spectrum (H̃ of Eq. 17)."""
    F = as_float64_matrix(features, "features")
    return condition_number(F.T @ F, rtol=rtol)


def rir_theta0(extract_0: Callable, extract_I: Callable, X_H, X_P, groups: int = 20, group_size: int = 100,
               seed: int = 0, rtol: float = DEFAULT_RTOL) -> dict:
    """Eq. 17 for two feature extractors (callables: batch of inputs -> 2-D features).

    Both extractors see the same random groups. Per group g: (i)_g = κ(H̃_H(θ_I))/κ(H̃_H(θ₀)),
    (ii)_g likewise on D_P, RIR_g = (i)_g/(ii)_g; the reported values are the means over
    groups, so RIR ≠ (i)/(ii) exactly (as in the paper).
    """
    if groups < 1 or group_size < 2:
        raise ValueError(f"need groups >= 1 and group_size >= 2, got {groups}, {group_size}")
    n_H, n_P = len(X_H), len(X_P)
    if min(n_H, n_P) < group_size:
        raise ValueError(f"group_size {group_size} exceeds the data (|D_H| = {n_H}, |D_P| = {n_P})")
    rng = np.random.default_rng(seed)
    i_g, ii_g = [], []
    for _ in range(groups):
        idx_H = np.sort(rng.choice(n_H, group_size, replace=False))
        idx_P = np.sort(rng.choice(n_P, group_size, replace=False))
        i_g.append(feature_condition_number(_features(extract_I, X_H[idx_H]), rtol)
                   / feature_condition_number(_features(extract_0, X_H[idx_H]), rtol))
        ii_g.append(feature_condition_number(_features(extract_I, X_P[idx_P]), rtol)
                    / feature_condition_number(_features(extract_0, X_P[idx_P]), rtol))
    i_g, ii_g = np.array(i_g), np.array(ii_g)
    rir_g = i_g / ii_g
    return {"i": float(i_g.mean()), "ii": float(ii_g.mean()), "rir": float(rir_g.mean()),
            "rir_std": float(rir_g.std()), "per_group_rir": rir_g}


def _features(extract: Callable, batch) -> np.ndarray:
    F = extract(batch)
    if hasattr(F, "detach"):
        F = F.detach().cpu().double().numpy()
    F = np.asarray(F, dtype=np.float64)
    return F.reshape(F.shape[0], -1)


def exact_line_search_gd(H, e0, steps: int) -> np.ndarray:
    """Eq. 16: ‖e_t‖²/‖e_0‖² for GD on ½eᵀHe with the exact step α_t = gᵀg/gᵀHg (g = He)."""
    H = as_float64_matrix(H, "H")
    e = np.asarray(e0, dtype=np.float64).copy()
    norm0 = float(e @ e)
    if norm0 == 0.0:
        raise ValueError("e0 = w0 − w* is zero: the probe starts at its optimum")
    ratios = [1.0]
    for _ in range(steps):
        g = H @ e
        curv = float(g @ H @ g)
        if curv <= 0.0:  # converged to machine precision
            ratios.append(ratios[-1])
            continue
        e = e - (float(g @ g) / curv) * g
        ratios.append(float(e @ e) / norm0)
    return np.array(ratios)


def probe_norm_ratio_curve(features, y, steps: int) -> np.ndarray:
    """‖w_t − w*‖²/‖w₀ − w*‖² of a linear probe on ``features`` from w₀ = 0 (exact line search).

    w* is the minimum-norm least-squares solution, which lies in range(FᵀF); GD from 0
    never leaves that range, so the ratio is well defined for rank-deficient features.
    """
    F = as_float64_matrix(features, "features")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    w_star = np.linalg.lstsq(F, y, rcond=None)[0]
    return exact_line_search_gd(F.T @ F, -w_star, steps)
