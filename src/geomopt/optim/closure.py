"""The one closure convention of every optimizer here, as in torch.optim."""

from __future__ import annotations

from typing import Callable

import torch


def closure_loss(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
    """Re-evaluate the model with gradients enabled (``step`` runs under no_grad) and return the loss."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()
