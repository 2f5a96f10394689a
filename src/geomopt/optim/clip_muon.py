"""Clip-then-Muon: entry-wise clipping/shrinkage before Muon's orthogonalization (paper 1, C7).

**Reconstructed (paper text not available)**, spec §2.6. Each gradient matrix is
shrunk entry-wise with a per-matrix scale (no extra state) before Muon's momentum:

    s = RMS(G) or 1.4826·median|G|,   G̃ = s · ψ(G/s; t)            (position="grad", default)
    B ← μB + (1−μ)G̃,  U = (1−μ)G̃ + μB (Nesterov),  O = NS5(U),  θ ← θ(1 − lr·wd) − lr·α·O

With ``position="momentum"`` the shrink acts on U instead (after Nesterov, before
Newton–Schulz); NS is scale-invariant, so there only the relative shrinkage
ψ(U/s) matters and U is not scaled back. That position has its own step, built on
torch's ``_zeropower_via_newtonschulz`` and ``_adjust_lr``. With ``psi=None`` this is
``torch.optim.Muon`` exactly (``geomopt.optim.muon.Muon``: bit-exact on 2-D weights).
Default ψ is the hard clip ("entry-wise clipping" in the abstract); t is in units of s.
Non-finite gradient entries are zeroed when clipping is on. A 1-D parameter raises
ValueError (route it to AdamW).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim._muon import _adjust_lr

from geomopt.optim.grad_transforms import SCALES, matrix_scale
from geomopt.optim.muon import Muon, orthogonalize
from geomopt.optim.routing import as_matrix
from geomopt.optim.shrink import apply_psi_, check_psi, check_threshold, zero_nonfinite_
from geomopt.optim.closure import closure_loss

CLIP_DEFAULTS = {"psi": "hard", "t": 3.0, "slope": 1.0, "gamma": 1.0, "scale": "mad", "position": "grad"}
POSITIONS = ("grad", "momentum")


def shrink_matrix(g: Tensor, psi: str, t: float, slope: float, gamma: float, scale: str,
                  rescale: bool = True) -> Tensor:
    """s·ψ(G/s; t) (or ψ(G/s; t) with ``rescale=False``) as a new tensor, s the per-matrix scale."""
    y = zero_nonfinite_(g.clone())
    s = matrix_scale(y, scale)
    apply_psi_(y.div_(s), psi, t, slope, gamma)
    return y.mul_(s) if rescale else y


class ClipMuon(Muon):
    """Muon with entry-wise shrink of each gradient matrix (see module doc).

    Extra hyperparameters (per param group): psi ("hard" | "soft" | "redescend" | "smooth" |
    None), t, slope, gamma, scale ("mad" | "rms"), position ("grad" | "momentum").
    """

    def __init__(self, params, *, psi: str | None = "hard", t: float = 3.0, slope: float = 1.0,
                 gamma: float = 1.0, scale: str = "mad", position: str = "grad", **muon_hyper):
        self._clip_defaults = dict(psi=psi, t=t, slope=slope, gamma=gamma, scale=scale, position=position)
        super().__init__(params, **muon_hyper)
        self.defaults.update(self._clip_defaults)

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

    def _matrix_grads(self, group: dict, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        if group["psi"] is None or group["position"] != "grad":
            return grads
        return [shrink_matrix(g, group["psi"], group["t"], group["slope"], group["gamma"], group["scale"])
                for g in grads]

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
            u = shrink_matrix(u, group["psi"], group["t"], group["slope"], group["gamma"], group["scale"],
                              rescale=False)  # NS5 is scale-invariant
            update = orthogonalize(u, group)
            p.mul_(1 - lr * group["weight_decay"])
            p.add_(update, alpha=-_adjust_lr(lr, group["adjust_lr_fn"], p.shape))
