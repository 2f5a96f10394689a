import copy

import pytest
import torch
from torch.optim._muon import _adjust_lr, _zeropower_via_newtonschulz

from geomopt.optim.clip_muon import ClipMuon
from geomopt.optim.clip_rate import ClipCount
from geomopt.optim.grad_transforms import MAD_TO_SIGMA, build_grad_transform, shrink_tensors_

SHAPES = [(16, 8), (8, 32)]


def _grads(steps, seed=0, outlier=False):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        gs = [torch.randn(s, generator=gen) for s in SHAPES]
        if outlier:
            gs[0][2, 3] = 1e4
        out.append(gs)
    return out


def _run(opt_cls, grads, p0=None, **hp):
    torch.manual_seed(0)
    params = [torch.randn(s).requires_grad_(True) for s in SHAPES] if p0 is None else p0
    opt = opt_cls(params, **hp)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    return params, opt


HP = dict(lr=0.02, momentum=0.95, weight_decay=0.01)


@pytest.mark.parametrize("position", ["grad", "momentum"])
def test_clipping_off_is_torch_muon_bitwise(position):
    g = _grads(5)
    ours, _ = _run(ClipMuon, g, psi=None, position=position, **HP)
    ref, _ = _run(torch.optim.Muon, g, **HP)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def test_grad_position_is_muon_on_clipped_gradients():
    g = _grads(4, outlier=True)
    ours, _ = _run(ClipMuon, g, psi="hard", t=3.0, scale="mad", **HP)
    clipped = []
    for gs in g:
        row = []
        for x in gs:
            s = MAD_TO_SIGMA * x.abs().median()
            row.append(x.clamp(-3 * s, 3 * s))
        clipped.append(row)
    ref, _ = _run(torch.optim.Muon, clipped, **HP)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_momentum_position_matches_its_definition():
    g = _grads(4, outlier=True)
    ours, _ = _run(ClipMuon, g, psi="soft", t=2.0, scale="rms", position="momentum", **HP)
    torch.manual_seed(0)
    params = [torch.randn(s) for s in SHAPES]
    bufs = [torch.zeros(s) for s in SHAPES]
    mu, lr, wd = HP["momentum"], HP["lr"], HP["weight_decay"]
    for gs in g:
        for p, x, buf in zip(params, gs, bufs):
            buf.mul_(mu).add_(x, alpha=1 - mu)
            u = (1 - mu) * x + mu * buf  # Nesterov
            s = u.square().mean().sqrt()
            y = u / s
            u = y / torch.sqrt(1 + (y / 2.0) ** 2)
            o = _zeropower_via_newtonschulz(u, (3.4445, -4.7750, 2.0315), 5, 1e-7)
            p.mul_(1 - lr * wd).add_(o, alpha=-_adjust_lr(lr, None, p.shape))
    for a, b in zip(ours, params):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=2e-3 * b.abs().max().item())


def test_clipped_update_ignores_how_large_the_outlier_is():
    g = _grads(3, outlier=True)  # outlier 1e4 at (2, 3)
    smaller = [[x.clone() for x in gs] for gs in g]
    for gs in smaller:
        gs[0][2, 3] = 50.0  # still far beyond the 3·MAD threshold
    a, _ = _run(ClipMuon, g, psi="hard", scale="mad", **HP)
    b, _ = _run(ClipMuon, smaller, psi="hard", scale="mad", **HP)
    assert torch.equal(a[0], b[0])  # medians do not see the outlier's size
    plain_a, _ = _run(torch.optim.Muon, g, **HP)
    plain_b, _ = _run(torch.optim.Muon, smaller, **HP)
    plain = (plain_a[0] - plain_b[0]).abs().max()
    assert plain > 1e-3
    a, _ = _run(ClipMuon, g, psi="hard", **HP)  # the default geometric-mean scale: log(1e4/50)/n of a shift
    b, _ = _run(ClipMuon, smaller, psi="hard", **HP)
    assert (a[0] - b[0]).abs().max() < 0.2 * plain  # rows of 8 entries here: real rows are ≥ 64


def test_state_dict_round_trip():
    g = _grads(6)
    hp = dict(psi="smooth", t=2.0, position="momentum", **HP)
    full, _ = _run(ClipMuon, g, **hp)
    half, opt = _run(ClipMuon, g[:3], **hp)
    sd = copy.deepcopy(opt.state_dict())
    q = [p.detach().clone().requires_grad_(True) for p in half]
    opt2 = ClipMuon(q, **hp)
    opt2.load_state_dict(sd)
    for gs in g[3:]:
        for p, x in zip(q, gs):
            p.grad = x.clone()
        opt2.step()
    for a, b in zip(q, full):
        assert torch.equal(a, b)


def test_param_groups_scheduler_and_conv():
    a, b = torch.randn(8, 8, requires_grad=True), torch.randn(4, 3, 3, 3, requires_grad=True)
    opt = ClipMuon([{"params": [a], "psi": None}, {"params": [b], "t": 1.5, "scale": "rms"}], lr=0.1)
    assert opt.param_groups[0]["psi"] is None and opt.param_groups[1]["t"] == 1.5
    assert opt.param_groups[1]["psi"] == "hard" and opt.param_groups[0]["scale"] == "rowcol_geo"
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    a.grad, b.grad = torch.randn(8, 8), torch.randn(4, 3, 3, 3)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.05)] * 2


