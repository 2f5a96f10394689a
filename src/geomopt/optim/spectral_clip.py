"""SPECTRA-style spectral soft clip (Jiang, Semenov, Stich; arXiv 2603.14315), a paper-1 baseline.

    H_c(X) = (I + X Xᵀ / c²)^{−1/2} X,   i.e. every singular value σ ↦ σ / √(1 + σ²/c²),

the matrix analogue of the entry-wise soft clip y/√(1 + (y/t)²) in ``shrink.py``.
No SVD: the inverse square root of the SPD Gram matrix A = I + XXᵀ/c² (on the
smaller side of X) comes from the coupled Newton–Schulz iteration (spec §2.6)

    Y₀ = A/ν, Z₀ = I;   T = ½(3I − Z Y),  Y ← Y T,  Z ← T Z   ⇒   Z → (A/ν)^{−1/2},

with ν = min(largest Gershgorin row sum, ‖A‖_F) ≥ λ_max(A) so that the iteration
converges. Ten iterations, as in SPECTRA: the directions of smallest σ have the
smallest eigenvalue (1 + σ²/c²)/ν of A/ν and converge last (from below: H_c never
amplifies), but they add only O(σ) to H_c(X). With c ≪ σ_max (pre-clip c = 0.1) they
may stay unconverged after 10 iterations, as in SPECTRA. Vectors use the
norm version g/√(1 + (‖g‖/c)²).
"""

from __future__ import annotations

import torch
from torch import Tensor


def inverse_sqrt_newton_schulz(a: Tensor, iters: int = 10) -> Tensor:
    """A^{−1/2} of a symmetric positive-definite matrix by coupled Newton–Schulz."""
    n = a.shape[-1]
    eye = torch.eye(n, dtype=a.dtype, device=a.device)
    gershgorin = a.abs().sum(dim=-1).amax()
    nu = torch.minimum(gershgorin, torch.linalg.matrix_norm(a))  # ≥ λ_max(A): eigs of A/ν in (0, 1]
    y, z = a / nu, eye
    for _ in range(iters):
        t = 1.5 * eye - 0.5 * (z @ y)
        y, z = y @ t, t @ z
    return z / nu.sqrt()


def spectral_soft_clip(x: Tensor, c: float, iters: int = 10) -> Tensor:
    """H_c(X) = (I + XXᵀ/c²)^{−1/2} X for a matrix, g/√(1 + (‖g‖/c)²) for a vector."""
    if c <= 0:
        raise ValueError(f"spectral clip level c must be > 0, got {c!r}")
    if x.ndim == 1:
        return x / torch.sqrt(1.0 + (torch.linalg.vector_norm(x) / c) ** 2)
    m = x.reshape(x.shape[0], -1)
    if m.dtype in (torch.float16, torch.bfloat16):
        m = m.float()  # the Gram matrix and its inverse root need fp32 at least
    wide = m.shape[0] <= m.shape[1]
    gram = m @ m.T if wide else m.T @ m  # the smaller Gram matrix
    a = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) + gram / (c * c)
    root = inverse_sqrt_newton_schulz(a, iters)
    out = root @ m if wide else m @ root  # (I + XXᵀ/c²)^{-1/2} X = X (I + XᵀX/c²)^{-1/2}
    return out.reshape(x.shape).to(x.dtype)
