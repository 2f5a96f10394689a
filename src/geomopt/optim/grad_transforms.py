"""Gradient transformations that stand in front of any torch optimizer, in place on ``.grad``
(the way ``torch.nn.utils.clip_grad_norm_`` does).

Paper 1 (**Reconstructed**, spec §2.4/§2.6) puts an entry-wise shrink ψ in front of
the optimizer: each gradient tensor G is divided by a scale, shrunk entry-wise and
scaled back, ``G ← s · ψ(G / s; t)``. The scale is per matrix (``"rms"``: ‖G‖_F/√(mn);
``"mad"``: 1.4826·median|G|, robust to the outliers it is meant to find), a number,
or a list of per-entry scale tensors (e.g. √v̂ of Adam). The paper-1 controls are
here too, under the names the trainer's grad-transform hook uses:

====================  =====================================================================
name                  transform
====================  =====================================================================
``shrink``            ``shrink_grads_(params, psi="smooth", t=3.0, scale="mad", slope=1.0)``
``clip_norm``         ``clip_grad_norm_(params, max_norm=1.0)`` (torch's global-norm clip)
``spectral_soft_clip`` ``spectral_soft_clip_grads_(params, c=0.1)`` (SPECTRA pre-clip, §2.6)
====================  =====================================================================

``build_grad_transform(name, **kwargs)`` returns ``fn(params)``. Non-finite gradient
entries are zeroed by ``shrink`` (see ``shrink.zero_nonfinite_``).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor

from geomopt.optim.shrink import apply_psi_, check_psi, check_threshold, zero_nonfinite_
from geomopt.optim.spectral_clip import spectral_soft_clip

MAD_TO_SIGMA = 1.4826  # 1/Φ⁻¹(3/4): median|x| of N(0, σ²) is σ/1.4826
MAD_SAMPLE = 65536  # entries the median is taken over (a median of 2.4M entries costs ~20% of a Muon step)
SCALES = ("rms", "mad")
_TINY = 1e-30


def median_sample(g: Tensor, max_entries: int = MAD_SAMPLE) -> Tensor:
    """``g`` flattened, or for a larger tensor every k-th entry (≤ ~max_entries of them) with k
    coprime to the row length, so that every column is visited. The median of such a sample
    estimates the population median to ~1/√max_entries relative error, ample for a noise scale."""
    flat = g.reshape(-1)
    n = flat.numel()
    if n <= max_entries:
        return flat
    stride, row = n // max_entries, g.shape[-1]
    while math.gcd(stride, row) != 1:
        stride += 1
    return flat[::stride]


def matrix_scale(g: Tensor, kind: str) -> Tensor:
    """Per-tensor inlier scale of ``g`` as a 0-d tensor (no host sync), floored at 1e-30:
    ``"rms"`` ‖g‖_F/√numel, ``"mad"`` 1.4826·median|g| (on ``median_sample`` for large g)."""
    if kind == "rms":
        s = torch.linalg.vector_norm(g) / g.numel() ** 0.5
    elif kind == "mad":
        s = MAD_TO_SIGMA * median_sample(g).abs().median()
    else:
        raise ValueError(f"scale={kind!r} unknown; choose one of: {', '.join(SCALES)}, a number, or per-entry tensors")
    return s.clamp_min(_TINY)


def _grads(params: Iterable[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    return [p.grad for p in params if p.grad is not None]


@torch.no_grad()
def shrink_grads_(params: Iterable[Tensor] | Tensor, psi: str | None = "smooth", t: float = 3.0,
                  scale: str | float | Sequence[Tensor] = "mad", slope: float = 1.0,
                  gamma: float = 1.0) -> list[Tensor]:
    """``G ← s · ψ(G/s; t)`` in place on every ``p.grad``; returns the scales used.

    ``psi=None``/``"none"`` only zeroes non-finite entries."""
    psi = check_psi(psi)
    check_threshold(t, slope, gamma)
    grads = _grads(params)
    for g in grads:
        zero_nonfinite_(g)
    if isinstance(scale, str):
        scales = [matrix_scale(g, scale) for g in grads]
    elif isinstance(scale, (int, float)):
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        scales = [torch.tensor(float(scale), device=g.device, dtype=g.dtype) for g in grads]
    else:
        scales = list(scale)
        if len(scales) != len(grads):
            raise ValueError(f"got {len(scales)} scale tensors for {len(grads)} gradients")
    if psi is None:
        return scales
    for g, s in zip(grads, scales):
        g.div_(s)
        apply_psi_(g, psi, t, slope, gamma)
        g.mul_(s)
    return scales


@torch.no_grad()
def spectral_soft_clip_grads_(params: Iterable[Tensor] | Tensor, c: float = 0.1, iters: int = 10) -> None:
    """SPECTRA soft clip σ ↦ σ/√(1+σ²/c²) of every gradient matrix (vectors: of its norm)."""
    for g in _grads(params):
        g.copy_(spectral_soft_clip(g, c, iters))


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float = 1.0) -> Tensor:
    """torch's global-norm clip (the usual LLM default), under the registry's name."""
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


GRAD_TRANSFORMS: dict[str, Callable] = {
    "shrink": shrink_grads_,
    "clip_norm": clip_grad_norm_,
    "spectral_soft_clip": spectral_soft_clip_grads_,
}


def build_grad_transform(name: str, **kwargs) -> Callable[[Iterable[Tensor]], object]:
    """``fn(params)`` applying transform ``name`` with ``kwargs`` (e.g. ``t=3.0``)."""
    if name not in GRAD_TRANSFORMS:
        raise ValueError(f"grad transform {name!r} unknown; choose one of: {', '.join(GRAD_TRANSFORMS)}")
    fn = GRAD_TRANSFORMS[name]

    def transform(params):
        return fn(params, **kwargs)

    transform.__name__ = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return transform
