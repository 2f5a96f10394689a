"""R_well and R_ill (§4) with their closed-form gradients in S (Thm 4.1) and in θ (Thm 4.2).

    R_well(S) = ½σ₁² − (1/2p)‖S‖_F²                      (Nenov et al. 2024)
    R_ill(S)  = 1/D,  D = (1/2k)‖S‖_F² − ½σ_k²            (Eq. 9)

k (and p) is the *rank* of S: the number of nonzero singular values, σ_k the
smallest of them. The public code uses the feature dimension, which makes D
negative for a rank-deficient S (spec pitfall 1). For a full-rank S, p = k =
the smaller dimension, as in the paper. ``rank=None`` means the numerical rank
(``spectra.DEFAULT_RTOL``); pass the structural rank when it is known.

Closed forms (unique σ₁, σ_k):
    ∇_S R_well = σ₁u₁v₁ᵀ − S/p,      ∇_S R_ill = (σ_k u_k v_kᵀ − S/k)/D²
and for H = θᵀKθ (Thm 4.2; ∇_θ f(θᵀKθ) = Kθ(G + Gᵀ) with G = ∇_H f symmetric):
    ∇_θ R_well(H) = 2Kθ(σ₁v₁v₁ᵀ − H/p),  ∇_θ R_ill(H) = 2Kθ(σ_k v_k v_kᵀ − H/k)/D².
``log_condition_grad_theta`` gives ∇_θ log κ(H) for the Opt κ baseline.
The ``*_torch`` functions are the same regularizers for autograd (tests, theory).
"""

from __future__ import annotations

import numpy as np

from geomopt.immunization.spectra import as_float64_matrix, hessian, numerical_rank, symmetric_eigh


def _rank(S: np.ndarray, rank: int | None) -> int:
    k = numerical_rank(S) if rank is None else int(rank)
    if not 1 <= k <= min(S.shape):
        raise ValueError(f"rank {k} out of range 1..{min(S.shape)} for S of shape {S.shape}")
    return k


def _frobenius_sq(s_top: np.ndarray) -> float:
    # ‖S‖_F² over the nonzero spectrum: equal to ‖S‖_F² when `rank` is the true rank,
    # and free of round-off noise from the zero singular values.
    return float(np.sum(s_top**2))


def r_well(S, rank: int | None = None) -> float:
    S = as_float64_matrix(S)
    p = _rank(S, rank)
    s = np.linalg.svd(S, compute_uv=False)[:p]
    return 0.5 * s[0] ** 2 - _frobenius_sq(s) / (2 * p)


def r_ill_gap(S, rank: int | None = None) -> float:
    """D = (1/2k)‖S‖_F² − ½σ_k² ≥ 0 (zero iff all nonzero singular values are equal)."""
    S = as_float64_matrix(S)
    k = _rank(S, rank)
    s = np.linalg.svd(S, compute_uv=False)[:k]
    return _frobenius_sq(s) / (2 * k) - 0.5 * s[-1] ** 2


def r_ill(S, rank: int | None = None) -> float:
    D = r_ill_gap(S, rank)
    if D <= 0.0:
        return float("inf")  # κ = 1: R_ill has its pole there (Thm 4.1(1))
    return 1.0 / D


def r_well_grad(S, rank: int | None = None) -> np.ndarray:
    """∇_S R_well = σ₁u₁v₁ᵀ − S/p."""
    S = as_float64_matrix(S)
    p = _rank(S, rank)
    U, s, Vt = np.linalg.svd(S, full_matrices=False)
    return s[0] * np.outer(U[:, 0], Vt[0]) - S / p


def r_ill_grad(S, rank: int | None = None) -> np.ndarray:
    """Thm 4.1(3): ∇_S R_ill = (σ_k u_k v_kᵀ − S/k)/D²."""
    S = as_float64_matrix(S)
    k = _rank(S, rank)
    U, s, Vt = np.linalg.svd(S, full_matrices=False)
    D = _frobenius_sq(s[:k]) / (2 * k) - 0.5 * s[k - 1] ** 2
    return (s[k - 1] * np.outer(U[:, k - 1], Vt[k - 1]) - S / k) / D**2


def _hessian_and_eig(theta, K, rank):
    H = hessian(theta, K)
    w, V = symmetric_eigh(H)
    k = _rank(H, rank) if rank is not None else numerical_rank(H)
    return H, w, V, k


def r_well_grad_theta(theta, K, rank: int | None = None) -> np.ndarray:
    """Thm 4.2: ∇_θ R_well(θᵀKθ) = 2Kθ(σ₁v₁v₁ᵀ − H/p)."""
    H, w, V, p = _hessian_and_eig(theta, K, rank)
    G = w[0] * np.outer(V[:, 0], V[:, 0]) - H / p
    return 2.0 * np.asarray(K, dtype=np.float64) @ np.asarray(theta, dtype=np.float64) @ G


def r_ill_grad_theta(theta, K, rank: int | None = None) -> np.ndarray:
    """Thm 4.2: ∇_θ R_ill(θᵀKθ) = 2Kθ(σ_k v_k v_kᵀ − H/k)/D²."""
    return 2.0 * np.asarray(K, dtype=np.float64) @ np.asarray(theta, dtype=np.float64) @ r_ill_direction(theta, K, rank)


def r_ill_direction(theta, K, rank: int | None = None) -> np.ndarray:
    """A_H = (σ_k v_k v_kᵀ − H/k)/D², so that ∇_θ R_ill = 2KθA_H (Thm 4.3's A)."""
    H, w, V, k = _hessian_and_eig(theta, K, rank)
    D = float(np.sum(w[:k] ** 2)) / (2 * k) - 0.5 * w[k - 1] ** 2
    return (w[k - 1] * np.outer(V[:, k - 1], V[:, k - 1]) - H / k) / D**2


def r_well_direction(theta, K, rank: int | None = None) -> np.ndarray:
    """A_P = σ₁v₁v₁ᵀ − H/p, so that ∇_θ R_well = 2KθA_P."""
    H, w, V, p = _hessian_and_eig(theta, K, rank)
    return w[0] * np.outer(V[:, 0], V[:, 0]) - H / p


def log_condition_grad_theta(theta, K, rank: int | None = None) -> np.ndarray:
    """∇_θ log κ(θᵀKθ) = 2Kθ(v₁v₁ᵀ/σ₁ − v_k v_kᵀ/σ_k) (unique extreme eigenvalues)."""
    H, w, V, k = _hessian_and_eig(theta, K, rank)
    G = np.outer(V[:, 0], V[:, 0]) / w[0] - np.outer(V[:, k - 1], V[:, k - 1]) / w[k - 1]
    return 2.0 * np.asarray(K, dtype=np.float64) @ np.asarray(theta, dtype=np.float64) @ G


# --- autograd versions (torch, float64): the same definitions, differentiated by torch ---

def r_well_torch(S, rank: int):
    import torch

    s = torch.linalg.svdvals(S)
    return 0.5 * s[0] ** 2 - (S**2).sum() / (2 * rank)


def r_ill_torch(S, rank: int):
    import torch

    s = torch.linalg.svdvals(S)
    return 1.0 / ((S**2).sum() / (2 * rank) - 0.5 * s[rank - 1] ** 2)


def log_condition_torch(S, rank: int):
    import torch

    s = torch.linalg.svdvals(S)
    return torch.log(s[0]) - torch.log(s[rank - 1])
