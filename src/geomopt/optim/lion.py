"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2):

    c ← β1·m + (1−β1)·g
    θ ← θ − lr·(sign(c) + λ·θ)        # decoupled weight decay on the old θ
    m ← β2·m + (1−β2)·g

Defaults follow the paper's recommendation (β1, β2) = (0.9, 0.99); lr is typically 3–10× smaller
than AdamW's and λ 3–10× larger. Used as a baseline by papers 2 and 3.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils._foreach_utils import _group_tensors_by_device_and_dtype
from geomopt.optim.closure import closure_loss


def lion_update_(params: list[Tensor], grads: list[Tensor], ms: list[Tensor], *, lr: float, beta1: float,
                 beta2: float, weight_decay: float) -> None:
    """One Lion step on lists of same-device, same-dtype tensors, in place (θ, m)."""
    c = torch._foreach_lerp(grads, ms, beta1)  # β1·m + (1−β1)·g
    torch._foreach_sign_(c)
    if weight_decay != 0.0:
        torch._foreach_mul_(params, 1.0 - lr * weight_decay)
    torch._foreach_add_(params, c, alpha=-lr)
    torch._foreach_lerp_(ms, grads, 1.0 - beta2)  # β2·m + (1−β2)·g


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0):
        if not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f"Lion: lr must be >= 0, got {lr!r}")
        if not (0.0 <= betas[0] <= 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Lion: betas must satisfy 0 <= beta1 <= 1, 0 <= beta2 < 1; got {betas}")
        if weight_decay < 0:
            raise ValueError(f"Lion: weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

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
            for (dev_params, dev_grads, dev_ms), _ in _group_tensors_by_device_and_dtype([params, grads, ms]).values():
                lion_update_(dev_params, dev_grads, dev_ms, lr=group["lr"], beta1=group["betas"][0],
                             beta2=group["betas"][1], weight_decay=group["weight_decay"])
        return loss
