"""Clip-then-Muon: entry-wise clipping/shrinkage before Muon's orthogonalization (paper 1, C7).

**Reconstructed (paper text not available)**, spec §2.6. Each gradient matrix is
shrunk entry-wise with a scale computed from the matrix itself (no extra state) before Muon's
momentum: the ``shrink`` gradient transform (``grad_transforms.shrink_tensors_``) in front of Muon,
applied to copies of the gradients (``p.grad`` is left as it was):

    s = scale(G),   G̃ = s · ψ(G/s; t)                                  (position="grad", default)
    B ← μB + (1−μ)G̃,  U = (1−μ)G̃ + μB (Nesterov),  O = NS5(U),  θ ← θ(1 − lr·wd) − lr·α·O

The scale (``grad_transforms.SCALES``) is per matrix (``"mad"``, ``"rms"``), per row / column
(``"row_mad"``, ``"col_mad"``) or rank-1 (``"rowcol_mad"``, and ``"rowcol_geo"``, the default),
chosen by measurement (``experiments/paper1/clip_scale.py``, results/paper1/clip_scale.json): on
the hidden-matrix gradients of the paper-1 char GPT, a per-matrix MAD puts 5.8% of entries beyond
3·scale — the matrix's *structure*, rows and columns of unequal scale — against 0.27% for a
Gaussian; the rank-1 geometric-mean scale puts 0.22% there and still catches every large Cauchy
draw of the contaminated control (the rank-1 MAD does as well, 0.31%, at ~30× the cost).
With ``position="momentum"`` the shrink acts on U instead (after Nesterov, before
Newton–Schulz); NS is scale-invariant, so there only the relative shrinkage
ψ(U/s) matters and U is not scaled back. That position has its own step, built on
torch's ``_zeropower_via_newtonschulz`` and ``_adjust_lr``. With ``psi=None`` this is
``torch.optim.Muon`` exactly (``geomopt.optim.muon.Muon``: bit-exact on 2-D weights).
Default ψ is the hard clip ("entry-wise clipping" in the abstract); t is in units of s.
Non-finite gradient entries are zeroed when clipping is on. A 1-D parameter raises
ValueError (route it to AdamW). ``stats()`` gives ``{"clip_muon_clip_frac": share of the entries
beyond ±t·s since the last call}`` (``clip_rate``), which the trainer logs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from geomopt.optim import shard
from geomopt.optim.clip_rate import ClipCount
from geomopt.optim.closure import closure_loss
from geomopt.optim.fused import fused_step
from geomopt.optim.grad_transforms import SCALES, shrink_tensors_
from geomopt.optim.muon import Muon, orthogonalize
from geomopt.optim.shrink import check_psi, check_threshold, zero_nonfinite_
from geomopt.optim.torch_private import adjust_lr as _adjust_lr

POSITIONS = ("grad", "momentum")


def shrink_copies(grads: list[Tensor], outs: list[Tensor], *, psi: str, t: float, scale: str, slope: float,
                  gamma: float, rescale: bool) -> tuple[Tensor, Tensor]:
    """The shrink transform on copies of ``grads`` written into ``outs`` (tensors of the same shapes), and the
    entries beyond ±t·s and the nonzero ones: a pure kernel for ``geomopt.optim.fused`` (the counts are
    returned, not accumulated)."""
    for out, g in zip(outs, grads):
        out.copy_(g)
    count = ClipCount()
    shrink_tensors_(outs, psi, t, scale, slope, gamma, rescale, count)
    return count.hit, count.seen


class ClipMuon(Muon):
    """Muon with entry-wise shrink of each gradient matrix (see module doc).

    Extra hyperparameters (per param group): psi ("hard" | "soft" | "redescend" | "smooth" |
    None), t, slope, gamma, scale (one of grad_transforms.SCALES), position ("grad" | "momentum"),
    fused (the shrink compiled by geomopt.optim.fused: None = its size rule, True, False).
    """

    def __init__(self, params, *, psi: str | None = "hard", t: float = 3.0, slope: float = 1.0,
                 gamma: float = 1.0, scale: str = "rowcol_geo", position: str = "grad", fused: bool | None = None,
                 **muon_hyper):
        self._clip_defaults = dict(psi=psi, t=t, slope=slope, gamma=gamma, scale=scale, position=position,
                                   fused=fused)
        super().__init__(params, **muon_hyper)
        self.defaults.update(self._clip_defaults)
        self.clip_count = ClipCount()
        self._copies: dict[int, Tensor] = {}  # the shrunk gradients' buffers (``_shrunk``)

    def stats(self) -> dict[str, float]:
        """{"clip_muon_clip_frac": share of entries clipped since the last call} (empty before any clip).
        Sharded under DDP (``shard``), each rank clipped its own matrices: a collective sums the counts."""
        if shard.sharing(self):
            hit, seen = shard.sum_over_ranks([self.clip_count.hit, self.clip_count.seen])
            self.clip_count.hit, self.clip_count.seen = hit, seen
        return {f"clip_muon_{k}": v for k, v in self.clip_count.read().items()}

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for k, v in self._clip_defaults.items():
            group.setdefault(k, v)
        group["psi"] = check_psi(group["psi"])
        check_threshold(group["t"], group["slope"], group["gamma"])
        if group["scale"] not in SCALES:
            raise ValueError(f"scale={group['scale']!r} unknown; choose one of: {', '.join(SCALES)}")
        if group["position"] not in POSITIONS:
            raise ValueError(f"position={group['position']!r} unknown; choose one of: {', '.join(POSITIONS)}")

    def _shrunk(self, params: list[Tensor], grads: list[Tensor], group: dict, rescale: bool = True) -> list[Tensor]:
        """The group's shrink transform on copies of ``grads`` (the clip counts go to ``clip_count``), compiled
        or eager as ``group["fused"]`` and ``geomopt.optim.fused.use_fused`` decide (compiled: one kernel for
        the scales, clip, counts and copies). The copies live in one buffer per parameter, kept between steps
        and out of the state dict: a fresh matrix-sized tensor every step costs page faults on a CPU (the
        bench's clip-then-Muon step went from ≈ 1.06 to ≈ 1.03× torch's Muon with this, one thread)."""
        outs = []
        for p, g in zip(params, grads):  # (p: a 2-D view, a new object each step: keyed by where its data is)
            buf = self._copies.get(p.data_ptr())
            if buf is None or buf.shape != g.shape or buf.dtype != g.dtype or buf.device != g.device:
                buf = self._copies[p.data_ptr()] = torch.empty_like(g, memory_format=torch.contiguous_format)
            outs.append(buf)
        static = {k: group[k] for k in ("psi", "t", "scale", "slope", "gamma")}
        tally = fused_step(shrink_copies, [grads, outs], {}, {**static, "rescale": rescale},
                           fused=group.get("fused"))
        self.clip_count.add(*tally)
        return outs

    def _matrix_grads(self, group: dict, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        if group["psi"] is None or group["position"] != "grad":
            return grads
        return self._shrunk(params, grads, group)

    @torch.no_grad()
    def step(self, closure=None):
        if all(g["psi"] is None or g["position"] == "grad" for g in self.param_groups):
            return super().step(closure)  # Muon's loop, with the shrink in _matrix_grads
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, bufs = self._matrix_views(group)
            if not params:
                continue
            if group["psi"] is None or group["position"] == "grad":
                self._muon_update(group, params, self._matrix_grads(group, params, grads), bufs)
            else:
                self._momentum_clip_step(group, params, grads, bufs)
        return loss

    def _momentum_clip_step(self, group: dict, params: list[Tensor], grads: list[Tensor],
                            bufs: list[Tensor]) -> None:
        """Muon's step (torch.optim._muon._single_tensor_muon) with ψ on U, after Nesterov, before NS."""
        lr, mu = group["lr"], group["momentum"]
        for p, g, buf in zip(params, grads, bufs):
            g = zero_nonfinite_(g.clone())
            buf.lerp_(g, 1 - mu)
            u = g.lerp(buf, mu) if group["nesterov"] else buf
            (u,) = self._shrunk([p], [u], group, rescale=False)  # NS5 is scale-invariant
            update = orthogonalize(u, group)
            p.mul_(1 - lr * group["weight_decay"])
            p.add_(update, alpha=-_adjust_lr(lr, group["adjust_lr_fn"], p.shape))
