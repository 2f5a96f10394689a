import copy

import pytest
import torch

from geomopt.optim.muon import Muon


def _run(opt_cls, params, steps=5, seed=0, **hp):
    params = [p.detach().clone().requires_grad_(True) for p in params]
    opt = opt_cls(params, **hp)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return params, opt


def test_equals_torch_muon_on_matrices():
    torch.manual_seed(0)
    ps = [torch.randn(16, 8), torch.randn(8, 32)]
    ours, _ = _run(Muon, ps, lr=0.02, weight_decay=0.01)
    ref, _ = _run(torch.optim.Muon, ps, lr=0.02, weight_decay=0.01)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def test_conv_filter_is_muon_on_its_matrix_view():
    torch.manual_seed(1)
    conv = torch.randn(8, 3, 3, 3)
    ours, _ = _run(Muon, [conv], lr=0.02)
    ref, _ = _run(torch.optim.Muon, [conv.reshape(8, 27)], lr=0.02)
    assert torch.equal(ours[0].reshape(8, 27), ref[0])


def test_state_dict_round_trip():
    torch.manual_seed(2)
    p0 = [torch.randn(6, 6)]
    full, _ = _run(Muon, p0, steps=6, lr=0.05)
    half, opt = _run(Muon, p0, steps=3, lr=0.05)
    sd = copy.deepcopy(opt.state_dict())
    q = [half[0].detach().clone().requires_grad_(True)]
    opt2 = Muon(q, lr=0.05)
    opt2.load_state_dict(sd)
    gen = torch.Generator().manual_seed(0)  # the seed _run uses
    for _ in range(3):
        torch.randn((6, 6), generator=gen)
    for _ in range(3):
        q[0].grad = torch.randn((6, 6), generator=gen)
        opt2.step()
    assert torch.equal(q[0], full[0])


def test_rejects_vectors_and_bad_hparams():
    with pytest.raises(ValueError, match="route it to AdamW"):
        Muon([torch.zeros(4, requires_grad=True)])
    with pytest.raises(ValueError):
        Muon([torch.zeros(4, 4, requires_grad=True)], lr=-1.0)


def test_scheduler_drives_lr():
    p = torch.zeros(4, 4, requires_grad=True)
    opt = Muon([p], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    p.grad = torch.ones(4, 4)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
