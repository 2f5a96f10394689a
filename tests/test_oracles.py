"""Oracle tests against pytorch-optimizer (kozistr/pytorch_optimizer, Apache-2.0; a test-only
dependency pinned in requirements.txt): identical gradients in, the same parameters out.

Where conventions differ: pytorch-optimizer's SOAP preconditions every axis of a conv filter
(four factors for (out, in, kh, kw), ``merge_dims`` off); ours views it as the (out, in·kh·kw)
matrix, as every matrix optimizer in this repo does, so only 2-D shapes are compared. Their
Lion/SignSGD apply the decoupled weight decay the same way (θ ← (1 − ηλ)θ before the step).
"""

import pytest
import torch

from geomopt.optim.lion import Lion
from geomopt.optim.signsgd import SignSGD
from geomopt.optim.soap import SOAP

oracle = pytest.importorskip("pytorch_optimizer", reason="test-only dependency: pip install -r requirements.txt")

SHAPES = [(12, 5), (7,), (5, 20)]


def _run(opt_cls, shapes, steps, seed=0, **hp):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).requires_grad_(True) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(steps)]
    opt = opt_cls(params, **hp)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in params]


@pytest.mark.parametrize("foreach", [False, True])
def test_lion_equals_pytorch_optimizer_bit_for_bit(foreach):
    hp = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    ours = _run(Lion, SHAPES, 6, fused=False, **hp)
    theirs = _run(oracle.Lion, SHAPES, 6, foreach=foreach, **hp)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


@pytest.mark.parametrize("foreach", [False, True])
def test_signsgd_equals_pytorch_optimizer_bit_for_bit(foreach):
    hp = dict(lr=1e-2, momentum=0.9, weight_decay=0.1)
    ours = _run(SignSGD, SHAPES, 6, fused=False, **hp)
    theirs = _run(oracle.SignSGD, SHAPES, 6, foreach=foreach, **hp)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_soap_matches_pytorch_optimizer_on_matrices():
    shapes = [(12, 5), (5, 20), (8, 8)]
    hp = dict(lr=3e-3, betas=(0.95, 0.95), weight_decay=0.01, precondition_frequency=3)
    ours = _run(SOAP, shapes, 10, **hp)
    theirs = _run(oracle.SOAP, shapes, 10, **hp)
    for a, b in zip(ours, theirs):
        assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-6
