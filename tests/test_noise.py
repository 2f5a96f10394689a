import math

import numpy as np
import pytest
import torch

from geomopt.noise import (cauchy_contaminated, gaussian, gaussian_localization, gradient_noise, hill_alpha,
                           localization_ratio, mad_threshold, mean_gradient, normalized_localization_ratio,
                           simsekli_alpha, student_t)
from geomopt.noise import bayes
from geomopt.noise.samplers import cauchy

GEN = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731


def test_tail_indices_gaussian_like_and_cauchy():
    n = 200_000
    assert simsekli_alpha(gaussian(n, generator=GEN(0))) == pytest.approx(2.0, abs=0.2)
    assert simsekli_alpha(cauchy(n, generator=GEN(1))) == pytest.approx(1.0, abs=0.15)
    assert hill_alpha(cauchy(n, generator=GEN(2))) == pytest.approx(1.0, abs=0.15)
    assert hill_alpha(student_t(n, df=2, generator=GEN(3))) == pytest.approx(2.0, abs=0.4)  # α = 2 power tail
    assert hill_alpha(student_t(n, df=3, generator=GEN(4))) == pytest.approx(3.0, abs=0.6)


def test_localization_ratio():
    e = torch.zeros(30, 50)
    e[4, 7] = -5.0
    assert localization_ratio(e).item() == pytest.approx(1.0)
    e2 = e + 1e-3 * torch.randn(30, 50, generator=GEN())
    assert localization_ratio(e2).item() == pytest.approx(1.0, abs=0.01)
    g = gaussian((400, 600), generator=GEN(1))
    assert normalized_localization_ratio(g).item() == pytest.approx(1.0, abs=0.25)
    assert gaussian_localization(400, 600) == pytest.approx(math.sqrt(2 * math.log(400 * 600)) / (20 + math.sqrt(600)))
    assert localization_ratio(torch.randn(4, 2, 3, 3)).item() <= 1.0  # conv filters as matrices


def test_samplers():
    x = cauchy_contaminated((400, 500), tau=1.0, gamma=1e4, eps=0.05, generator=GEN(2))
    assert (x.abs() > 10).float().mean().item() == pytest.approx(0.05 * (1 - 2 / math.pi * math.atan(10 / 1e4)), abs=0.003)
    assert mad_threshold(x).item() == pytest.approx(3.0, rel=0.1)
    assert torch.equal(cauchy_contaminated((5, 5), eps=0.0, generator=GEN(3)), gaussian((5, 5), generator=GEN(3)))
    with pytest.raises(ValueError):
        cauchy_contaminated((2, 2), eps=1.5)
    with pytest.raises(ValueError):
        student_t((2, 2), df=2.5)


def test_gradient_noise_is_minibatch_minus_mean_gradient():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    model.weight.grad = torch.full((1, 3), 7.0)
    xs = [torch.randn(8, 3) for _ in range(4)]
    ys = [torch.randn(8, 1) for _ in range(4)]
    batches = list(zip(xs, ys))

    def loss_fn(m, batch):
        x, y = batch
        return 0.5 * ((m(x) - y) ** 2).mean()

    def grad(x, y):  # closed form of ∇_W ½ mean (Wx − y)²
        return ((x @ model.weight.detach().T - y) * x).mean(0, keepdim=True)

    noise = gradient_noise(model, loss_fn, batches[:2], large_batch=batches)
    ref = torch.stack([grad(x, y) for x, y in batches]).mean(0)
    assert torch.allclose(mean_gradient(model, loss_fn, batches)["weight"], ref, atol=1e-6)
    expect = torch.stack([grad(x, y) - ref for x, y in batches[:2]])
    assert noise["weight"].shape == (2, 1, 3)
    assert torch.allclose(noise["weight"], expect, atol=1e-6)
    assert torch.equal(model.weight.grad, torch.full((1, 3), 7.0))  # .grad untouched


def test_bayes_closed_form_against_quadrature_and_gate():
    point = (1.0, 0.5, 2.0, 0.1)
    ys = np.array([0.0, 0.7, 3.0, 12.0, 40.0])
    quad = np.array([bayes.posterior_mean_quad(y, *point) for y in ys])
    assert np.allclose(bayes.posterior_mean(ys, *point), quad, rtol=1e-8, atol=1e-12)
    t = bayes.gate_threshold(*point)
    assert bayes.gaussian_branch_log_odds(t, *point) == pytest.approx(0.0, abs=1e-9)
    kappa = 1 / 1.25
    assert np.allclose(bayes.posterior_mean(ys, 1.0, 0.5, 2.0, 0.0), kappa * ys)
