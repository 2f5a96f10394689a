"""How often a clip acted: the ``clip_frac`` every clipping transform (and ClipMuon) reports.

A clip counts *units* (entries for an entry-wise clip, matrices for a spectral or norm clip) and
the share of them it acted on since the last read. "Acted" is the clip's own threshold test:
|G/s| > t for an entry-wise ψ (for the hard clip exactly the entries it changed; a smooth ψ
departs from the identity there), σ₁ > τ for a spectral clip (the matrices it changed: below τ
the hard clip is an exact no-op), σ₁ > c for SPECTRA's soft clip (its top σ is cut by ≥ 29%
there, while every matrix is shrunk a little), ‖g‖ > max_norm for a norm clip. The counts stay
tensors on the gradients' device, so counting costs no host sync; ``read()`` syncs once. The
counts since the last read are part of a transform's checkpointed state, so that a resumed run
logs the same rates as an uninterrupted one.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ClipCount:
    """Units seen and units clipped since the last ``read()``."""

    def __init__(self) -> None:
        self.hit: Tensor | int = 0
        self.seen: Tensor | int = 0

    def add(self, hit: Tensor | int, seen: Tensor | int) -> None:
        """``hit`` of ``seen`` units were clipped (a bool or integer tensor, summed here)."""
        if isinstance(hit, Tensor):
            hit = hit.sum()
        self.hit = self.hit + hit
        self.seen = self.seen + seen

    def read(self) -> dict[str, float]:
        """``{"clip_frac": hit / seen}`` since the last read (``{}`` when nothing was seen), then reset."""
        hit, seen = float(self.hit), float(self.seen)
        self.hit, self.seen = 0, 0
        return {"clip_frac": hit / seen} if seen > 0 else {}

    def state_dict(self) -> dict[str, float]:
        return {"hit": float(self.hit), "seen": float(self.seen)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.hit, self.seen = state["hit"], state["seen"]


def count_beyond(count: ClipCount | None, y: Tensor, t: float | Tensor) -> None:
    """Add to ``count`` the entries of ``y`` (= G/s) beyond ±t, out of the observed (nonzero) ones
    (equally: of G beyond the bound t·s, a tensor broadcastable to G)."""
    if count is not None:
        count.add(y.abs() > t, torch.count_nonzero(y))
