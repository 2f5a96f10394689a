"""Localization of a noise matrix and the spectral effect of entry-wise clipping (spec §2.2).

L(E) = max_ij |E_ij| / ‖E‖₂ ∈ (0, 1] (|E_ij| = |e_iᵀ E e_j| ≤ ‖E‖₂). L → 1 when one entry
carries the spectral norm (a "spectral spike" that clipping removes); for an m×n Gaussian
matrix L_G ≈ √(2 log(mn)) / (√m + √n). The paper's "normalized localization ratio" is
not defined in the available text; ``normalized_localization_ratio`` is our L/L_G
(**Reconstructed**).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geomopt.optim.grad_transforms import MAD_TO_SIGMA


def spectral_norm(e: Tensor) -> Tensor:
    """‖E‖₂ (largest singular value) of a matrix, or of each matrix in a batch."""
    return torch.linalg.matrix_norm(e, ord=2)


def localization_ratio(e: Tensor) -> Tensor:
    """L(E) = max|E_ij| / ‖E‖₂ (a conv filter is viewed as (out, in·k·k))."""
    e = e.reshape(e.shape[0], -1) if e.ndim != 2 else e
    return e.abs().amax() / spectral_norm(e)


def gaussian_localization(m: int, n: int) -> float:
    """L_G ≈ √(2 log(mn)) / (√m + √n): max of mn Gaussians over the Bai–Yin edge."""
    return math.sqrt(2 * math.log(m * n)) / (math.sqrt(m) + math.sqrt(n))


def normalized_localization_ratio(e: Tensor) -> Tensor:
    """L(E)/L_G(m, n): ≈ 1 for Gaussian noise, ≫ 1 for localized (entry-wise heavy-tailed) noise."""
    e = e.reshape(e.shape[0], -1) if e.ndim != 2 else e
    return localization_ratio(e) / gaussian_localization(*e.shape)


def mad_threshold(e: Tensor, k: float = 3.0) -> Tensor:
    """c = k · 1.4826 · median|E| (spec §3.1), a robust k-sigma threshold."""
    return k * MAD_TO_SIGMA * e.abs().flatten().median()


def entrywise_clip(e: Tensor, c: Tensor | float) -> Tensor:
    """clip_c(E): every entry into [−c, c]."""
    c = torch.as_tensor(c, dtype=e.dtype, device=e.device)
    return torch.clamp(e, -c, c)


def spectral_norms_around_clip(e: Tensor, k: float = 3.0) -> dict[str, Tensor]:
    """‖E‖₂ before and after entry-wise clipping at c = k·1.4826·MAD, with c and the robust
    scale 1.4826·MAD (spec §3.1's report: L, ‖E‖₂/scale, ‖clip_c(E)‖₂/scale)."""
    e = e.reshape(e.shape[0], -1) if e.ndim != 2 else e
    c = mad_threshold(e, k)
    return {"before": spectral_norm(e), "after": spectral_norm(entrywise_clip(e, c)), "c": c, "scale": c / k}
