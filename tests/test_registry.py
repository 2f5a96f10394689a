"""Every registered optimizer: builds on a small model through the registry, and ``step(closure)``
re-evaluates the closure with gradients enabled and returns its loss (torch.optim's convention)."""

import pytest
import torch

from geomopt.optim import OPTIMIZERS, build_optimizers, get_spec


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 8)
        self.body = torch.nn.Linear(8, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.norm(torch.relu(self.body(self.emb(x)))))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_returns_closure_loss(name):
    torch.manual_seed(0)
    model = _Tiny()
    opts = build_optimizers(name, model)
    x = torch.randint(0, 10, (16,))

    def closure():
        for o in opts:
            o.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), x)
        loss.backward()
        return loss

    for _ in range(3):  # past first-step conventions (SOAP / DeVA-S∞ build their basis first)
        losses = [o.step(closure) for o in opts]
    assert all(isinstance(v, torch.Tensor) and torch.isfinite(v) for v in losses)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of: adamw"):
        get_spec("adamw2")
