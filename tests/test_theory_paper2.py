"""Paper 2's theory checks: their building blocks against exact answers, and their quick modes.

The verdicts themselves (DeVA-S∞ vs Muon/Adam on the toy, L_Γ < L_1) are left to full mode: in
quick mode (few seeds, 100 steps) the ranking is not robust, so only the structure is asserted."""

import itertools

import numpy as np
import pytest
import torch

from geomopt.report.checks import THEORY_DIR, load

toy = load(THEORY_DIR / "deva_toy_quadratic.py")
smooth = load(THEORY_DIR / "deva_blockwise_smoothness.py")


def test_hessian_blocks_have_the_stated_spectra():
    gen = torch.Generator().manual_seed(0)
    for eigs in toy.HESSIANS.values():
        h = toy.block_hessian(eigs, gen)
        for b, block_eigs in enumerate(eigs):
            blk = h[3 * b:3 * b + 3, 3 * b:3 * b + 3]
            torch.testing.assert_close(torch.linalg.eigvalsh(blk), torch.tensor(block_eigs, dtype=torch.float64))
        assert h[:3, 3:].abs().max() == 0  # block-diagonal
        a = toy.psd_sqrt(h)
        torch.testing.assert_close(a @ a, h)


def test_minibatch_gradient_is_unbiased_and_matches_autograd():
    pr = toy.make_problems(toy.HESSIANS["heterogeneous"], 2, 1, seed=1)
    a, h, x = pr["A"].double(), pr["H"].double(), pr["X0"].double()
    subsets = list(itertools.combinations(range(9), 3))
    mean = sum(toy.minibatch_gradient(a, x, torch.tensor([s, s]), squared=True) for s in subsets) / len(subsets)
    torch.testing.assert_close(mean, h @ x, rtol=1e-4, atol=1e-3)  # E[g] = ∇f = HX
    rows = torch.tensor([[0, 4, 8], [1, 2, 3]])
    xg = x.clone().requires_grad_(True)
    a_rows = torch.stack([a[i, rows[i]] for i in range(2)])
    loss = sum(0.5 * 3 * (a_rows[i] @ xg[i]).norm() for i in range(2))  # the public script's loss
    loss.backward()
    torch.testing.assert_close(toy.minibatch_gradient(a, x, rows, squared=False), xg.grad)


def test_lr_schedule_constant_then_linear_to_zero():
    assert [toy.lr_factor(s, 400) for s in (0, 199, 200, 300, 399)] == [1.0, 1.0, 1.0, 0.5, 1 / 200]


def test_box_smoothness_is_exact():
    torch.manual_seed(2)
    # Diagonal H: every vertex gives Σ_i λ_i γ_i²; rank-one H = vvᵀ: (Σ_i |v_i| γ_i)².
    gain = torch.rand(1, 4, 3, dtype=torch.float64) + 0.1
    lam = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    got = smooth.box_smoothness(torch.diag(lam)[None], gain)
    torch.testing.assert_close(got, (lam[None, :, None] * gain ** 2).sum(1))
    v = torch.randn(4, dtype=torch.float64)
    got = smooth.box_smoothness(torch.outer(v, v)[None], gain)
    torch.testing.assert_close(got, ((v.abs()[None, :, None] * gain).sum(1)) ** 2)
    # Against random feasible Δ: never exceeded.
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    h = q @ torch.diag(lam) @ q.T
    bound = smooth.box_smoothness(h[None], gain).sum()
    deltas = (2 * torch.rand(2000, 4, 3, dtype=torch.float64) - 1) * gain
    assert torch.einsum("kij,il,klj->k", deltas, h, deltas).max() <= bound + 1e-9


def test_uniform_gain_gives_ratio_one():
    h = toy.block_hessian(toy.HESSIANS["heterogeneous"], torch.Generator().manual_seed(3))[None]
    ratios = smooth.smoothness_ratios(h, torch.full((1, 9, 9), 0.3, dtype=torch.float64), per_block=True)
    for key in ("ratio", "ratio_rms1", "proxy_ratio", "block0_ratio", "block2_ratio"):
        torch.testing.assert_close(ratios[key], torch.ones(1, dtype=torch.float64))


@pytest.fixture(scope="module")
def toy_quick():
    return toy.check(quick=True)


@pytest.fixture(scope="module")
def smooth_quick():
    return smooth.check(quick=True)


def test_toy_quick_mode(toy_quick):
    out = toy_quick
    m = out.measured
    assert isinstance(out.passed, bool) and "DeVA-S∞" in out.summary
    for key in ("heterogeneous/squared", "homogeneous/squared", "heterogeneous/unsquared"):
        assert sorted(m[key]["ranking"]) == sorted(toy.OPTIMIZERS)
        for name in toy.OPTIMIZERS:
            curve = m[key]["curves"][name]
            assert len(curve["median"]) == m["steps"] // m["curve_every"] + 1
            assert np.all(np.asarray(curve["q25"]) <= np.asarray(curve["q75"]))
    het = m["heterogeneous/squared"]["final"]
    # Everything adaptive makes progress from f(X0) ~ 6e4 in 100 steps; GD at lr 1e-4 too.
    for name in ("adam", "muon", "soap", "deva_linf", "deva_sinf", "gd"):
        assert het[name]["median"] < m["heterogeneous/squared"]["curves"][name]["median"][0]
    assert out.passed == (het["deva_sinf"]["median"] < min(het["muon"]["median"], het["adam"]["median"]))


def test_smoothness_quick_mode(smooth_quick):
    out = smooth_quick
    m = out.measured
    for key in ("heterogeneous/deva_sinf", "heterogeneous/deva_linf", "homogeneous/deva_sinf"):
        assert m[key]["median_ratio"] > 0 and np.isfinite(m[key]["median_ratio"])
        assert len(m[key]["ratio_median_over_seeds"]) == len(m[key]["steps_recorded"])
    assert "median_block0_ratio" in m["heterogeneous/deva_linf"]  # ℓ∞: H block-diagonal in Γ's coordinates
    assert "median_block0_ratio" not in m["heterogeneous/deva_sinf"]  # S∞: rotated, no blocks
    assert out.passed == (m["heterogeneous/deva_sinf"]["median_ratio"] < 1
                          and m["heterogeneous/deva_linf"]["median_ratio"] < 1)


def test_figures_draw_from_quick_records(tmp_path, toy_quick, smooth_quick):
    from geomopt.report.figures import draw_all
    from geomopt.results import write_json

    results = tmp_path / "results"
    write_json(results / "theory" / "deva_toy_quadratic.json", {"measured": toy_quick.measured})
    write_json(results / "theory" / "deva_blockwise_smoothness.json", {"measured": smooth_quick.measured})
    names = ["paper2/toy_quadratic", "paper2/blockwise_smoothness"]
    drawn, bad = draw_all(results, tmp_path / "figures", only=names, out=lambda *_: None)
    assert drawn == 2 and not bad
    for name in names:
        assert (tmp_path / "figures" / f"{name}.png").exists()
