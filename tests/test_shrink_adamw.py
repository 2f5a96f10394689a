import copy

import pytest
import torch

from geomopt.optim.shrink_adamw import ShrinkAdamW


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 2))


def _train(make_opt, steps=100, seed=0, model=None, sched=None):
    model = model or _model(seed)
    opt = make_opt(model)
    gen = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        x, y = torch.randn(32, 6, generator=gen), torch.randn(32, 2, generator=gen)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]), opt


HP = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)


@pytest.mark.parametrize("kernel", [dict(fused=False), dict(foreach=True), dict(fused=True)])
def test_no_shrinkage_is_torch_adamw_bitwise_on_the_same_kernel(kernel):
    ours, _ = _train(lambda m: ShrinkAdamW(m.parameters(), psi=None, **HP, **kernel))
    ref, _ = _train(lambda m: torch.optim.AdamW(m.parameters(), **HP, **kernel))
    assert torch.equal(ours, ref)


def test_defaults_match_torch_adamw_defaults():
    ours, opt = _train(lambda m: ShrinkAdamW(m.parameters(), psi="none"))
    ref, ref_opt = _train(lambda m: torch.optim.AdamW(m.parameters()))
    for k in ("lr", "betas", "eps", "weight_decay"):
        assert opt.defaults[k] == ref_opt.defaults[k]
    # our default kernel is torch's fused AdamW, torch's default on CPU its for-loop: rounding only
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


SPEC = dict(second_moment="shrunk", warmup="global")  # the §2.6 reconstruction


def test_spec_2_6_variant_math_on_a_tiny_tensor():
    p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    b1, b2, lr, eps, t = 0.5, 0.75, 0.1, 1e-8, 2.0
    opt = ShrinkAdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.0, psi="hard", t=t, warmup_steps=1, **SPEC)
    g1, g2 = torch.tensor([1.0, -1.0, 2.0]), torch.tensor([10.0, -0.5, -100.0])
    m = v = torch.zeros(3)
    theta = p.detach().clone()
    for k, g in enumerate([g1, g2], start=1):
        if k > 1:  # s = √v̂_prev + δ, g̃ = clip(g, −t·s, t·s)
            s = (v / (1 - b2 ** (k - 1))).sqrt() + eps
            g = torch.maximum(torch.minimum(g, t * s), -t * s)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**k)) / ((v / (1 - b2**k)).sqrt() + eps)
        p.grad = [g1, g2][k - 1].clone()
        opt.step()
    torch.testing.assert_close(p.detach(), theta)
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], v)  # v saw the shrunk gradient


def test_main_variant_math_on_a_tiny_tensor():
    """Winsorised v, scale ŝ² = v/f over observed steps, ≥ k_warm observations per entry (module doc)."""
    from geomopt.optim.shrink_adamw import winsor_consistency

    b1, b2, lr, eps, t, c, k_warm = 0.5, 0.75, 0.1, 1e-8, 2.0, 3.0, 2
    p = torch.tensor([1.0, -2.0, 0.5, 0.0], requires_grad=True)
    opt = ShrinkAdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.1, psi="soft", t=t, v_clip=c,
                      warmup_steps=k_warm)
    stream = [[1.0, -1.0, 0.0, 2.0], [2.0, 0.0, 0.0, -1.0], [10.0, -30.0, 5.0, 1.0], [-40.0, 2.0, 0.0, 50.0]]
    m, v, f, n = (torch.zeros(4) for _ in range(4))
    theta = p.detach().clone()
    for k, row in enumerate(stream, start=1):
        g = torch.tensor(row)
        s = (v / f.clamp_min(1e-30)).sqrt() + eps
        ready = (n >= k_warm) & (v > 0)
        y = g / s
        shrunk = torch.where(ready, s * y / torch.sqrt(1 + (y / t) ** 2), g)
        sq = torch.where(ready, torch.minimum(g * g, (c * s) ** 2) / winsor_consistency(c), g * g)
        seen = (g != 0).float()
        f, n = b2 * f + (1 - b2) * seen, n + seen
        m, v = b1 * m + (1 - b1) * shrunk, b2 * v + (1 - b2) * sq
        theta = theta * (1 - lr * 0.1) - lr * (m / (1 - b1**k)) / ((v / (1 - b2**k)).sqrt() + eps)
        p.grad = g.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), theta)
    st = opt.state[p]
    for key, ref in (("exp_avg", m), ("exp_avg_sq", v), ("obs_mass", f), ("obs_count", n)):
        torch.testing.assert_close(st[key], ref)
    assert n.tolist() == [4, 3, 1, 4]  # entry 2, seen once, is never shrunk; entry 1 skips a step


