"""The per-class noise measurement: estimators against known laws, the Gaussian-surrogate
control, the rule, and the parameter classifier."""

import math

import pytest
import torch

from geomopt.models.gpt import GPT, GPTConfig
from geomopt.noise import simsekli_alpha
from geomopt.noise.classes import parameter_classes
from geomopt.noise.per_class import (ALPHA_MARGIN, CUT_FACTOR, classify, entry_scale, measure,
                                     noise_table, reading, shuffled_alpha, spectral_stats)
from geomopt.noise.samplers import cauchy

GEN = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731


def test_shuffled_alpha_reads_two_on_gaussian_and_one_on_cauchy():
    n = 1 << 19
    assert shuffled_alpha(torch.randn(n, generator=GEN(0), dtype=torch.float64), GEN(1)) == pytest.approx(2.0, abs=0.1)
    assert shuffled_alpha(cauchy(n, generator=GEN(2), dtype=torch.float64), GEN(3)) == pytest.approx(1.0, abs=0.1)


def _row_scaled_gaussian(n=8, m=256, k=256, seed=0):
    """Gaussian noise samples whose rows have log-normal scales (σ = 1): no tails, unequal rows."""
    g = GEN(seed)
    return torch.randn(n, m, k, generator=g, dtype=torch.float64) * torch.randn(m, 1, generator=g,
                                                                                 dtype=torch.float64).exp()


def test_surrogate_control_removes_the_row_scale_artefact():
    x = _row_scaled_gaussian()
    raw = shuffled_alpha(x, GEN(1))
    assert raw < 1.8  # the artefact: unequal row scales alone read as a heavy tail
    row = noise_table({"w": x}, {"w": "hidden"}, GEN(2))["classes"]["hidden"]
    assert row["alpha"] == pytest.approx(raw, abs=0.1)
    assert row["alpha_surrogate"] == pytest.approx(row["alpha"], abs=0.15)  # the surrogate reads it too
    assert row["alpha_std"] == pytest.approx(2.0, abs=0.15) and row["alpha_std_surrogate"] == pytest.approx(2.0, abs=0.15)
    assert row["clip_cut"] > 2 and row["clip_cut_surrogate"] == pytest.approx(row["clip_cut"], rel=0.2)
    assert row["clip_cut_entry"] == pytest.approx(row["clip_cut_entry_surrogate"], rel=0.1)
    assert not row["heavy_tailed"] and not row["localized"] and not row["clipping_helps"]
    assert row["heavy_by_scales_only"] and "only through unequal entry scales" in reading({"hidden": row})


def test_iid_cauchy_reads_heavy_and_localized_and_gaussian_does_not():
    heavy = cauchy((8, 128, 128), generator=GEN(4), dtype=torch.float64)
    plain = torch.randn(8, 128, 128, generator=GEN(5), dtype=torch.float64)
    rows = noise_table({"a": heavy, "b": plain}, {"a": "embeddings", "b": "hidden"}, GEN(6))["classes"]
    e, h = rows["embeddings"], rows["hidden"]
    assert e["alpha"] == pytest.approx(1.0, abs=0.15) and e["alpha_std"] == pytest.approx(1.0, abs=0.15)
    assert e["alpha_surrogate"] == pytest.approx(2.0, abs=0.15)
    assert e["clip_cut"] > 20 * e["clip_cut_surrogate"] and e["clip_cut_entry"] > 20 * e["clip_cut_entry_surrogate"]
    assert e["clipping_helps"]
    assert h["alpha"] == pytest.approx(2.0, abs=0.15) and h["alpha_std"] == pytest.approx(2.0, abs=0.15)
    assert h["L_over_LG"] == pytest.approx(1.0, abs=0.2)
    assert not (h["heavy_tailed"] or h["localized"] or h["heavy_by_scales_only"])
    line = reading(rows)
    assert line.startswith("embeddings") and "entry-wise clipping predicted to help there" in line
    assert "hidden" in line.split(";")[1] and "Gaussian-like" in line.split(";")[1]


def test_entry_scale_recovers_separable_scales_and_zero_rows():
    g = GEN(7)
    r, c = torch.rand(64, generator=g, dtype=torch.float64) + 0.5, torch.rand(48, generator=g, dtype=torch.float64) + 0.5
    r[3] = 0.0  # a token absent from every sample
    x = torch.randn(16, 64, 48, generator=g, dtype=torch.float64) * r[:, None] * c[None, :]
    s = entry_scale(x)
    assert s.shape == (64, 48)
    assert torch.all(s[3] == 0)
    keep = torch.arange(64) != 3
    err = (s[keep] / (r[:, None] * c[None, :])[keep] - 1).abs()
    assert err.median() < 0.06 and err.max() < 0.3  # medians over ~10³ entries each: a few % apart
    v = entry_scale(torch.randn(16, 10, generator=g, dtype=torch.float64) * 3)  # a vector parameter
    assert v.shape == (10,) and v.mean().item() == pytest.approx(3.0, rel=0.3)


