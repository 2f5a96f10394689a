import math

import pytest
import torch

from geomopt.optim.grad_transforms import (MAD_TO_SIGMA, build_grad_transform, matrix_scale, median_sample,
                                           shrink_grads_, spectral_soft_clip_grads_)
from geomopt.optim.shrink import apply_psi_, apply_psi_foreach_, bayes_surrogate, hard_clip, psi, redescend, smooth_shrink, soft_clip
from geomopt.optim.spectral_clip import inverse_sqrt_newton_schulz, spectral_soft_clip

Y = torch.linspace(-20, 20, 401, dtype=torch.float64)


@pytest.mark.parametrize("slope", [1.0, 0.5])
def test_clip_functions_match_their_formulas(slope):
    t = 3.0
    assert torch.allclose(hard_clip(Y, t, slope), slope * Y.clamp(-t, t))
    assert torch.allclose(soft_clip(Y, t, slope), slope * Y / torch.sqrt(1 + (Y / t) ** 2))
    assert torch.allclose(redescend(Y, t, slope), slope * Y / (1 + (Y / t) ** 2))


def _smooth_reference(y, t, kappa, gamma):
    """Spec §2.4 written with the exponential (fine in float64 for |y| <= 20)."""
    ge2 = gamma**2 + kappa
    odds_cauchy = math.exp(-t * t / 2) * torch.exp(y * y / 2) * (t * t + ge2) / (y * y + ge2)
    r = 1 / (1 + odds_cauchy)
    return r * kappa * y + (1 - r) * 2 * kappa * y / (y * y + ge2)


@pytest.mark.parametrize("slope,gamma", [(1.0, 1.0), (0.5, 2.0)])
def test_smooth_shrink_matches_formula_and_gates_at_t(slope, gamma):
    t = 3.0
    assert torch.allclose(smooth_shrink(Y, t, slope, gamma), _smooth_reference(Y, t, slope, gamma), atol=1e-12)
    at_t = smooth_shrink(torch.tensor([t], dtype=torch.float64), t, slope, gamma)
    ge2 = gamma**2 + slope
    assert at_t.item() == pytest.approx(0.5 * slope * t + 0.5 * 2 * slope * t / (t * t + ge2))


def test_smooth_shrink_shape():
    t, kappa = 4.0, 0.7
    h = torch.tensor([1e-6], dtype=torch.float64)
    assert (smooth_shrink(h, t, kappa) / h).item() == pytest.approx(kappa, rel=2e-3)  # slope κ at 0
    big = torch.tensor([1e3, 1e4], dtype=torch.float64)
    assert torch.allclose(smooth_shrink(big, t, kappa) * big, torch.full((2,), 2 * kappa, dtype=torch.float64),
                          rtol=1e-5)  # redescending tail 2σ_s²/y (σ_s² = κ in inlier units)
    huge = torch.tensor([1e30, -1e30, 1e300], dtype=torch.float64)
    assert torch.isfinite(smooth_shrink(huge, t, kappa)).all()  # log-density gate: no overflow
    assert torch.isfinite(smooth_shrink(torch.tensor([1e30]), t)).all()  # float32 too


def test_bayes_surrogate_wiener_limit_and_normalized_form():
    sigma_s, tau, gamma = 1.0, 0.5, 2.0
    kappa = sigma_s**2 / (sigma_s**2 + tau**2)
    assert torch.allclose(bayes_surrogate(Y, sigma_s, tau, gamma, 0.0), kappa * Y)
    assert torch.allclose(bayes_surrogate(Y, sigma_s, tau, gamma, 1e-300), kappa * Y, atol=1e-9)
    # the threshold form = the physical form, with t the surrogate's own gate and inlier units √v
    eps = 0.05
    v = sigma_s**2 + tau**2
    lo, hi = 0.0, 50.0
    for _ in range(200):  # bisection for r̃(t) = ½: ψ(t) = (κt + tail(t))/2
        mid = (lo + hi) / 2
        y = torch.tensor([mid], dtype=torch.float64)
        ge2 = gamma**2 + sigma_s**2
        half = 0.5 * (kappa * mid + 2 * sigma_s**2 * mid / (mid * mid + ge2))
        lo, hi = (mid, hi) if bayes_surrogate(y, sigma_s, tau, gamma, eps).item() > half else (lo, mid)
    t = lo / math.sqrt(v)
    ours = math.sqrt(v) * smooth_shrink(Y / math.sqrt(v), t, kappa, gamma / math.sqrt(v))
    assert torch.allclose(ours, bayes_surrogate(Y, sigma_s, tau, gamma, eps), atol=1e-8)


