"""DeVA-ℓ∞ / DeVA-S∞ (paper 2): each update against its equation written out in plain torch,
the spec's special cases (RMSprop, Adam, Muon), equivariance, steady state, and the
torch.optim contract (state_dict, param groups, schedulers, shapes, bad input)."""

import copy

import pytest
import torch
from torch.optim._muon import _zeropower_via_newtonschulz

from geomopt.optim.adamuon import AdaMuon
from geomopt.optim.deva import DevaLinf, DevaSinf, msign
from geomopt.optim.signsgd import SignSGD

NS = (3.4445, -4.7750, 2.0315)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # initial points drawn from the global RNG are the same in any test order


def _grads(shape, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(steps)]


def _run(opt_cls, p0, grads, **hp):
    p = p0.detach().clone().requires_grad_(True)
    opt = opt_cls([p], **hp)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach(), opt


# ----------------------------------------------------------------------------- DeVA-ℓ∞


def _linf_reference(p, grads, lr, beta1, beta2, eps, wd, nesterov):
    """Spec §2.1, literally."""
    p, m, v = p.clone(), torch.zeros_like(p), torch.zeros_like(p)
    for g in grads:
        p = (1 - lr * wd) * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * m * m
        gain = torch.sqrt(m * m / (v + eps))
        d = torch.sign((1 - beta1) * g + beta1 * m if nesterov else m)
        p = p - lr * gain * d
    return p


@pytest.mark.parametrize("nesterov", [False, True])
def test_linf_matches_its_equation(nesterov):
    p0, grads = torch.randn(5, 3), _grads((5, 3), 8)
    ours, _ = _run(DevaLinf, p0, grads, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, nesterov=nesterov)
    ref = _linf_reference(p0, grads, 0.01, 0.9, 0.99, 1e-5, 0.1, nesterov)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_linf_without_nesterov_is_m_over_root_ema_m2():
    p0, grads = torch.zeros(7), _grads(7, 4, seed=3)
    ours, opt = _run(DevaLinf, p0, grads, lr=1.0, betas=(0.8, 0.9))
    m, v, total = torch.zeros(7), torch.zeros(7), torch.zeros(7)
    for g in grads:
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * m ** 2
        total -= m / torch.sqrt(v + 1e-5)
    torch.testing.assert_close(ours, total, rtol=1e-5, atol=1e-6)


def test_linf_nesterov_leaves_grad_untouched():
    p = torch.randn(4, 4, requires_grad=True)
    opt = DevaLinf([p], nesterov=True)
    g = torch.randn(4, 4)
    p.grad = g.clone()
    opt.step()
    assert torch.equal(p.grad, g)


def test_linf_beta1_zero_is_rmsprop():
    p0, grads = torch.randn(6, 2), _grads((6, 2), 10, seed=1)
    # eps outside the √: exactly torch's RMSprop (no bias correction either).
    ours, _ = _run(DevaLinf, p0, grads, lr=0.01, betas=(0.0, 0.99), eps=1e-8, eps_inside_sqrt=False)
    ref, _ = _run(torch.optim.RMSprop, p0, grads, lr=0.01, alpha=0.99, eps=1e-8)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)
    # eps inside the √ (the code's default): RMSprop with g/√(v + 1e-5), written by hand.
    ours, _ = _run(DevaLinf, p0, grads, lr=0.01, betas=(0.0, 0.99))
    p, v = p0.clone(), torch.zeros_like(p0)
    for g in grads:
        v = 0.99 * v + 0.01 * g * g
        p = p - 0.01 * g / torch.sqrt(v + 1e-5)
    torch.testing.assert_close(ours, p, rtol=1e-6, atol=1e-7)