def test_winsor_consistency_is_the_gaussian_winsorised_second_moment():
    from geomopt.optim.shrink_adamw import winsor_consistency

    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for c in (1.0, 2.0, 3.0):
        assert winsor_consistency(c) == pytest.approx(torch.minimum(z * z, torch.tensor(c * c)).mean().item(),
                                                      rel=3e-3)
    assert winsor_consistency(50.0) == pytest.approx(1.0)


def test_an_entry_first_seen_after_warm_up_is_not_frozen():
    """§2.6 divides an entry with v = 0 at the end of the global warm-up by δ; per-entry warm-up lets it move."""
    def moved(**kw):
        p = torch.zeros(2, requires_grad=True)
        opt = ShrinkAdamW([p], lr=0.01, betas=(0.9, 0.99), weight_decay=0.0, psi="smooth", warmup_steps=3, **kw)
        for k in range(40):
            p.grad = torch.tensor([1.0, 1.0 if k >= 20 else 0.0])
            opt.step()
        return p.detach().abs()
    main, spec = moved(), moved(**SPEC)
    assert main[1] > 0.5 * main[0] and spec[1] < 1e-3 * spec[0]


def test_post_clipping_math():
    p = torch.tensor([0.0, 0.0], requires_grad=True)
    opt = ShrinkAdamW([p], lr=1.0, betas=(0.0, 0.0), weight_decay=0.0, psi="hard", t=0.5, warmup_steps=1,
                      position="post")
    p.grad = torch.tensor([3.0, -2.0])
    opt.step()  # warm-up: plain Adam direction ±1
    torch.testing.assert_close(p.detach(), torch.tensor([-1.0, 1.0]))
    p.grad = torch.tensor([3.0, -2.0])
    opt.step()  # direction ±1 clipped to ±0.5
    torch.testing.assert_close(p.detach(), torch.tensor([-1.5, 1.5]))


def test_shrinkage_bounds_an_outlier_after_warm_up():
    p = torch.zeros(100, requires_grad=True)
    opt = ShrinkAdamW([p], lr=1.0, weight_decay=0.0, psi="smooth", t=3.0, warmup_steps=5)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        p.grad = torch.randn(100, generator=gen)
        opt.step()
    v_before = opt.state[p]["exp_avg_sq"].clone()
    p.grad = torch.randn(100, generator=gen)
    p.grad[7] = 1e8  # a Cauchy-like outlier: rejected by the redescending tail
    opt.step()
    assert opt.state[p]["exp_avg_sq"][7] < 2 * v_before[7] + 1e-3


def test_non_finite_gradient_entries_are_zeroed():
    def run(bad):
        p = torch.ones(4, requires_grad=True)
        opt = ShrinkAdamW([p], lr=0.1, psi="hard", warmup_steps=2)
        for k in range(5):
            g = torch.tensor([1.0, -1.0, 0.5, 2.0]) * (k + 1)
            if k in (0, 3):
                g[1] = bad
            p.grad = g
            opt.step()
        return p.detach(), opt
    for bad in (float("nan"), float("inf"), float("-inf")):
        out, opt = run(bad)
        zero, _ = run(0.0)
        assert torch.isfinite(out).all() and torch.isfinite(opt.state[opt.param_groups[0]["params"][0]]["exp_avg_sq"]).all()
        assert torch.equal(out, zero)


