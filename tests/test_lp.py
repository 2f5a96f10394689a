"""ℓp geometry (geomopt.lp): the closed-form step against a numerical argmin, the ρ search,
HASD's bound on a small instance, the baselines' guarantees and the problems' constants."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from geomopt.lp import (agd, diagonal_quadratic, hasd, lp_norm, lp_steepest_descent, lp_steepest_step,
                        smoothed_linf_regression, unscaled_direction)
from geomopt.lp.hasd import bisect_log_rho, interpolation_coefficient, rho_bracket
from geomopt.lp.steepest import dual_exponent, dual_norm


def _numerical_argmin(objective, d, seed=0):
    x0 = np.random.default_rng(seed).standard_normal(d) * 0.1
    res = minimize(objective, x0, method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 40000, "maxfev": 40000})
    return res.x, res.fun


@pytest.mark.parametrize("p", [3.0, 4.0, 8.0])
def test_step_is_the_argmin_of_the_lp_model(p):
    g, L = np.array([0.7, -1.3, 0.2, 2.0]), 1.7
    step = lp_steepest_step(g, L, p)
    model = lambda z: float(g @ z + L * lp_norm(z, p) ** 2)  # noqa: E731
    z_num, val_num = _numerical_argmin(model, g.size)
    # closed-form value −‖g‖_q²/(4L) and norm ‖Δ*‖_p = ‖g‖_q/(2L)
    assert model(step) == pytest.approx(-dual_norm(g, p) ** 2 / (4 * L), rel=1e-12)
    assert lp_norm(step, p) == pytest.approx(dual_norm(g, p) / (2 * L), rel=1e-12)
    assert model(step) <= val_num + 1e-9
    np.testing.assert_allclose(step, z_num, atol=2e-3)


def test_step_special_cases():
    g = np.array([3.0, -4.0, 0.0])
    np.testing.assert_allclose(lp_steepest_step(g, 2.0, 2.0), -g / 4.0)
    np.testing.assert_allclose(lp_steepest_step(g, 0.5, math.inf), -7.0 * np.sign(g))  # −‖g‖₁·sign(g)
    assert np.all(lp_steepest_step(np.zeros(3), 1.0, 4.0) == 0)
    assert dual_exponent(4.0) == pytest.approx(4 / 3) and dual_exponent(math.inf) == 1.0
    with pytest.raises(ValueError):
        lp_steepest_step(g, 1.0, 1.5)
    with pytest.raises(ValueError):
        lp_steepest_step(g, 0.0, 4.0)


@pytest.mark.parametrize("p", [3.0, 6.0])
def test_unscaled_direction_is_the_argmin_of_the_pth_power_model(p):
    c = np.array([0.5, -2.0, 1.2])
    model = lambda z: float(c @ z + np.sum(np.abs(z) ** p) / p)  # noqa: E731
    z_num, _ = _numerical_argmin(model, c.size)
    np.testing.assert_allclose(-unscaled_direction(c, p), z_num, atol=2e-3)
    # rescaled by ‖c‖_q^{(p−2)/(p−1)} it is the ½‖·‖_p² step (L = ½)
    np.testing.assert_allclose(-dual_norm(c, p) ** ((p - 2) / (p - 1)) * unscaled_direction(c, p),
                               lp_steepest_step(c, 0.5, p), rtol=1e-12)
    # ε placement: c/(|c|^{(p−2)/(p−1)} + ε)
    eps = 0.1
    np.testing.assert_allclose(unscaled_direction(c, p, eps), c / (np.abs(c) ** ((p - 2) / (p - 1)) + eps))


def test_interpolation_coefficient_solves_its_quadratic():
    for A, L, rho in [(0.0, 2.0, 0.3), (5.0, 1.0, 0.01), (123.0, 7.0, 1.5)]:
        a = interpolation_coefficient(A, L, rho)
        assert a > 0 and a * a == pytest.approx((2 * A + a) / (18 * L * rho), rel=1e-12)


def test_bisection_lands_in_the_band_or_reports_failure():
    lo, hi = math.log(0.5e-3), math.log(2.0)
    for r_true in (1e-3, 0.02, 0.9):
        log_rho, payload, probes, ok = bisect_log_rho(lambda lr: (lr - math.log(r_true), lr), lo, hi, 0.0, 60)
        assert ok and 0.5 * r_true <= math.exp(log_rho) <= 2 * r_true and payload == log_rho
        assert probes <= math.ceil(math.log2((hi - lo) / (2 * math.log(2)))) + 1
    # r jumps across ρ at ρ = 0.1 (no fixed point): the search stops and says so
    jump = lambda lr: (lr - math.log(0.5 if lr < math.log(0.1) else 1e-3), None)  # noqa: E731
    *_, probes, ok = bisect_log_rho(jump, lo, hi, 0.0, 30)
    assert not ok and probes == 30


def _small_problem(p=6.0, d=40, seed=0):
    rng = np.random.default_rng(seed)
    h = np.exp(rng.uniform(np.log(1e-2), 0, d))
    return diagonal_quadratic(h, rng.standard_normal(d), rng.standard_normal(d), p)


def test_hasd_rho_lands_in_its_band_and_counts_calls():
    prob = _small_problem()
    for warm in (True, False):
        tr = hasd(prob.grad, prob.x0, prob.L_p, prob.p, 60, warm_start=warm)
        assert tr.in_band.all()
        assert np.all((0.5 * tr.r <= tr.rho * (1 + 1e-12)) & (tr.rho <= 2 * tr.r * (1 + 1e-12)))
        lo, hi = rho_bracket(prob.d, prob.p)
        assert np.all((tr.rho >= lo) & (tr.rho <= hi))
        assert np.array_equal(tr.grad_calls, 2 * np.cumsum(tr.probes))
    # without the warm start the first probe is the bracket's midpoint, so the bisection does the work
    assert hasd(prob.grad, prob.x0, prob.L_p, prob.p, 60, warm_start=False).probes.max() > 1


def test_hasd_bound_holds_on_a_small_instance():
    prob = _small_problem()
    T = 200
    cps = list(range(1, T + 1))
    tr = hasd(prob.grad, prob.x0, prob.L_p, prob.p, T, f=prob.f, checkpoints=cps)
    gap = np.array(tr.f_values) - prob.f_star
    assert np.all(gap <= prob.R2**2 / (2 * tr.A[1:]))
    assert np.all(np.sqrt(tr.A[1:]) >= tr.G * np.arange(1, T + 1) / (18 * np.sqrt(prob.L_p)))
    assert np.all((tr.G >= 1 - 1e-12) & (tr.G <= prob.d ** (0.5 - 1 / prob.p) + 1e-12))


def test_baselines_meet_their_guarantees():
    prob = _small_problem(p=4.0)
    T = 150
    cps = list(range(T + 1))
    for L in (prob.L_p, prob.L_2):
        gap = np.array(agd(prob.grad, prob.x0, L, T, prob.f, cps).f_values) - prob.f_star
        k = np.arange(T + 1)
        assert np.all(gap[1:] <= 2 * L * prob.R2**2 / (k[1:] + 1) ** 2)
    sd = np.array(lp_steepest_descent(prob.grad, prob.x0, prob.L_p, prob.p, T, prob.f, cps).f_values)
    assert np.all(np.diff(sd) <= 1e-15)  # the descent-lemma step never increases f


@pytest.mark.parametrize("p", [4.0, 8.0])
def test_problem_constants_are_valid_smoothness_constants(p):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 10))
    probs = [_small_problem(p=p, d=10),
             smoothed_linf_regression(A, A @ rng.standard_normal(10), 0.3, rng.standard_normal(10), p)]
    q = dual_exponent(p)
    for prob in probs:
        for _ in range(200):
            x, y = rng.standard_normal(10) * 3, rng.standard_normal(10) * 3
            assert lp_norm(prob.grad(x) - prob.grad(y), q) <= prob.L_p * lp_norm(x - y, p) * (1 + 1e-9)
            assert np.linalg.norm(prob.grad(x) - prob.grad(y)) <= prob.L_2 * np.linalg.norm(x - y) * (1 + 1e-9)
    # the quadratic's L_p = ‖h‖_{p/(p−2)} is attained by δ_i ∝ h_i^{1/(p−2)}
    quad = probs[0]
    h = quad.grad(quad.x_star + 1) - quad.grad(quad.x_star)
    delta = h ** (1 / (p - 2))
    ratio = lp_norm(h * delta, q) / lp_norm(delta, p)
    assert ratio == pytest.approx(quad.L_p, rel=1e-10)


def test_linf_regression_optimum():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((5, 12))
    x0 = rng.standard_normal(12)
    prob = smoothed_linf_regression(A, A @ rng.standard_normal(12), 0.2, x0, 4.0)
    assert prob.f(prob.x_star) == pytest.approx(prob.f_star, rel=1e-12)
    assert np.linalg.norm(prob.grad(prob.x_star)) < 1e-12
    # the minimiser nearest x₀: x* − x₀ lies in the row space of A
    resid = (prob.x_star - x0) - np.linalg.pinv(A) @ A @ (prob.x_star - x0)
    assert np.linalg.norm(resid) < 1e-10
    with pytest.raises(ValueError, match="no solution"):
        smoothed_linf_regression(np.ones((3, 2)), np.array([1.0, 2.0, 3.0]), 0.1, np.zeros(2), 4.0)