def test_linf_adam_like_ablation_is_adamw():
    p0, grads = torch.randn(3, 5), _grads((3, 5), 10, seed=2)
    ours, _ = _run(DevaLinf, p0, grads, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1,
                   second_moment="gradient", bias_correction=True, eps_inside_sqrt=False)
    ref, _ = _run(torch.optim.AdamW, p0, grads, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_linf_gain_tends_to_one_under_constant_gradient():
    p = torch.zeros(3, 3, requires_grad=True)
    opt = DevaLinf([p], betas=(0.5, 0.9), keep_gain=True)
    g = torch.randn(3, 3, generator=torch.Generator().manual_seed(15)).abs() + 1.0  # |g| ≫ √1e-5
    for _ in range(200):
        p.grad = g
        opt.step()
    torch.testing.assert_close(opt.state[p]["gain"], torch.ones(3, 3), rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- DeVA-S∞


def _eig_desc(a):
    return torch.linalg.eigh(a + 1e-30 * torch.eye(a.shape[0]))[1].flip(1)


def _sinf_reference(w, grads, lr, beta1, beta2, eps, wd, freq):
    """Spec §2.2 literally: M kept in the eigenbasis and rotated back/re-projected every step."""
    w = w.clone()
    n, m = w.shape
    g0 = grads[0]
    L, R = (1 - beta2) * (g0 @ g0.T), (1 - beta2) * (g0.T @ g0)  # first call: no update
    QL, QR = _eig_desc(L), _eig_desc(R)
    M, V = torch.zeros(n, m), torch.zeros(n, m)
    for t, g in enumerate(grads[1:], start=1):
        gt = QL.T @ g @ QR
        M = beta1 * M + (1 - beta1) * gt
        r, c = M.norm(dim=1), M.norm(dim=0)
        V = beta2 * V + (1 - beta2) * torch.outer(r, c)
        N = (1 - beta1) * gt + beta1 * M
        O = _zeropower_via_newtonschulz(N, NS, 5, 1e-7).float()
        gain = torch.sqrt(torch.outer(r, c)) / torch.sqrt(V + eps)
        U = 0.2 * max(n, m) ** 0.5 * gain * O
        eta_t = lr * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
        w = w - eta_t * (QL @ U @ QR.T)
        w = w - lr * wd * w
        M_orig = QL @ M @ QR.T
        L, R = beta2 * L + (1 - beta2) * g @ g.T, beta2 * R + (1 - beta2) * g.T @ g
        if t % freq == 0:
            for side in ("L", "R"):
                F, Q = (L, QL) if side == "L" else (R, QR)
                order = torch.argsort(torch.diagonal(Q.T @ F @ Q), descending=True)
                Q = Q[:, order]
                V = V[order, :] if side == "L" else V[:, order]
                Q = torch.linalg.qr(F @ Q)[0]
                QL, QR = (Q, QR) if side == "L" else (QL, Q)
        M = QL.T @ M_orig @ QR
    return w


def test_sinf_matches_its_equation_through_refreshes():
    # Square and full rank: a rank-deficient first gradient leaves the null-space eigenvectors
    # arbitrary (eigh's choice), and Γ is not invariant to rotations inside that space.
    w0, grads = torch.randn(5, 5), _grads((5, 5), 13, seed=4)
    ours, _ = _run(DevaSinf, w0, grads, lr=0.05, betas=(0.9, 0.95), weight_decay=0.1, precondition_frequency=4)
    ref = _sinf_reference(w0, grads, 0.05, 0.9, 0.95, 1e-8, 0.1, 4)
    # msign runs in bf16: tiny input differences (M re-projected only on refresh) can flip a rounding.
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-3)
    assert (ours - w0).abs().max() > 0.1  # it did move


def _ns_fp32(x, steps=5):
    """Muon's quintic Newton–Schulz in fp32 (to test equivariance without bf16 noise)."""
    a, b, c = NS
    y = x.T if x.shape[0] > x.shape[1] else x
    y = y / y.norm()
    for _ in range(steps):
        gram = y @ y.T
        y = a * y + (b * gram + c * gram @ gram) @ y
    return y.T if x.shape[0] > x.shape[1] else y


def test_direction_is_invariant_to_the_eigenbasis_rotation():
    torch.manual_seed(5)
    n_mat = torch.randn(8, 5, dtype=torch.float64)
    ql, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    qr, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    rotated = ql @ _ns_fp32(ql.T @ n_mat @ qr) @ qr.T
    torch.testing.assert_close(rotated, _ns_fp32(n_mat), rtol=0, atol=1e-10)
    # The bf16 msign the optimizers use: equal up to bf16 noise.
    x = n_mat.float()
    rotated_bf16 = ql.float() @ msign(ql.float().T @ x @ qr.float()) @ qr.float().T
    rel = (rotated_bf16 - msign(x)).norm() / msign(x).norm()
    assert rel < 0.03


def test_sinf_gain_tends_to_one_and_update_rms_is_point_two_eta_gain():
    w = torch.zeros(5, 5, requires_grad=True)
    opt = DevaSinf([w], lr=0.01, weight_decay=0.0, keep_gain=True)
    g = torch.randn(5, 5, generator=torch.Generator().manual_seed(6))
    for _ in range(300):
        w.grad = g
        opt.step()
    gain = opt.state[w]["gain"]
    torch.testing.assert_close(gain, torch.ones(5, 5), rtol=0, atol=1e-3)
    before = w.detach().clone()
    w.grad = g
    opt.step()
    rms = (w.detach() - before).pow(2).mean().sqrt()
    # NS returns singular values ≈ 1 (not exactly): RMS ≈ 0.2·η·mean(Γ) within NS's spread.
    assert 0.7 * 0.2 * 0.01 < rms < 1.3 * 0.2 * 0.01


def test_gamma_one_variant_is_muon_at_rms_point_two():
    w0, grads = torch.randn(6, 4), _grads((6, 4), 6, seed=7)
    ours, opt = _run(DevaSinf, w0, grads, lr=0.02, betas=(0.9, 0.95), weight_decay=0.0, gain="none",
                     skip_first_step=False)
    ref, _ = _run(torch.optim.Muon, w0, grads, lr=0.02, momentum=0.9, weight_decay=0.0,
                  adjust_lr_fn="match_rms_adamw")
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-3)
    assert "left_basis" not in opt.state[next(iter(opt.state))]  # Γ ≡ 1 keeps no eigenbasis


