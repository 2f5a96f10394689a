"""Synthetic entry-wise Cauchy contamination of real gradients (paper 1's controlled
heavy-tail experiment, spec §4 E4).

Each gradient entry independently, with probability ε, receives an extra
Cauchy(0, γ·RMS(G)) draw, where RMS(G) is the root-mean-square of that tensor's
clean gradient at this step: E_ij ~ (1−ε)·0 + ε·Cauchy(0, γ·RMS), added on top of
the minibatch noise the gradient already has. Scaling by the current RMS keeps
the contamination a fixed size *relative* to the signal through training.

Used through the trainer's grad-transform hook (``grad_transform = "cauchy_noise"``);
draws come from the transform's own generator, which checkpoints save and restore.
"""

from __future__ import annotations

import torch
from torch import nn

from geomopt.noise.samplers import cauchy


def cauchy_gradient_noise(model: nn.Module, *, eps: float = 0.02, gamma: float = 1.0, seed: int = 0):
    """Factory for the trainer: returns ``apply(step)`` adding the contamination in place."""
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"cauchy_noise: eps must be in [0, 1], got {eps!r}")
    if not gamma > 0:
        raise ValueError(f"cauchy_noise: gamma must be > 0, got {gamma!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(int(seed))

    @torch.no_grad()
    def apply(step: int) -> None:
        for p in params:
            g = p.grad
            if g is None:
                continue
            hit = torch.rand(g.shape, generator=gen) < eps
            draw = torch.where(hit, cauchy(g.shape, 1.0, gen), 0.0).to(device=g.device, dtype=g.dtype)
            rms = torch.linalg.vector_norm(g) / g.numel() ** 0.5
            g.add_(draw * (gamma * rms))

    apply.state_dict = lambda: {"generator": gen.get_state()}
    apply.load_state_dict = lambda d: gen.set_state(d["generator"])
    return apply