@pytest.mark.parametrize("fused", [False, True])
def test_state_dict_round_trip(fused):
    make = lambda m: ShrinkAdamW(m.parameters(), psi="smooth", warmup_steps=3, fused=fused, **HP)  # noqa: E731
    full, _ = _train(make, steps=12)
    model = _model()
    half, opt = _train(make, steps=6, model=model)
    sd = copy.deepcopy(opt.state_dict())
    model2 = copy.deepcopy(model)
    opt2 = make(model2)
    opt2.load_state_dict(sd)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        torch.randn(32, 6, generator=gen), torch.randn(32, 2, generator=gen)
    for _ in range(6):
        x, y = torch.randn(32, 6, generator=gen), torch.randn(32, 2, generator=gen)
        opt2.zero_grad()
        torch.nn.functional.mse_loss(model2(x), y).backward()
        opt2.step()
    assert torch.equal(torch.cat([p.detach().flatten() for p in model2.parameters()]), full)


def test_scheduler_and_param_groups():
    model = _model()
    w, b = [p for p in model.parameters() if p.ndim == 2], [p for p in model.parameters() if p.ndim == 1]
    opt = ShrinkAdamW([{"params": w, "psi": "soft", "t": 2.0}, {"params": b, "psi": None, "weight_decay": 0.0}],
                      lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.05)] * 2
    assert opt.param_groups[0]["psi"] == "soft" and opt.param_groups[1]["psi"] is None
    # the no-shrink group is plain AdamW
    ref_b = [p.detach().clone().requires_grad_(True) for p in _model().parameters() if p.ndim == 1]
    ref = torch.optim.AdamW(ref_b, lr=0.1, weight_decay=0.0, fused=True)
    for p in ref_b:
        p.grad = torch.ones_like(p)
    ref.step()
    for a, r in zip(b, ref_b):
        assert torch.equal(a, r)


@pytest.mark.parametrize("bad", [dict(psi="tanh"), dict(t=-1.0), dict(v_clip=0.5), dict(second_moment="g2"), dict(warmup="never"), dict(warmup_steps=0),
                                 dict(position="middle"), dict(lr=-1.0), dict(betas=(1.0, 0.9))])
def test_bad_hyperparameters_raise(bad):
    with pytest.raises(ValueError):
        ShrinkAdamW([torch.zeros(3, requires_grad=True)], **bad)


def test_registry_builds_shrink_adamw():
    from geomopt.optim import build_optimizers

    (opt,) = build_optimizers("shrink_adamw", _model(), {"t": 2.0})
    assert isinstance(opt, ShrinkAdamW) and opt.defaults["psi"] == "smooth" and opt.defaults["t"] == 2.0


def test_psi_inputs_are_what_psi_sees():
    """psi_inputs() gives y = g ⊘ s with s = √v̂_prev + δ, the input of ψ in the next step: clipping it at t and
    scaling back by s is the shrunk gradient that v then sees; none before warm-up ends or when position='post'."""
    p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    b2, eps, t = 0.75, 1e-8, 2.0
    opt = ShrinkAdamW([p], betas=(0.5, b2), eps=eps, weight_decay=0.0, psi="hard", t=t, warmup_steps=1, **SPEC)
    p.grad = torch.tensor([1.0, -1.0, 2.0])
    assert opt.psi_inputs() == {}  # before the first step: nothing to scale by
    opt.step()
    p.grad = torch.tensor([10.0, -0.5, -100.0])
    v = opt.state[p]["exp_avg_sq"].clone()
    (y, t_p), = opt.psi_inputs().values()
    s = (v / (1 - b2)).sqrt() + eps
    torch.testing.assert_close(y, p.grad / s)
    assert t_p == t
    opt.step()
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], b2 * v + (1 - b2) * (s * y.clamp(-t, t)) ** 2)
    post = ShrinkAdamW([torch.nn.Parameter(torch.ones(2))], psi="hard", position="post", warmup_steps=1)
    post.param_groups[0]["params"][0].grad = torch.ones(2)
    post.step()
    assert post.psi_inputs() == {}


