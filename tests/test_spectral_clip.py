"""Spectral clipping (arXiv 2605.11838) and calibrated SPECTRA as grad transforms; clip rates of every clip."""

from pathlib import Path

import pytest
import torch

from geomopt.optim.clip_muon import ClipMuon
from geomopt.optim import route_params
from geomopt.optim.grad_transforms import build_grad_transform
from geomopt.optim.spectral_clip import SpectralClip, SpectralSoftClip, spectral_hard_clip
from geomopt.results import read_run
from geomopt.train import load_config, run

SMOKE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "smoke.toml")


def _with_singular_values(s, m=6, n=4, seed=0):
    """U diag(s) Vᵀ (float64) with random orthonormal U (m×k), V (n×k)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(m, len(s), generator=gen, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(n, len(s), generator=gen, dtype=torch.float64))[0]
    return (u * torch.tensor(s, dtype=torch.float64)) @ v.T, u, v


def test_hard_clip_clamps_the_top_singular_values_and_keeps_directions():
    g, u, v = _with_singular_values([5.0, 3.0, 1.0, 0.5])
    out, top = spectral_hard_clip(g, 2.0)
    assert top.item() == pytest.approx(5.0)
    assert torch.allclose(out, (u * torch.tensor([2.0, 2.0, 1.0, 0.5], dtype=torch.float64)) @ v.T, atol=1e-12)
    below, _ = spectral_hard_clip(g, 5.5)
    assert torch.equal(below, g)  # a no-op below the threshold, bit for bit


def _param(g):
    p = torch.nn.Parameter(torch.zeros_like(g))
    p.grad = g.clone()
    return p


def test_spectral_clip_threshold_is_kappa_times_the_bias_corrected_ema_of_past_steps():
    beta, kappa = 0.9, 2.0
    p = _param(torch.zeros(6, 4, dtype=torch.float64))
    clip = SpectralClip([p], kappa=kappa, beta=beta)
    sigmas = [1.0, 1.5, 1.2, 10.0]
    for k, s1 in enumerate(sigmas):
        g, u, v = _with_singular_values([s1, 0.5, 0.1], seed=k)
        p.grad = g.clone()
        clip(k)
        m = sum((1 - beta) * beta ** (k - 1 - j) * sigmas[j] for j in range(k))  # EMA of the past σ₁
        tau = kappa * m / (1 - beta ** k) if k else float("inf")
        assert torch.linalg.svdvals(p.grad)[0].item() == pytest.approx(min(s1, tau), rel=1e-6)  # (EMA in fp32)
        if s1 <= tau:
            assert torch.equal(p.grad, g)
    assert tau < sigmas[-1]  # the spike was clamped
    assert clip.stats() == {"clip_frac": 0.25} and clip.stats() == {}  # one of 4 steps; reset on read
    ema = sum((1 - beta) * beta ** (3 - j) * s for j, s in enumerate(sigmas)) / (1 - beta ** 4)
    assert clip.level(0).item() == pytest.approx(ema, rel=1e-6)  # "raw": the EMA sees the spike's own σ₁


def test_clipped_tracking_feeds_the_ema_with_the_clipped_sigma():
    p = _param(torch.zeros(6, 4))
    clip = SpectralClip([p], kappa=2.0, beta=0.5, track="clipped")
    for k, s1 in enumerate([1.0, 100.0]):
        p.grad = _with_singular_values([s1, 0.1], seed=k)[0].float()
        clip(k)
    # m₁ = 0.5, m₂ = 0.25 + 0.5 · min(100, 2) = 1.25, m̂₂ = 1.25 / 0.75
    assert clip.level(0).item() == pytest.approx(1.25 / 0.75, rel=1e-6)


def test_conv_gradients_are_clipped_as_out_by_rest_matrices():
    gen = torch.Generator().manual_seed(0)
    p = _param(torch.randn(4, 3, 2, 2, generator=gen))
    clip = SpectralClip([p], kappa=1.0, beta=0.0)  # β = 0: τ = σ₁ of the previous step
    clip(0)
    p.grad = 3 * p.grad
    prev = torch.linalg.svdvals(p.grad.reshape(4, -1) / 3)[0]
    clip(1)
    assert p.grad.shape == (4, 3, 2, 2)
    assert torch.linalg.svdvals(p.grad.reshape(4, -1))[0].item() == pytest.approx(prev.item(), rel=1e-5)


@pytest.mark.parametrize("make", [lambda ps: SpectralClip(ps, kappa=1.5, beta=0.8),
                                  lambda ps: SpectralSoftClip(ps, c_rel=1.0, beta=0.8)])
def test_state_round_trip_continues_exactly(make):
    gen = torch.Generator().manual_seed(0)
    grads = [[torch.randn(5, 3, generator=gen) * (1 + 4 * (k == 4)), torch.randn(3, 7, generator=gen)]
             for k in range(7)]
    ps_a, ps_b = [_param(g) for g in grads[0]], [_param(g) for g in grads[0]]
    a = make(ps_a)
    for k in range(4):
        for p, g in zip(ps_a, grads[k]):
            p.grad = g.clone()
        a(k)
    b = make(ps_b)
    b.load_state_dict(a.state_dict())
    for k in range(4, 7):
        for pa, pb, g in zip(ps_a, ps_b, grads[k]):
            pa.grad, pb.grad = g.clone(), g.clone()
        a(k), b(k)
        assert all(torch.equal(pa.grad, pb.grad) for pa, pb in zip(ps_a, ps_b))
    assert a.seen == b.seen == [7, 7] and all(torch.equal(x, y) for x, y in zip(a.avg, b.avg))
    with pytest.raises(ValueError, match="same model"):
        make(ps_a[:1]).load_state_dict(a.state_dict())


def test_calibrated_spectra_uses_c_rel_times_the_ema_of_sigma_max():
    p = _param(torch.zeros(6, 4, dtype=torch.float64))
    soft = SpectralSoftClip([p], c_rel=0.5, beta=0.9)
    g0, _, _ = _with_singular_values([2.0, 1.0, 0.2], seed=0)
    p.grad = g0.clone()
    soft(0)
    assert torch.equal(p.grad, g0)  # no σ₁ history yet: passed unclipped
    s = torch.tensor([4.0, 1.0, 0.2], dtype=torch.float64)
    g1, u, v = _with_singular_values(s.tolist(), seed=1)
    p.grad = g1.clone()
    soft(1)
    c = 0.5 * 2.0  # c_rel × m̂₁ (the bias-corrected EMA after one step is σ₁ of that step)
    expect = s / torch.sqrt(1 + (s / c) ** 2)
    assert torch.allclose(torch.linalg.svdvals(p.grad)[:3], expect, rtol=1e-4)
    assert soft.stats() == {"clip_frac": 0.5}  # step 0 passed, step 1 had σ₁ = 4 > c = 1
    with pytest.raises(ValueError, match="not both"):
        SpectralSoftClip([p], c=0.1, c_rel=1.0)
    with pytest.raises(ValueError, match="c_rel"):
        SpectralSoftClip([p], c_rel=-1.0)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(10, 6), torch.nn.Linear(6, 6), torch.nn.Linear(6, 10))


def _set_grads(model, scale=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * scale


def test_every_clipping_transform_reports_its_clip_rate():
    model = _model()
    shrink = build_grad_transform("shrink", model, {"psi": "hard", "t": 1.0, "scale": 1.0})
    _set_grads(model)
    hidden = torch.cat([p.grad.flatten() for p in route_params(model).matrix])
    beyond = (hidden.abs() > 1.0).float().mean().item()
    shrink(0)
    assert shrink.stats() == {"clip_frac": pytest.approx(beyond)} and shrink.stats() == {}
    norm = build_grad_transform("clip_norm", model, {"max_norm": 1.0})
    for k, scale in enumerate([1e-3, 100.0, 1e-3, 100.0]):
        _set_grads(model, scale, seed=k)
        norm(k)
    assert norm.stats() == {"clip_frac": 0.5}
    fixed = build_grad_transform("spectral_soft_clip", model, {"c": 1e6})
    fixed(0)
    assert fixed.stats() == {"clip_frac": 0.0}  # σ₁ ≪ c: no matrix cut
    chain = build_grad_transform("spectral_clip+clip_norm", model, {"clip_norm": {"max_norm": 1e-9}})
    chain(0)
    assert chain.stats() == {"spectral_clip_clip_frac": 0.0, "clip_norm_clip_frac": 1.0}
    with pytest.raises(ValueError, match="kappa"):
        build_grad_transform("spectral_clip", model, {"kappa": 0})
    with pytest.raises(ValueError, match="track"):
        build_grad_transform("spectral_clip", model, {"track": "median"})


def test_clip_muon_reports_the_entries_it_clipped():
    w = torch.nn.Parameter(torch.zeros(8, 8))
    opt = ClipMuon([w], lr=0.01, psi="hard", t=3.0, scale="mad")
    assert opt.stats() == {}
    w.grad = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    w.grad[0, 0] = 1e3
    opt.step()
    frac = opt.stats()["clip_muon_clip_frac"]
    assert 1 / 64 <= frac < 0.1


@pytest.mark.parametrize("transform", [["grad_transform=spectral_clip", "grad_transform_args.kappa=1.0"],
                                       ["grad_transform=shrink", "grad_transform_args.psi=hard",
                                        "grad_transform_args.t=2.0"]])
def test_trainer_rows_carry_the_clip_rate_and_resume_exactly(tmp_path, transform):
    common = ["steps=8", "log_every=2", *transform]
    whole = run(load_config(SMOKE, [*common, f"out={tmp_path}/w.jsonl", f"checkpoint_dir={tmp_path}/w"]))
    _, rows = read_run(whole)
    train = rows.dropna(subset=["train_loss"])
    assert len(train) == 4 and train["clip_frac"].between(0, 1).all() and train["clip_frac"].iloc[1:].gt(0).any()
    part = load_config(SMOKE, [*common, "max_steps_per_call=3", f"out={tmp_path}/p.jsonl",
                               f"checkpoint_dir={tmp_path}/p"])
    while read_run(run(part, resume=True))[0]["status"] != "completed":
        pass
    resumed = read_run(part.out_path)[1].dropna(subset=["train_loss"])
    assert resumed["train_loss"].tolist() == train["train_loss"].tolist()
    assert resumed["clip_frac"].tolist() == train["clip_frac"].tolist()
