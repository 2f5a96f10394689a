"""Stacey(p,2) and Stacey(p,p) (geomopt.optim.stacey): the equations, their special cases, the
torch.optim conventions (state, groups, schedulers, errors) and the foreach path."""

import copy

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from geomopt.optim import build_optimizers
from geomopt.optim.stacey import (Stacey, StaceyP2, StaceyPP, inverse_mirror_map, lp_direction, mirror_map,
                                  stacey_update_single_)

D = torch.float64


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=gen, dtype=D), torch.randn(5, generator=gen, dtype=D)]


def _grads(params, gen):
    return [torch.randn(p.shape, generator=gen, dtype=D) for p in params]


def _run(cls, steps, seed=0, **hp):
    params = [p.clone().requires_grad_(True) for p in _params(seed)]
    opt = cls(params, **hp)
    gen = torch.Generator().manual_seed(seed + 100)
    for _ in range(steps):
        for p, g in zip(params, _grads(params, gen)):
            p.grad = g
        opt.step()
    return params, opt


def test_p2_tau0_is_sgd_with_lion_style_momentum():
    lr, wd, eps, (b1, b2) = 0.05, 0.1, 1e-4, (0.9, 0.99)
    params, _ = _run(StaceyP2, 6, lr=lr, p=2.0, tau=0.0, weight_decay=wd, eps=eps, betas=(b1, b2))
    theta, m = _params(0), [torch.zeros_like(p) for p in _params(0)]
    gen = torch.Generator().manual_seed(100)
    for _ in range(6):
        for i, g in enumerate(_grads(theta, gen)):
            c = b1 * m[i] + (1 - b1) * g
            theta[i] = theta[i] - lr * c / (1 + eps) - lr * wd * theta[i]
            m[i] = b2 * m[i] + (1 - b2) * g
    for a, b in zip(params, theta):
        torch.testing.assert_close(a.detach(), b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dual", ["l2", "lp"])
def test_one_step_matches_the_equations(dual):
    lr, p, eps, wd, tau, alpha = 0.02, 3.5, 1e-4, 0.05, 0.08, 0.3
    theta0 = _params(1)[0]
    g = torch.randn(theta0.shape, dtype=D, generator=torch.Generator().manual_seed(5))
    x = theta0.clone().requires_grad_(True)
    opt = Stacey([x], lr=lr, p=p, eps=eps, weight_decay=wd, tau=tau, alpha=alpha,
                 dual=dual, betas=(0.9, 0.99))
    x.grad = g
    opt.step()
    c = 0.1 * g  # m₀ = 0
    if dual == "l2":
        z = theta0 - alpha * c
    else:
        w = theta0.sign() * theta0.abs() ** (p - 1) - alpha * c
        z = w.sign() * w.abs() ** (1 / (p - 1))
    s = c / (c.abs() ** ((p - 2) / (p - 1)) + eps)
    expected = tau * z + (1 - tau) * (theta0 - lr * s) - lr * wd * theta0
    torch.testing.assert_close(x.detach(), expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(opt.state[x]["z"], z, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(opt.state[x]["m"], 0.01 * g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dual", ["l2", "lp"])
def test_foreach_equals_single_tensor_path(dual):
    a, _ = _run(Stacey, 7, lr=0.03, p=4.0, tau=0.09, dual=dual, foreach=True)
    b, _ = _run(Stacey, 7, lr=0.03, p=4.0, tau=0.09, dual=dual, foreach=False)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-13)


def test_large_p_direction_is_sign():
    c = torch.tensor([0.3, -2.0, 5.0, -0.01], dtype=D)
    torch.testing.assert_close(lp_direction(c, 1e6, 0.0), c.sign(), rtol=1e-4, atol=0)
    torch.testing.assert_close(lp_direction(c, 2.0, 0.0), c)


@pytest.mark.parametrize("p", [3.0, 5.0])
def test_minus_direction_is_the_numerical_argmin(p):
    c = np.array([0.8, -1.5, 0.3])
    model = lambda z: float(c @ z + np.sum(np.abs(z) ** p) / p)  # noqa: E731
    res = minimize(model, np.zeros(3) + 0.01, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
    s = lp_direction(torch.tensor(c), p, 0.0).numpy()
    np.testing.assert_allclose(-s, res.x, atol=1e-3)
    # the ½‖·‖_p² step is −‖c‖_q^{(p−2)/(p−1)}·s(c)
    q = p / (p - 1)
    model2 = lambda z: float(c @ z + 0.5 * np.sum(np.abs(z) ** p) ** (2 / p))  # noqa: E731
    res2 = minimize(model2, np.zeros(3) + 0.01, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
    scale = np.sum(np.abs(c) ** q) ** ((p - 2) / ((p - 1) * q))
    np.testing.assert_allclose(-scale * s, res2.x, atol=1e-3)


def test_mirror_maps_are_inverse():
    z = torch.randn(50, dtype=D, generator=torch.Generator().manual_seed(3)) * 3
    z[0] = 0.0
    for p in (2.0, 3.0, 8.0):
        torch.testing.assert_close(inverse_mirror_map(mirror_map(z, p), p), z, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dual", ["l2", "lp"])
def test_z_starts_at_theta0_and_is_updated_in_place(dual):
    params, opt = _run(Stacey, 1, dual=dual)
    z_ptrs = [opt.state[p]["z"].data_ptr() for p in params]
    # z₀ = θ₀ (not zeros): with τ = 0 after one step z = θ₀ − α·c
    x = _params(0)[0].clone().requires_grad_(True)
    o = Stacey([x], lr=0.1, alpha=0.1, tau=0.0, dual="l2")
    g = torch.ones_like(x)
    x.grad = g
    o.step()
    torch.testing.assert_close(o.state[x]["z"], _params(0)[0] - 0.1 * 0.1 * g)
    gen = torch.Generator().manual_seed(9)
    for _ in range(3):
        for p, gg in zip(params, _grads(params, gen)):
            p.grad = gg
        opt.step()
    assert [opt.state[p]["z"].data_ptr() for p in params] == z_ptrs


@pytest.mark.parametrize("cls", [StaceyP2, StaceyPP])
def test_state_dict_round_trip_continues_identically(cls):
    hp = dict(lr=0.02, p=3.0, tau=0.1, alpha=0.05)
    full, _ = _run(cls, 8, **hp)
    half, opt = _run(cls, 4, **hp)
    sd = copy.deepcopy(opt.state_dict())
    fresh = [p.detach().clone().requires_grad_(True) for p in half]
    opt2 = cls(fresh, **hp)
    opt2.load_state_dict(sd)
    assert all(torch.equal(opt2.state[f]["z"], opt.state[h]["z"]) for f, h in zip(fresh, half))
    gen = torch.Generator().manual_seed(100)
    for _ in range(4):
        _grads(fresh, gen)  # the gradients the first half consumed
    for _ in range(4):
        for p, g in zip(fresh, _grads(fresh, gen)):
            p.grad = g
        opt2.step()
    for a, b in zip(fresh, full):
        assert torch.equal(a, b)


def test_scheduler_scales_the_primal_step_only():
    x = torch.zeros(3, dtype=D, requires_grad=True)
    opt = StaceyP2([x], lr=0.1, p=2.0, tau=0.0, weight_decay=0.0, eps=0.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x.grad = torch.ones(3, dtype=D)
    opt.step()
    first = x.detach().clone()  # −lr·c = −0.1·0.1
    z_first = opt.state[x]["z"].clone()  # −α·c = −1e-3·0.1
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    opt.step()  # c = 0.9·m + 0.1·g with m = 0.001
    c = 0.9 * 0.001 + 0.1
    torch.testing.assert_close(x.detach() - first, torch.full((3,), -0.05 * c, dtype=D))
    torch.testing.assert_close(opt.state[x]["z"] - z_first, torch.full((3,), -1e-3 * c, dtype=D))  # α unscheduled
    # lr = 0 stops the ℓp step, not the coupling: θ ← (1−τ)·θ + τ·z
    y0 = torch.randn(3, dtype=D)
    y = y0.clone().requires_grad_(True)
    o = StaceyPP([y], lr=0.0, tau=0.5, alpha=0.0)
    y.grad = torch.ones(3, dtype=D)
    o.step()
    torch.testing.assert_close(y.detach(), y0)  # z = θ₀ with α = 0


def test_tau_and_alpha_are_independent_of_lr():
    for lr in (1e-3, 0.1, 3.0):  # lr above 1 is allowed: τ does not grow with it
        opt = StaceyP2([torch.zeros(2, requires_grad=True)], lr=lr)
        assert (opt.param_groups[0]["tau"], opt.param_groups[0]["alpha"]) == (1e-3, 1e-3)
    assert "tau_ratio" not in opt.defaults and "alpha_ratio" not in opt.defaults


def test_param_groups_and_registry():
    a = torch.ones(3, dtype=D, requires_grad=True)
    b = torch.ones(3, dtype=D, requires_grad=True)
    opt = StaceyP2([{"params": [a]}, {"params": [b], "lr": 0.0, "tau": 0.0, "weight_decay": 0.0}], lr=0.1, p=2.0)
    a.grad, b.grad = torch.ones(3, dtype=D), torch.ones(3, dtype=D)
    opt.step()
    assert not torch.equal(a.detach(), torch.ones(3, dtype=D)) and torch.equal(b.detach(), torch.ones(3, dtype=D))
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    for name, cls in (("stacey_p2", StaceyP2), ("stacey_pp", StaceyPP)):
        (o,) = build_optimizers(name, model)
        assert isinstance(o, cls) and [g["weight_decay"] for g in o.param_groups] == [5e-4, 0.0]


def test_step_returns_the_closure_loss():
    x = torch.ones(2, dtype=D, requires_grad=True)
    opt = StaceyPP([x], lr=0.01)

    def closure():
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [dict(p=1.5), dict(p=float("inf")), dict(lr=-1.0), dict(betas=(1.5, 0.9)),
                                 dict(betas=(0.9, 1.0)), dict(eps=-1.0), dict(weight_decay=-0.1),
                                 dict(alpha=-1.0), dict(tau=-0.1), dict(tau=1.5),
                                 dict(dual="l1")])
def test_bad_hyperparameters_raise(bad):
    with pytest.raises(ValueError):
        Stacey([torch.zeros(2, requires_grad=True)], **bad)


def test_tau_set_above_one_in_a_param_group_raises_at_step():
    x = torch.zeros(2, requires_grad=True)
    opt = StaceyP2([x], lr=0.1)
    opt.param_groups[0]["tau"] = 1.5
    x.grad = torch.ones(2)
    with pytest.raises(ValueError, match="τ"):
        opt.step()


@pytest.mark.parametrize("beta1", [0.0, 0.9])
def test_paths_agree_in_float32_and_with_beta1_zero(beta1):
    x32 = torch.randn(6, generator=torch.Generator().manual_seed(4))
    x = x32.clone().requires_grad_(True)
    opt = StaceyPP([x], lr=0.01, p=3.0, tau=0.02, alpha=0.01, betas=(beta1, 0.999), foreach=True)
    g = torch.randn(6, generator=torch.Generator().manual_seed(5))
    for _ in range(2):
        x.grad = g
        opt.step()
    ref, z, m = x32.clone(), x32.clone(), torch.zeros(6)
    for _ in range(2):
        stacey_update_single_(ref, g, z, m, torch.empty(10), lr=0.01, alpha=0.01, tau=0.02, beta1=beta1,
                              beta2=0.999, p=3.0, eps=1e-8, weight_decay=5e-4, dual="lp")
    torch.testing.assert_close(x.detach(), ref)
    torch.testing.assert_close(opt.state[x]["m"], m)
    torch.testing.assert_close(m, 0.001 * g + 0.999 * 0.001 * g)  # β2·(1−β2)g + (1−β2)g