def test_post_clipping_ablation_thresholds_act():
    """|m̂/√v̂| stays below ≈ 2.35 for β = (0.9, 0.99) (so t ≥ 2 at the post position was a no-op); every post
    threshold of the paper-1 ablation grid cuts a share of the Adam direction of pure noise."""
    import importlib.util

    from geomopt.results import REPO_ROOT

    spec = importlib.util.spec_from_file_location("paper1_run", REPO_ROOT / "experiments/paper1/run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    post_t = run.ABLATE["cauchy"]["shrink_adamw"]["t"]["post"]
    b1, b2 = 0.9, 0.99
    gen = torch.Generator().manual_seed(0)
    m = v = torch.zeros(2000)
    biggest, shares = 0.0, {t: 0.0 for t in post_t}
    for k in range(1, 301):
        g = torch.randn(2000, generator=gen)
        g = torch.where(torch.rand(2000, generator=gen) < 0.05, torch.tan(torch.pi * (torch.rand(2000) - 0.5)), g)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        d = (m / (1 - b1**k)) / (v / (1 - b2**k)).sqrt()
        biggest = max(biggest, d.abs().max().item())
        for t in post_t:
            shares[t] += (d.abs() > t).float().mean().item() / 300
    bound = (1 - b1) / (1 - b2) ** 0.5 / (1 - b1**2 / b2) ** 0.5  # Cauchy–Schwarz on m = (1−β₁)Σβ₁ʲg
    assert bound == pytest.approx(2.35, abs=0.01) and biggest < bound
    assert all(t < 1 for t in post_t) and min(shares.values()) > 0.001, shares


def test_the_update_is_one_graph_for_torch_compile():
    """shrink_adamw_ is a pure function of tensor lists with no data-dependent Python branch: dynamo traces it
    without a graph break (what geomopt.optim's compile-once machinery needs)."""
    import functools

    from geomopt.optim.shrink_adamw import shrink_adamw_, step_scalars

    ps = [torch.randn(8, 4), torch.randn(5)]
    state = [[torch.zeros_like(p) for p in ps] for _ in range(4)]
    fn = functools.partial(shrink_adamw_, lr=1e-3, beta1=0.9, beta2=0.99, eps=1e-8, decay=1 - 1e-4, psi="smooth",
                           t=3.0, gamma=1.0, warmup_steps=2, **step_scalars([1.0, 1.0], lr=1e-3, beta1=0.9, beta2=0.99))
    explained = torch._dynamo.explain(fn)(ps, [torch.randn_like(p) for p in ps], *state)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons


def test_one_division_smooth_psi_is_shrink_smooth_psi():
    """The compiled step's form of the smooth ψ equals geomopt.optim.shrink's to float32 rounding, from 0 to
    the largest float (where the gate's exp underflows and y² overflows)."""
    from geomopt.optim.shrink import smooth_shrink
    from geomopt.optim.shrink_adamw import smooth_shrink_one_division

    y = torch.cat([torch.linspace(0, 40, 40001), torch.logspace(1, 38, 2000), torch.tensor([3.4e38])])
    y = torch.cat([y, -y])
    for t, gamma in ((3.0, 1.0), (1.0, 1.0), (2.0, 0.5), (6.0, 2.0)):
        ours, ref = smooth_shrink_one_division(y, t, gamma), smooth_shrink(y, t, 1.0, gamma)
        exact = smooth_shrink(y.double(), t, 1.0, gamma)
        assert torch.isfinite(ours).all()
        moderate = y.abs() < 1e18  # beyond, both float32 forms clamp q (y² overflows) and return y/q_max
        assert ((ours.double() - exact).abs() <= 1e-6 * exact.abs())[moderate].all(), (t, gamma)  # as shrink.py
        assert ((ours - ref).abs() <= 6e-7 * ref.abs() + 1e-44).all(), (t, gamma)