def test_non_finite_gradients_do_not_poison_state():
    for position in ("grad", "momentum"):
        p = torch.randn(6, 6, requires_grad=True)
        opt = ClipMuon([p], lr=0.02, position=position)
        for k in range(3):
            g = torch.randn(6, 6)
            g[1, 1], g[2, 2] = float("nan"), float("inf")
            p.grad = g
            opt.step()
        assert torch.isfinite(p).all() and torch.isfinite(opt.state[p]["momentum_buffer"]).all()


def test_rejects_vectors_and_bad_hparams():
    with pytest.raises(ValueError, match="route it to AdamW"):
        ClipMuon([torch.zeros(4, requires_grad=True)])
    for bad in (dict(psi="tanh"), dict(t=0.0), dict(scale="std"), dict(position="after"), dict(lr=-1.0)):
        with pytest.raises(ValueError):
            ClipMuon([torch.zeros(4, 4, requires_grad=True)], **bad)


def test_shrink_tensors_rescale():
    x = torch.randn(10, 10)
    x[0, 0] = 100.0
    s = MAD_TO_SIGMA * x.abs().median()
    y, z = x.clone(), x.clone()
    shrink_tensors_([y], "hard", 3.0, "mad")
    shrink_tensors_([z], "hard", 3.0, "mad", rescale=False)
    torch.testing.assert_close(y, x.clamp(-3 * s, 3 * s))
    torch.testing.assert_close(z, (x / s).clamp(-3, 3))
    inside = x.abs() <= 3 * s
    assert torch.equal(y[inside], x[inside])  # the hard clip leaves unclipped entries bit for bit (no /s, ·s)
    count = ClipCount()
    shrink_tensors_([x.clone()], "hard", 3.0, "mad", count=count)
    assert count.read() == {"clip_frac": (~inside).sum().item() / x.numel()}


def test_shrunk_copies_reuse_one_buffer_per_matrix_outside_the_state():
    """The shrunk gradients are written into buffers kept between steps (no fresh matrix-sized tensor a step),
    p.grad is left alone, and the state dict holds what torch.optim.Muon's holds."""
    params, opt = _run(ClipMuon, _grads(2, outlier=True), psi="hard", **HP)
    first = {k: v.data_ptr() for k, v in opt._copies.items()}
    grads = [p.grad.clone() for p in params]
    opt.step()
    assert {k: v.data_ptr() for k, v in opt._copies.items()} == first and len(first) == len(params)
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads))
    _, ref = _run(torch.optim.Muon, _grads(2), **HP)
    assert [set(v) for v in opt.state_dict()["state"].values()] == [set(v) for v in ref.state_dict()["state"].values()]


@pytest.mark.parametrize("scale", ["mad", "rowcol_mad", "rowcol_geo"])
def test_grad_position_is_the_shrink_transform_in_front_of_muon(scale):
    """ClipMuon(position="grad") = the registry's ``shrink`` transform on p.grad, then torch's Muon: bit for bit;
    and ClipMuon leaves p.grad as it was."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 16, bias=False), torch.nn.Linear(16, 8, bias=False))
    ref_model = copy.deepcopy(model)
    hp = dict(psi="soft", t=2.0, scale=scale)
    ours = ClipMuon(model.parameters(), **hp, **HP)
    ref = torch.optim.Muon(ref_model.parameters(), **HP)
    shrink = build_grad_transform("shrink", ref_model, {"params": "all", **hp})
    for gs in _grads(3, outlier=True):
        gs = [gs[0][:16, :8].contiguous(), gs[1][:8, :16].contiguous()]
        for p, q, g in zip(model.parameters(), ref_model.parameters(), gs):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        shrink(0)
        ref.step()
        for p, g in zip(model.parameters(), gs):
            assert torch.equal(p.grad, g)
    for a, b in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)


def test_registry_builds_clip_muon_for_hidden_matrices():
    from geomopt.optim import build_optimizers

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
    opts = build_optimizers("clip_muon", model, {"position": "momentum"})
    assert isinstance(opts[0], ClipMuon) and isinstance(opts[1], torch.optim.AdamW)
    assert opts[0].defaults["position"] == "momentum" and opts[0].defaults["psi"] == "hard"
    assert all(p.ndim == 2 for g in opts[0].param_groups for p in g["params"])


def test_default_scale_clips_a_gaussian_with_unequal_row_and_column_scales_at_about_the_gaussian_rate():
    """3·scale should cut ≈ 0.27% of a Gaussian matrix whatever its row/column scales (a per-matrix MAD cuts
    the large rows instead: structure, not outliers); experiments/paper1/clip_scale.py measures the choice."""
    from geomopt.optim.grad_transforms import matrix_scale

    gen = torch.Generator().manual_seed(0)
    rows, cols = torch.exp(torch.randn(256, 1, generator=gen)), torch.exp(torch.randn(1, 512, generator=gen))
    g = torch.randn(256, 512, generator=gen) * rows * cols
    default = ClipMuon([torch.zeros(2, 2, requires_grad=True)]).defaults["scale"]
    rate = (g.abs() > 3 * matrix_scale(g, default)).float().mean().item()
    assert 0.0015 < rate < 0.005, rate
    assert (g.abs() > 3 * matrix_scale(g, "mad")).float().mean().item() > 0.1  # the old per-matrix scale
    gr = torch.randn(256, 512, generator=gen) * rows  # unequal row scales only
    assert 0.0015 < (gr.abs() > 3 * matrix_scale(gr, default)).float().mean().item() < 0.005
