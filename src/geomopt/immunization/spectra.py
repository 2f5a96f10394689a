"""Spectra of Hessians H = θᵀKθ: condition numbers, by two metrics.

``nonzero`` (``condition_number``, ours): κ = σ_max/σ_min over the nonzero spectrum.
``authors`` (``condition_number_shifted``, the authors' utils/loss.py ``condition_number``):
eigenvalues of S + 10⁻⁶·I, κ = λ_max / (smallest of them above 10⁻⁶). For a rank-deficient S
this keeps every null eigenvalue whose round-off came out positive, so κ ≈ λ_max/10⁻⁶ there:
the two metrics differ by orders of magnitude on House Prices (rank 74 of 79).

The data covariances K = XᵀX of the paper's experiments are rank-deficient
(constant pixels, more features than samples in a group), so κ = σ_max/σ_min
is taken over the *nonzero* spectrum: the singular values above
``rtol · σ_max`` (``DEFAULT_RTOL`` = 1e-9, float64). When the rank is known
structurally (rank θᵀKθ = rank K for an invertible θ) pass ``rank=`` instead:
a threshold alone would drop the smallest eigenvalue of a Hessian that
immunization has made very ill-conditioned, and κ would seem to fall.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RTOL = 1e-9


def as_float64_matrix(S, name: str = "S") -> np.ndarray:
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise ValueError(f"{name} has non-finite entries")
    return S


def as_square(S, name: str = "S") -> np.ndarray:
    S = as_float64_matrix(S, name)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"{name} must be square, got shape {S.shape}")
    return S


def singular_values(S) -> np.ndarray:
    """Singular values, descending."""
    return np.linalg.svd(as_float64_matrix(S), compute_uv=False)


def numerical_rank(S, rtol: float = DEFAULT_RTOL) -> int:
    """Number of singular values above ``rtol · σ_max`` (0 for the zero matrix)."""
    s = singular_values(S)
    if s.size == 0 or s[0] == 0.0:
        return 0
    return int(np.sum(s > rtol * s[0]))


def nonzero_singular_values(S, rank: int | None = None, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    """The top ``rank`` singular values (descending); ``rank`` defaults to the numerical rank."""
    s = singular_values(S)
    k = numerical_rank(S, rtol) if rank is None else int(rank)
    if not 1 <= k <= s.size:
        raise ValueError(f"rank {k} out of range 1..{s.size} for a matrix of shape {np.shape(S)}")
    return s[:k]


def condition_number(S, rank: int | None = None, rtol: float = DEFAULT_RTOL) -> float:
    """κ(S) = σ_max / σ_min over the nonzero spectrum (Eq. 15's κ)."""
    s = nonzero_singular_values(S, rank, rtol)
    return float(s[0] / s[-1])


AUTHORS_SHIFT = 1e-6
KAPPA_METRICS = ("nonzero", "authors")


def shifted_eigenvalues_kept(S, shift: float = AUTHORS_SHIFT) -> np.ndarray:
    """Eigenvalues of S + shift·I above ``shift``, descending (the ones the authors' κ uses)."""
    S = as_square(S)
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    w = np.linalg.eigvalsh(0.5 * (S + S.T) + shift * np.eye(S.shape[0]))[::-1]
    kept = w[w > shift]
    if kept.size == 0:
        raise ValueError(f"no eigenvalue of S + {shift}·I exceeds {shift}: S has no positive spectrum")
    return kept


def condition_number_shifted(S, shift: float = AUTHORS_SHIFT) -> float:
    """The authors' κ: λ_max(S + shift·I) / min{λ(S + shift·I) > shift}."""
    kept = shifted_eigenvalues_kept(S, shift)
    return float(kept[0] / kept[-1])


def hessian(theta, K) -> np.ndarray:
    """H(θ) = θᵀKθ, the linear-probe Hessian of ‖Xθw − y‖² with the factor 2 dropped (§2)."""
    theta = as_float64_matrix(theta, "theta")
    K = as_square(K, "K")
    if theta.shape[0] != K.shape[0]:
        raise ValueError(f"theta has {theta.shape[0]} rows but K is {K.shape[0]}×{K.shape[0]}")
    H = theta.T @ K @ theta
    return 0.5 * (H + H.T)  # exact symmetry, so eigh's eigenvectors are orthonormal


def symmetric_eigh(H) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric PSD matrix, eigenvalues descending."""
    H = as_square(H, "H")
    if not np.allclose(H, H.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(H).max())):
        raise ValueError("H must be symmetric (a Hessian θᵀKθ)")
    w, V = np.linalg.eigh(0.5 * (H + H.T))
    return w[::-1], V[:, ::-1]
