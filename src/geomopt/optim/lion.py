"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):

    c ← β1·m + (1−β1)·g
    θ ← θ − lr·(sign(c) + λ·θ)        # decoupled weight decay on the old θ
    m ← β2·m + (1−β2)·g

Defaults follow the paper's recommendation (β1, β2) = (0.9, 0.99); lr is typically 3–10× smaller
than AdamW's and λ 3–10× larger. Used as a baseline by papers 2 and 3. ``fused`` (None: on for
large groups where a compiler exists) runs the step compiled (``geomopt.optim.fused``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from geomopt.optim.closure import closure_loss
from geomopt.optim.fused import by_device_and_dtype, fused_step


def lion_update_(params: list[Tensor], grads: list[Tensor], ms: list[Tensor], *, lr, beta1, beta2,
                 weight_decay, decay: bool = True) -> None:
    """One Lion step on lists of same-device, same-dtype tensors, in place (θ, m). A pure kernel
    for ``fused_step``: the scalars are floats (eager) or 0-d tensors (compiled)."""
    for p, g, m in zip(params, grads, ms):
        c = torch.lerp(g, m, beta1).sign_()  # sign(β1·m + (1−β1)·g)
        if decay:
            p.mul_(1.0 - lr * weight_decay)
        p.add_(c, alpha=-lr)
        m.lerp_(g, 1.0 - beta2)  # β2·m + (1−β2)·g


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, fused: bool | None = None):
        if not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f"Lion: lr must be >= 0, got {lr!r}")
        if not (0.0 <= betas[0] <= 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Lion: betas must satisfy 0 <= beta1 <= 1, 0 <= beta2 < 1; got {betas}")
        if weight_decay < 0:
            raise ValueError(f"Lion: weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=fused))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, ms = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lion does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                ms.append(state["exp_avg"])
            if not params:
                continue
            hyper = dict(lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                         weight_decay=group["weight_decay"])
            for lists in by_device_and_dtype([params, grads, ms]):
                fused_step(lion_update_, lists, hyper, dict(decay=group["weight_decay"] != 0),
                           group.get("fused"))
        return loss
