"""signSGD with momentum (Bernstein et al. 2018, "signum"), a baseline of paper 2 (DeVA).

Per element, with decoupled weight decay before the step (as Muon and DeVA-ℓ∞):
    θ ← (1 − η·λ)·θ ;  m ← β·m + (1−β)·g ;  θ ← θ − η·sign(m)
It is DeVA-ℓ∞ with the gain Γ ≡ 1. With β = 0 it is plain signSGD. ``fused`` (None: on for large
groups where a compiler exists) runs the step compiled (``geomopt.optim.fused``).
"""

from __future__ import annotations

import torch

from geomopt.optim.closure import closure_loss
from geomopt.optim.fused import by_device_and_dtype, fused_step


def signsgd_step(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor], *,
                 lr, momentum, weight_decay, decay: bool = True) -> None:
    """One step in place; a pure kernel for ``fused_step`` (scalars: floats or 0-d tensors)."""
    for p, g, m in zip(params, grads, exp_avgs):
        if decay:
            p.mul_(1 - lr * weight_decay)
        m.lerp_(g, 1 - momentum)
        p.add_(m.sign(), alpha=-lr)


class SignSGD(torch.optim.Optimizer):
    """signSGD with an EMA momentum; defaults lr 1e-3, momentum 0.9, no weight decay."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
                 fused: bool | None = None):
        if not lr >= 0.0:
            raise ValueError(f"SignSGD: lr must be >= 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SignSGD: momentum must be in [0, 1), got {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"SignSGD: weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, fused=fused))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, exp_avgs = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
            if not params:
                continue
            hyper = dict(lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"])
            for lists in by_device_and_dtype([params, grads, exp_avgs]):
                fused_step(signsgd_step, lists, hyper, dict(decay=group["weight_decay"] > 0), group.get("fused"))
        return loss
