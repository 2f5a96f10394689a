"""Spectral clipping of gradient matrices: two paper-1 baselines, as pure functions and thin transforms.

**SPECTRA soft clip** (Jiang, Semenov, Stich; arXiv 2603.14315):

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
norm version g/√(1 + (‖g‖/c)²). *Calibrated* (``c_rel``): c = c_rel · EMA(σ₁) of the
matrix (below), so that the clip acts on the top of the spectrum whatever the gradient's
scale, where a fixed c = 0.1 acts on every direction of a matrix whose σ₁ is ≫ 0.1.

**Spectral clipping** (Yukhimchuk, Kolar, Takáč, Choudhury; arXiv 2605.11838): clamp the
singular values above a threshold τ and keep the singular directions,

    G = U diag(σ) Vᵀ,   C_τ(G) = U diag(min(σ, τ)) Vᵀ = G − U diag((σ − τ)₊) Vᵀ,

(written as a subtraction so that a matrix below τ is returned bit for bit), with a
layer-wise adaptive τ from a moving average of the top singular value. **Reconstructed:**
only the abstract and summaries are available (no equations, no defaults), so the adaptive
rule here is our reading of "moving averages ... of the top singular values":

    τ_k = κ · m̂_{k−1},   m_k = β m_{k−1} + (1−β) σ₁(G_k),   m̂_k = m_k / (1 − β^k)  (Adam's bias correction)

per matrix, over the steps where it had a gradient; the threshold comes from the *previous*
steps so that a spike cannot raise its own threshold, and the first step of each matrix is
not clipped (there is no history yet). κ = 2, β = 0.99 are our defaults (a spike is a top σ
at least twice the usual one), to be tuned. ``track="clipped"`` feeds the EMA with the clipped
σ₁ = min(σ₁, τ) instead (as AdaGC does with norms): an outlier then moves τ by at most
(1−β)(κ−1)·m̂. Exact SVD (fine at our sizes); the paper's randomized truncated SVD for
large layers is not implemented. Conv/ND gradients are viewed as (out, rest) matrices.

The transforms zero non-finite gradient entries first (an SVD cannot take them; they carry no
information, as in ``shrink``), keep one EMA per matrix in ``state_dict()``, and count clips
(``stats()``, see ``clip_rate``).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor

from geomopt.optim.clip_rate import ClipCount
from geomopt.optim.shrink import zero_nonfinite_

TRACKS = ("raw", "clipped")
_TINY = 1e-30


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


def _as_matrix(x: Tensor) -> Tensor:
    """``x`` as an (out, rest) matrix, in fp32 at least (Gram matrices and SVDs need it)."""
    m = x.reshape(x.shape[0], -1) if x.ndim else x.reshape(1, 1)
    return m.float() if m.dtype in (torch.float16, torch.bfloat16) else m


def _gram(m: Tensor) -> tuple[Tensor, bool]:
    """(the smaller Gram matrix of ``m``, whether ``m`` is wide)."""
    wide = m.shape[0] <= m.shape[1]
    return (m @ m.T if wide else m.T @ m), wide


def top_singular_value(gram: Tensor) -> Tensor:
    """σ₁ = √λ_max of a Gram matrix (0-d tensor, no host sync)."""
    return torch.linalg.eigvalsh(gram)[-1].clamp_min(0.0).sqrt()


def _soft_clip_matrix(m: Tensor, gram: Tensor, wide: bool, c: float | Tensor, iters: int) -> Tensor:
    a = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) + gram / (c * c)
    root = inverse_sqrt_newton_schulz(a, iters)
    return root @ m if wide else m @ root  # (I + XXᵀ/c²)^{-1/2} X = X (I + XᵀX/c²)^{-1/2}


def spectral_soft_clip(x: Tensor, c: float | Tensor, iters: int = 10) -> Tensor:
    """H_c(X) = (I + XXᵀ/c²)^{−1/2} X for a matrix, g/√(1 + (‖g‖/c)²) for a vector (c > 0; a
    0-d tensor c is the caller's to keep positive)."""
    if not isinstance(c, Tensor) and not c > 0:
        raise ValueError(f"spectral clip level c must be > 0, got {c!r}")
    if x.ndim == 1:
        return x / torch.sqrt(1.0 + (torch.linalg.vector_norm(x) / c) ** 2)
    m = _as_matrix(x)
    gram, wide = _gram(m)
    return _soft_clip_matrix(m, gram, wide, c, iters).reshape(x.shape).to(x.dtype)


def spectral_hard_clip(x: Tensor, tau: float | Tensor) -> tuple[Tensor, Tensor]:
    """(C_τ(X) = X − U diag((σ − τ)₊) Vᵀ, σ₁(X)) by exact SVD; X itself where σ₁ ≤ τ."""
    m = _as_matrix(x)
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    out = m - (u * (s - tau).clamp_min(0.0)) @ vh
    return out.reshape(x.shape).to(x.dtype), s[0]


# The transforms (the registry's ``spectral_clip`` and ``spectral_soft_clip``) -------------------

class _TopSigmaTransform:
    """Per-matrix bias-corrected EMA of σ₁ (state_dict-able) and a clip count."""

    def __init__(self, params: Iterable[Tensor], beta: float):
        if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        self.params, self.beta = list(params), float(beta)
        self.avg: list[Tensor | None] = [None] * len(self.params)  # m (not bias-corrected)
        self.seen = [0] * len(self.params)  # steps observed
        self.count = ClipCount()

    def level(self, i: int) -> Tensor | None:
        """m̂ of matrix ``i`` from the steps before this one (None before its first)."""
        k = self.seen[i]
        return None if k == 0 else self.avg[i] / (1.0 - self.beta ** k)

    def observe(self, i: int, sigma: Tensor) -> None:
        prev = self.avg[i]
        sigma = sigma.detach().float()
        self.avg[i] = (1.0 - self.beta) * sigma if prev is None else self.beta * prev + (1.0 - self.beta) * sigma
        self.seen[i] += 1

    def grads(self):
        for i, p in enumerate(self.params):
            if p.grad is not None:
                yield i, zero_nonfinite_(p.grad)

    def state_dict(self) -> dict:
        return {"avg": [None if a is None else a.clone() for a in self.avg], "seen": list(self.seen),
                "count": self.count.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if len(state["avg"]) != len(self.params) or len(state["seen"]) != len(self.params):
            raise ValueError(f"spectral clip state has {len(state['avg'])} matrices, this model {len(self.params)}; "
                             "resume with the same model and params class")
        self.avg = [None if a is None else a.clone() for a in state["avg"]]
        self.seen = [int(k) for k in state["seen"]]
        self.count.load_state_dict(state["count"])

    def stats(self) -> dict[str, float]:
        """{"clip_frac": share of (matrix, step) pairs clipped since the last call}."""
        return self.count.read()


class SpectralClip(_TopSigmaTransform):
    """Spectral clipping (arXiv 2605.11838, adaptive τ reconstructed; module doc) of each gradient."""

    def __init__(self, params: Iterable[Tensor], *, kappa: float = 2.0, beta: float = 0.99, track: str = "raw"):
        super().__init__(params, beta)
        if not (isinstance(kappa, (int, float)) and math.isfinite(kappa) and kappa > 0):
            raise ValueError(f"kappa must be a finite number > 0 (τ = kappa · EMA σ₁), got {kappa!r}")
        if track not in TRACKS:
            raise ValueError(f"track={track!r} unknown; choose one of: {', '.join(TRACKS)}")
        self.kappa, self.track = float(kappa), track

    @torch.no_grad()
    def __call__(self, step: int) -> None:
        for i, g in self.grads():
            avg = self.level(i)
            tau = math.inf if avg is None else self.kappa * avg
            out, sigma = spectral_hard_clip(g, tau)
            g.copy_(out)
            self.count.add(sigma > tau, 1)
            self.observe(i, sigma if avg is None or self.track == "raw" else torch.minimum(sigma, tau))


class SpectralSoftClip(_TopSigmaTransform):
    """SPECTRA's soft clip of each gradient, at a fixed ``c`` (default 0.1) or at c = c_rel · EMA σ₁."""

    def __init__(self, params: Iterable[Tensor], *, c: float | None = None, c_rel: float | None = None,
                 beta: float = 0.99, iters: int = 10):
        super().__init__(params, beta)
        if c is not None and c_rel is not None:
            raise ValueError("give spectral_soft_clip either c (absolute) or c_rel (× the EMA of σ₁), not both")
        for name, v in (("c", c), ("c_rel", c_rel)):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (isinstance(iters, int) and iters >= 1):
            raise ValueError(f"iters must be an int >= 1, got {iters!r}")
        self.c = 0.1 if c is None and c_rel is None else c
        self.c_rel, self.iters = c_rel, iters

    @torch.no_grad()
    def __call__(self, step: int) -> None:
        for i, g in self.grads():
            if g.ndim < 2:
                m, gram, wide = None, None, False
                sigma = torch.linalg.vector_norm(g.float())
            else:
                m = _as_matrix(g)
                gram, wide = _gram(m)
                sigma = top_singular_value(gram)
            if self.c_rel is None:
                c = self.c
            else:
                avg = self.level(i)
                self.observe(i, sigma)
                if avg is None:  # no σ₁ history yet: pass this step unclipped
                    self.count.add(0, 1)
                    continue
                c = (self.c_rel * avg).clamp_min(_TINY)
            if m is None:  # a vector: the norm version
                g.div_(torch.sqrt(1.0 + (sigma / c) ** 2))
            else:
                g.copy_(_soft_clip_matrix(m, gram, wide, c, self.iters).reshape(g.shape))
            self.count.add(sigma > c, 1)
