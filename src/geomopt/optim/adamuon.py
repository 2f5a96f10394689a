"""AdaMuon (Si et al. 2025, arXiv 2507.11005, Algorithm 1), a baseline of paper 2 (DeVA).

For a matrix W (conv filters as (out, in·kh·kw)) with gradient G, per the spec's table:
    M ← β1·M + G                           # no (1−β1) factor
    O ← msign(sign(N)),  N = Nesterov ? G + β1·M : M
    V ← β2·V + (1−β2)·O⊙O                  # second moment of the orthogonalised direction
    Ô ← O / (√V + ε)
    W ← W − η·(0.2·√(nm)/‖Ô‖_F · Ô + λ·W)  # rescaled to update RMS 0.2, decoupled WD
No bias correction: the RMS rescaling removes any global factor (only ε would notice).
msign is torch's Muon Newton–Schulz (bf16, 5 steps), shared with Muon and DeVA-S∞, or with
``orthogonalizer="authors"`` the DeVA authors' msign (geomopt.optim.orthogonalize).
Defaults (lr 1e-3, betas (0.95, 0.95), eps 1e-8, WD 0, Nesterov off) are ours, not the paper's.
"""

from __future__ import annotations

import math

import torch

from geomopt.optim.orthogonalize import NS_COEFFICIENTS, check_orthogonalizer, msign
from geomopt.optim.routing import as_matrix
from geomopt.optim.closure import closure_loss


def adamuon_update(grad: torch.Tensor, momentum: torch.Tensor, second_moment: torch.Tensor, *, beta1: float,
                   beta2: float, eps: float, nesterov: bool, rms_scale: float, ns_coefficients, ns_steps: int,
                   orthogonalizer: str = "newton_schulz") -> torch.Tensor:
    """The AdaMuon direction at RMS ``rms_scale``; ``momentum``/``second_moment`` updated in place."""
    momentum.mul_(beta1).add_(grad)
    direction = grad + beta1 * momentum if nesterov else momentum
    ortho = msign(direction.sign(), ns_coefficients, ns_steps, orthogonalizer)
    second_moment.mul_(beta2).addcmul_(ortho, ortho, value=1 - beta2)
    adapted = ortho / (second_moment.sqrt() + eps)
    return adapted.mul_(rms_scale * math.sqrt(adapted.numel()) / adapted.norm().clamp(min=1e-12))


class AdaMuon(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.95, 0.95), eps: float = 1e-8,
                 weight_decay: float = 0.0, nesterov: bool = False, rms_scale: float = 0.2,
                 ns_coefficients=NS_COEFFICIENTS, ns_steps: int = 5, orthogonalizer: str = "newton_schulz"):
        if not lr >= 0.0:
            raise ValueError(f"AdaMuon: lr must be >= 0, got {lr}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdaMuon: betas must be two numbers in [0, 1), got {betas}")
        if not eps >= 0.0 or not weight_decay >= 0.0:
            raise ValueError(f"AdaMuon: eps and weight_decay must be >= 0, got {eps}, {weight_decay}")
        check_orthogonalizer(orthogonalizer, "AdaMuon")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      nesterov=nesterov, rms_scale=rms_scale,
                                      ns_coefficients=tuple(ns_coefficients), ns_steps=ns_steps,
                                      orthogonalizer=orthogonalizer))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        for p in self.param_groups[-1]["params"]:
            if p.ndim < 2:
                raise ValueError(f"AdaMuon takes matrices (or conv filters); got a parameter of shape "
                                 f"{tuple(p.shape)}: route it to AdamW (geomopt.optim.route_params)")

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = as_matrix(p.grad).float()
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(grad)
                    state["second_moment"] = torch.zeros_like(grad)
                update = adamuon_update(grad, state["momentum"], state["second_moment"], beta1=beta1, beta2=beta2,
                                        eps=group["eps"], nesterov=group["nesterov"], rms_scale=group["rms_scale"],
                                        ns_coefficients=group["ns_coefficients"], ns_steps=group["ns_steps"],
                                        orthogonalizer=group.get("orthogonalizer", "newton_schulz"))
                if group["weight_decay"] > 0:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.reshape(p.shape).to(p.dtype), alpha=-group["lr"])
        return loss