def test_sides_above_max_precond_dim_are_not_rotated():
    w0, grads = torch.randn(6, 4), _grads((6, 4), 5, seed=8)
    capped, opt = _run(DevaSinf, w0, grads, max_precond_dim=3)
    identity, _ = _run(DevaSinf, w0, grads, basis="identity")
    assert torch.equal(capped, identity)
    assert not any(k.endswith("basis") for k in opt.state[next(iter(opt.state))])
    half, opt = _run(DevaSinf, w0, grads, max_precond_dim=5)  # only the 4-wide side rotates
    state = opt.state[next(iter(opt.state))]
    assert "right_basis" in state and "left_basis" not in state


def test_first_step_convention():
    w0, grads = torch.randn(4, 4), _grads((4, 4), 1)
    skipped, _ = _run(DevaSinf, w0, grads)
    assert torch.equal(skipped, w0)
    moved, _ = _run(DevaSinf, w0, grads, skip_first_step=False)
    assert not torch.equal(moved, w0)


@pytest.mark.parametrize("variant", [dict(), dict(gain="instantaneous"), dict(sign_stabilized=True),
                                     dict(basis="identity")])
def test_sinf_variants_differ_from_default_and_leave_grad_untouched(variant):
    w0, grads = torch.randn(5, 3), _grads((5, 3), 6, seed=9)
    base, _ = _run(DevaSinf, w0, grads)
    w = w0.clone().requires_grad_(True)
    opt = DevaSinf([w], **variant)
    for g in grads:
        w.grad = g.clone()
        opt.step()
        assert torch.equal(w.grad, g)
    assert torch.equal(w.detach(), base) == (not variant)


def test_conv_filter_is_its_matrix_view():
    conv0, grads = torch.randn(8, 3, 3, 3), _grads((8, 3, 3, 3), 5, seed=10)
    ours, _ = _run(DevaSinf, conv0, grads)
    ref, _ = _run(DevaSinf, conv0.reshape(8, 27), [g.reshape(8, 27) for g in grads])
    assert torch.equal(ours.reshape(8, 27), ref)


@pytest.mark.parametrize("opt_cls,kw", [(DevaSinf, dict(precondition_frequency=3)), (DevaLinf, dict()),
                                        (AdaMuon, dict()), (SignSGD, dict())])