@pytest.mark.parametrize("name", ["hard", "soft", "redescend", "smooth"])
def test_in_place_with_scratch_and_foreach_equal_pure(name):
    y = torch.randn(7, 5) * 4
    flat_work = [torch.empty(100), torch.empty(100)]
    out = apply_psi_(y.clone(), name, 2.0, 0.8, 1.0, flat_work)
    assert torch.allclose(out, psi(y, name, 2.0, 0.8, 1.0))
    ys = [y.clone(), 3 * y[:2].clone()]
    apply_psi_foreach_(ys, name, 2.0, 0.8, 1.0)
    assert torch.allclose(ys[0], out) and torch.allclose(ys[1], psi(3 * y[:2], name, 2.0, 0.8, 1.0))


def test_matrix_scales():
    g = torch.randn(40, 30)
    assert matrix_scale(g, "rms").item() == pytest.approx(g.square().mean().sqrt().item(), rel=1e-5)
    assert matrix_scale(g, "mad").item() == pytest.approx(MAD_TO_SIGMA * g.abs().median().item(), rel=1e-6)
    big = torch.randn(512, 768, generator=torch.Generator().manual_seed(0))
    assert median_sample(big).numel() <= 2 * 65536
    assert matrix_scale(big, "mad").item() == pytest.approx(1.0, rel=0.02)
    with pytest.raises(ValueError, match="scale="):
        matrix_scale(g, "std")


def test_shrink_grads_in_place():
    p = torch.zeros(50, 40, requires_grad=True)
    g = torch.randn(50, 40, generator=torch.Generator().manual_seed(1))
    g[3, 4], g[5, 6], g[7, 8] = 1e6, float("nan"), float("-inf")
    p.grad = g.clone()
    (s,) = shrink_grads_([p], psi="hard", t=3.0, scale="mad")
    clean = g.nan_to_num(0.0, 0.0, 0.0)
    expect = clean.clamp(-3 * s, 3 * s)
    assert torch.allclose(p.grad, expect)
    assert p.grad[5, 6] == 0 and p.grad[7, 8] == 0 and p.grad[3, 4] == pytest.approx(3 * s.item())
    q = torch.zeros(4, requires_grad=True)
    q.grad = torch.tensor([1.0, -8.0, 2.0, 0.5])
    shrink_grads_(q, psi="soft", t=2.0, scale=[torch.full((4,), 2.0)])
    y = torch.tensor([0.5, -4.0, 1.0, 0.25])
    assert torch.allclose(q.grad, 2.0 * y / torch.sqrt(1 + (y / 2) ** 2))
    with pytest.raises(ValueError, match="psi="):
        shrink_grads_([p], psi="tanh")
    with pytest.raises(ValueError, match="threshold"):
        shrink_grads_([p], t=0.0)


def test_spectral_soft_clip_matches_svd():
    gen = torch.Generator().manual_seed(0)
    for shape in [(12, 30), (30, 12)]:
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        c = 2.0
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        ref = u @ torch.diag(s / torch.sqrt(1 + (s / c) ** 2)) @ vh
        assert torch.allclose(spectral_soft_clip(x, c, iters=30), ref, atol=1e-8)
        assert torch.allclose(spectral_soft_clip(x, c), ref, rtol=0, atol=1e-2 * ref.abs().max())  # 10 its
    a = torch.randn(8, 8, dtype=torch.float64, generator=gen)
    a = a @ a.T + torch.eye(8, dtype=torch.float64)
    r = inverse_sqrt_newton_schulz(a, 40)
    assert torch.allclose(r @ a @ r, torch.eye(8, dtype=torch.float64), atol=1e-8)
    v = torch.tensor([3.0, 4.0])
    assert torch.allclose(spectral_soft_clip(v, 5.0), v / math.sqrt(2))


def _two_layer():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 6), torch.nn.Linear(6, 10))


def test_grad_transform_registry():
    model = _two_layer()
    hidden = model[1].weight
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 100
    build_grad_transform("clip_norm", model, {"max_norm": 1.0})(0)  # params="all" by default
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    assert total.item() == pytest.approx(1.0, rel=1e-5)
    hidden.grad = torch.randn(6, 6, generator=torch.Generator().manual_seed(0)) * 100
    before = torch.linalg.svdvals(hidden.grad.double())
    spectral_soft_clip_grads_([hidden], c=0.1)
    after = torch.linalg.svdvals(hidden.grad.double())
    exact = before / torch.sqrt(1 + (before / 0.1) ** 2)
    # 10 coupled-NS iterations converge for σ near σ_max; the smallest directions (Gram eigenvalue
    # ~1/ν of A/ν) approach from below, so the clip never amplifies
    assert torch.allclose(after[:2], exact[:2], rtol=1e-3)
    assert (after <= exact * (1 + 1e-3)).all()
    with pytest.raises(ValueError, match="grad_transform 'clip_everything' unknown"):
        build_grad_transform("clip_everything", model)
    with pytest.raises(ValueError, match="threshold"):  # bad kwargs fail when built, before any step
        build_grad_transform("shrink", model, {"t": -1.0})
    with pytest.raises(ValueError, match="params="):
        build_grad_transform("shrink", model, {"params": "hidden"})


