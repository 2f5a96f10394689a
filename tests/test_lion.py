"""Lion (geomopt.optim.lion) against a hand-written reference of Chen et al. 2023, Algorithm 2."""

import copy

import pytest
import torch

from geomopt.optim import build_optimizers
from geomopt.optim.lion import Lion


def _reference(theta, grads, lr, b1, b2, wd):
    m = torch.zeros_like(theta)
    for g in grads:
        c = b1 * m + (1 - b1) * g
        theta = theta - lr * (torch.sign(c) + wd * theta)
        m = b2 * m + (1 - b2) * g
    return theta


def _grads(n, shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(n)]


def test_matches_hand_written_reference():
    theta0 = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = _grads(10, theta0.shape)
    x = theta0.clone().requires_grad_(True)
    opt = Lion([x], lr=0.01, betas=(0.9, 0.99), weight_decay=0.3)
    for g in grads:
        x.grad = g
        opt.step()
    torch.testing.assert_close(x.detach(), _reference(theta0, grads, 0.01, 0.9, 0.99, 0.3), rtol=1e-12, atol=1e-14)


def test_state_dict_round_trip():
    theta0 = torch.randn(5, dtype=torch.float64)
    grads = _grads(8, theta0.shape, seed=2)
    full = theta0.clone().requires_grad_(True)
    o = Lion([full], lr=0.05, weight_decay=0.1)
    for g in grads:
        full.grad = g
        o.step()
    half = theta0.clone().requires_grad_(True)
    o1 = Lion([half], lr=0.05, weight_decay=0.1)
    for g in grads[:4]:
        half.grad = g
        o1.step()
    resumed = half.detach().clone().requires_grad_(True)
    o2 = Lion([resumed], lr=0.05, weight_decay=0.1)
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))
    for g in grads[4:]:
        resumed.grad = g
        o2.step()
    assert torch.equal(resumed, full)


def test_scheduler_groups_registry_and_errors():
    a = torch.zeros(3, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    opt = Lion([{"params": [a]}, {"params": [b], "lr": 0.0}], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    opt.step()
    sched.step()
    opt.step()
    torch.testing.assert_close(a.detach(), torch.full((3,), -0.15))  # −0.1 − 0.05
    assert torch.equal(b.detach(), torch.zeros(3))
    (built,) = build_optimizers("lion", torch.nn.Linear(3, 2))
    assert isinstance(built, Lion)
    for bad in (dict(lr=-1.0), dict(betas=(0.9, 1.0)), dict(weight_decay=-1.0)):
        with pytest.raises(ValueError):
            Lion([torch.zeros(1, requires_grad=True)], **bad)