def test_spectral_stats_on_a_single_spike_and_degenerate_inputs():
    e = torch.zeros(2, 30, 40, dtype=torch.float64)
    e[:, 4, 7] = 5.0
    e += 1e-3 * torch.randn(2, 30, 40, generator=GEN(9), dtype=torch.float64)
    out = spectral_stats(e, entry_scale(e))
    assert out["L_over_LG"] > 3 and out["clip_cut"] > 100  # one entry carries ‖N‖₂; clipping removes it
    assert out["clip_cut_entry"] > 100
    assert math.isnan(spectral_stats(torch.ones(4, 1), torch.ones(1))["clip_cut"])  # a scalar: nothing to measure


def test_sparse_rows_and_the_entry_weighted_class_value():
    x = torch.randn(8, 40, 16, generator=GEN(11), dtype=torch.float64)
    x[:, 10:] = 0.0  # 3/4 of the rows (tokens) absent from every batch: MAD = 0
    assert spectral_stats(x, entry_scale(x))["clip_cut"] == math.inf  # a per-matrix 3·MAD clip zeroes it all
    small = cauchy((8, 4, 4), generator=GEN(12), dtype=torch.float64)
    rows = noise_table({"big": torch.randn(8, 64, 64, generator=GEN(13), dtype=torch.float64), "small": small},
                       {"big": "embeddings", "small": "embeddings"}, GEN(14))
    assert rows["classes"]["embeddings"]["L_over_LG"] == rows["params"]["big"]["L_over_LG"]  # 4096 vs 16 entries


def test_classify_is_the_stated_rule():
    base = {"alpha_std_surrogate": 1.9, "clip_cut_entry_surrogate": 2.0, "alpha": 1.9}
    assert classify({**base, "alpha_std": 1.9 - ALPHA_MARGIN, "clip_cut_entry": 2.0 * CUT_FACTOR}) == {
        "heavy_tailed": True, "localized": True, "clipping_helps": True, "heavy_by_scales_only": False}
    assert classify({**base, "alpha_std": 1.9 - ALPHA_MARGIN + 0.01, "clip_cut_entry": 10.0})["clipping_helps"] is False
    assert classify({**base, "alpha_std": 1.0, "clip_cut_entry": 2.0 * CUT_FACTOR - 0.01}) == {
        "heavy_tailed": True, "localized": False, "clipping_helps": False, "heavy_by_scales_only": False}
    assert classify({**base, "alpha": 1.0, "alpha_std": 1.9, "clip_cut_entry": 2.0})["heavy_by_scales_only"]
    assert classify({**base, "alpha_std": math.nan, "clip_cut_entry": math.nan})["heavy_tailed"] is False


@pytest.mark.parametrize("tie", [False, True])
def test_classifier_puts_a_tiny_gpt_in_its_classes(tie):
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, bias=True, tie_weights=tie))
    classes = parameter_classes(model)
    assert list(classes) == [n for n, _ in model.named_parameters()]  # every parameter once, in model order
    assert classes["wte.weight"] == classes["wpe.weight"] == "embeddings"
    assert ("lm_head.weight" in classes) is not tie  # a tied head is the embedding table
    if not tie:
        assert classes["lm_head.weight"] == "head"
    for name, cls in classes.items():
        if name.startswith("h.") and name.endswith("weight") and ("attn" in name or "mlp" in name):
            assert cls == "hidden", name
        elif "ln" in name or name.endswith("bias"):
            assert cls == "gains", name


def test_classifier_on_an_image_model():
    from geomopt.models import IMAGE_MODELS

    model = IMAGE_MODELS["resnet_small"](in_channels=1, num_classes=10, width=4)
    classes = parameter_classes(model)
    shapes = dict(model.named_parameters())
    assert {c for n, c in classes.items() if shapes[n].ndim == 4} == {"hidden"}  # conv filters
    assert {c for n, c in classes.items() if shapes[n].ndim == 1} == {"gains"}
    assert "head" in classes.values()


def test_measure_a_tiny_model_covers_every_parameter_and_leaves_it_as_it_was():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))
    model.train()
    g = GEN(10)

    def draw():
        x = torch.randint(0, 20, (4, 9), generator=g)
        return x[:, :-1], x[:, 1:]

    def loss_fn(m, batch):
        logits = m(batch[0])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 20), batch[1].reshape(-1))

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = measure(model, loss_fn, draw, large=2, samples=4)
    assert set(out["classes"]) == {"embeddings", "head", "hidden", "gains"}
    assert set(out["params"]) == set(before)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    with pytest.raises(ValueError):
        measure(model, loss_fn, draw, samples=2)
    assert simsekli_alpha  # the unshuffled estimator stays available for comparison