@pytest.mark.parametrize("params", ["matrix", "embed_head", "no_decay", "all"])
def test_shrink_transform_acts_on_the_chosen_class(params):
    from geomopt.optim import route_params

    model = _two_layer()
    grads = {p: torch.randn_like(p) for p in model.parameters()}
    for p in model.parameters():
        grads[p].view(-1)[0] = 1e6
        p.grad = grads[p].clone()
    build_grad_transform("shrink", model, {"params": params, "psi": "hard", "t": 3.0})(0)
    chosen = (list(model.parameters()) if params == "all" else getattr(route_params(model), params))
    for p in model.parameters():
        assert (p.grad.abs().max() < 1e6) == any(p is q for q in chosen)


def test_train_transforms_is_the_optim_registry():
    import geomopt.optim.grad_transforms as optim_side
    import geomopt.train.transforms as train_side

    assert train_side.GRAD_TRANSFORMS is optim_side.GRAD_TRANSFORMS
    assert train_side.build_grad_transform is optim_side.build_grad_transform


def test_row_and_column_scales():
    gen = torch.Generator().manual_seed(0)
    rows, cols = torch.rand(60, 1, generator=gen) * 10 + 0.1, torch.rand(1, 40, generator=gen) * 10 + 0.1
    g = torch.randn(60, 40, generator=gen) * rows * cols
    a = g.abs()
    torch.testing.assert_close(matrix_scale(g, "row_mad"), MAD_TO_SIGMA * a.median(dim=1, keepdim=True).values)
    torch.testing.assert_close(matrix_scale(g, "col_mad"), MAD_TO_SIGMA * a.median(dim=0, keepdim=True).values)
    rc = matrix_scale(g, "rowcol_mad")
    mad = lambda x, d: MAD_TO_SIGMA * x.median(dim=d, keepdim=True).values  # noqa: E731
    first = mad(a, 1) * mad(a, 0) / (MAD_TO_SIGMA * a.median())
    b = a / first
    torch.testing.assert_close(rc, first * mad(b, 1) * mad(b, 0) / (MAD_TO_SIGMA * b.median()))
    # rowcol_geo: log s_ij = mean_j log|g| + mean_i log|g| − mean log|g| − E log|Z| (two-way additive fit),
    # refitted once with log|g| capped at log(3·s)
    def additive_fit(la):
        return la.mean(1, keepdim=True) + la.mean(0, keepdim=True) - la.mean() + (0.5772156649015329 + math.log(2)) / 2
    la = a.double().log()
    fit = additive_fit(torch.minimum(la, additive_fit(la) + math.log(3.0)))
    torch.testing.assert_close(matrix_scale(g, "rowcol_geo").double(), fit.exp(), rtol=1e-4, atol=0)
    z = torch.randn(400, 300, generator=gen, dtype=torch.float64)
    assert matrix_scale(z, "rowcol_geo").mean().item() == pytest.approx(1.0, rel=0.02)  # unbiased scale for N(0, 1)
    conv = torch.randn(6, 3, 2, 2, generator=gen)
    assert matrix_scale(conv, "row_mad").shape == (6, 1, 1, 1) and matrix_scale(conv, "rowcol_mad").shape == (6, 3, 2, 2)
    assert matrix_scale(conv, "rowcol_geo").shape == (6, 3, 2, 2)
    assert matrix_scale(conv, "col_mad").shape == (1, 3, 2, 2)
    assert matrix_scale(torch.randn(5), "rowcol_mad").ndim == 0  # vectors: the per-tensor MAD


@pytest.mark.parametrize("kind", ["mad", "row_mad", "col_mad", "rowcol_mad", "rowcol_geo"])
def test_scales_ignore_unobserved_zero_entries(kind):
    """An embedding gradient: most rows exactly 0 (tokens not in the batch), one rare row with 3 nonzero entries.
    The scale comes from the observed entries, so the rare row is not clipped to 0 and nothing turns NaN,
    with or without Cauchy draws on top."""
    gen = torch.Generator().manual_seed(0)
    g = torch.zeros(65, 32)
    g[:8] = torch.randn(8, 32, generator=gen)
    g[40, :3] = torch.tensor([0.9, -1.1, 0.7])
    s = matrix_scale(g, kind)
    assert torch.isfinite(s).all() and (s > 1e-3).all()
    p = torch.zeros(65, 32, requires_grad=True)
    p.grad = g.clone()
    shrink_grads_([p], psi="smooth", t=3.0, scale=kind)
    assert torch.isfinite(p.grad).all() and (p.grad[9:40] == 0).all()
    assert (p.grad[40, :3].abs() > 0.5 * g[40, :3].abs()).all()
    hits = torch.rand(65, 32, generator=gen) < 0.05
    hits[8:] = False  # draws on the observed rows (a row with one observed entry has nothing to compare it to)
    p.grad = g + torch.where(hits, 1e3, 0.0)
    shrink_grads_([p], psi="smooth", t=3.0, scale=kind)
    assert hits.any() and torch.isfinite(p.grad).all() and p.grad.abs().max() < 10
