"""Real minibatch gradient noise per parameter: N_b = g_b − ḡ (spec §4, E1), generic over a
model, a loss and batch iterators (no dependency on the trainer). Gradients come from
``torch.autograd.grad``, so the model's ``.grad`` fields are left untouched."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn


def _named_trainable(model: nn.Module) -> tuple[list[str], list[Tensor]]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [n for n, _ in named], [p for _, p in named]


def _grads(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor], batch) -> list[Tensor]:
    _, params = _named_trainable(model)
    with torch.enable_grad():
        loss = loss_fn(model, batch)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(params, grads)]


def mean_gradient(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor],
                  batches: Iterable[Any]) -> dict[str, Tensor]:
    """ḡ: the mean over micro-batches of ∇ loss_fn(model, batch), per parameter name."""
    names, _ = _named_trainable(model)
    total, count = None, 0
    for batch in batches:
        g = _grads(model, loss_fn, batch)
        total = g if total is None else [a.add_(b) for a, b in zip(total, g)]
        count += 1
    if count == 0:
        raise ValueError("mean_gradient: no batches given")
    return {n: t / count for n, t in zip(names, total)}


def gradient_noise(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor], batches: Iterable[Any],
                   large_batch: Iterable[Any]) -> dict[str, Tensor]:
    """Per parameter name, a tensor (n_batches, *shape) of g_b − ḡ, where g_b is the gradient on
    each of ``batches`` and ḡ the mean gradient over the micro-batches of ``large_batch``
    (pass ``[batch]`` for a single large batch). ``loss_fn(model, batch)`` returns a scalar."""
    ref = mean_gradient(model, loss_fn, large_batch)
    names = list(ref)
    noise: dict[str, list[Tensor]] = {n: [] for n in names}
    for batch in batches:
        for n, g in zip(names, _grads(model, loss_fn, batch)):
            noise[n].append(g - ref[n])
    if not noise[names[0]]:
        raise ValueError("gradient_noise: no minibatches given")
    return {n: torch.stack(v) for n, v in noise.items()}