def test_state_dict_round_trip(opt_cls, kw):
    p0, grads = torch.randn(5, 4), _grads((5, 4), 12, seed=11)
    full, _ = _run(opt_cls, p0, grads, **kw)
    half, opt = _run(opt_cls, p0, grads[:7], **kw)
    q = half.clone().requires_grad_(True)
    opt2 = opt_cls([q], **kw)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for g in grads[7:]:
        q.grad = g.clone()
        opt2.step()
    assert torch.equal(q.detach(), full)


@pytest.mark.parametrize("opt_cls", [DevaSinf, DevaLinf, AdaMuon, SignSGD])
def test_param_groups_and_scheduler(opt_cls):
    a = torch.randn(4, 4, requires_grad=True)
    b = torch.randn(4, 4, requires_grad=True)
    b0 = b.detach().clone()
    opt = opt_cls([{"params": [a]}, {"params": [b], "lr": 0.0}], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        a.grad, b.grad = torch.randn(4, 4), torch.randn(4, 4)
        opt.step()
        sched.step()
    assert torch.equal(b.detach(), b0)  # lr 0 group frozen (DeVA-S∞ WD uses lr too)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="route it to"):
        DevaSinf([torch.zeros(4, requires_grad=True)])
    with pytest.raises(ValueError, match="route it to"):
        AdaMuon([torch.zeros(4, requires_grad=True)])
    w = [torch.zeros(3, 3, requires_grad=True)]
    for kw in [dict(lr=-1.0), dict(betas=(0.9, 1.0)), dict(gain="bogus"), dict(basis="x"), dict(eps=-1.0),
               dict(precondition_frequency=0)]:
        with pytest.raises(ValueError):
            DevaSinf(w, **kw)
    for kw in [dict(lr=-1.0), dict(second_moment="g2"), dict(weight_decay=-0.1)]:
        with pytest.raises(ValueError):
            DevaLinf(w, **kw)


def test_adamuon_matches_its_equation():
    w0, grads = torch.randn(6, 4), _grads((6, 4), 5, seed=12)
    ours, _ = _run(AdaMuon, w0, grads, lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    w, m, v = w0.clone(), torch.zeros(6, 4), torch.zeros(6, 4)
    for g in grads:
        m = 0.9 * m + g
        o = _zeropower_via_newtonschulz(torch.sign(m), NS, 5, 1e-7).float()
        v = 0.95 * v + 0.05 * o * o
        oh = o / (v.sqrt() + 1e-8)
        w = w - 0.01 * (0.2 * 24 ** 0.5 / oh.norm() * oh + 0.1 * w)
    torch.testing.assert_close(ours, w, rtol=0, atol=1e-5)


def test_signsgd_matches_its_equation():
    p0, grads = torch.randn(7), _grads(7, 5, seed=13)
    ours, _ = _run(SignSGD, p0, grads, lr=0.1, momentum=0.5, weight_decay=0.2)
    p, m = p0.clone(), torch.zeros(7)
    for g in grads:
        p = p * (1 - 0.1 * 0.2)
        m = 0.5 * m + 0.5 * g
        p = p - 0.1 * torch.sign(m)
    torch.testing.assert_close(ours, p, rtol=1e-6, atol=1e-7)


def test_registry_builds_and_steps_every_paper2_optimizer():
    from torch import nn

    from geomopt.optim import OPTIMIZERS, build_optimizers

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LayerNorm(36), nn.Linear(36, 8))
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.body(x))

    names = [n for n in OPTIMIZERS if n.startswith(("deva", "soap", "signsgd", "adamuon"))]
    assert {"deva_linf", "deva_sinf", "deva_sinf_noeig", "deva_sinf_gamma1", "soap", "signsgd", "adamuon"} <= set(names)
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(14))
    for name in names:
        torch.manual_seed(0)
        model = Net()
        before = [p.detach().clone() for p in model.parameters()]
        opts = build_optimizers(name, model)
        assert (len(opts) == 2) == OPTIMIZERS[name].matrix
        for _ in range(3):
            for o in opts:
                o.zero_grad()
            model(x).pow(2).sum().backward()
            for o in opts:
                o.step()
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters())), name
