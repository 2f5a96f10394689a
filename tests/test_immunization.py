"""geomopt.immunization: regularizer gradients, preconditioning, metrics, RIR_θ₀, bad inputs."""

import numpy as np
import pytest
import torch

from geomopt.immunization import (
    ImmunizationConfig,
    LinearTask,
    condition_number,
    hessian,
    immunization_ratios,
    immunize,
    inverse_covariance,
    precondition,
    relative_immunization_ratio,
    rir_theta0,
)
from geomopt.immunization import regularizers as R
from geomopt.immunization.metrics import exact_line_search_gd


def _spd(rng, d, kappa=50.0):
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return Q @ np.diag(np.geomspace(kappa, 1.0, d)) @ Q.T


def _fd(f, X, h=1e-6):
    G = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        E = np.zeros_like(X)
        E[idx] = h
        G[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return G


def test_condition_number_over_nonzero_spectrum():
    S = np.diag([4.0, 2.0, 0.0])
    assert condition_number(S) == pytest.approx(2.0)
    assert condition_number(np.diag([9.0, 3.0, 1.0])) == pytest.approx(9.0)
    assert condition_number(np.diag([9.0, 3.0, 1e-30]), rank=3) == pytest.approx(9e30)


def test_r_ill_on_hand_computed_case():
    S = np.diag([3.0, 1.0])  # D = (9 + 1)/4 − 1/2 = 2
    assert R.r_ill_gap(S) == pytest.approx(2.0)
    assert R.r_ill(S) == pytest.approx(0.5)
    assert R.r_well(S) == pytest.approx(4.5 - 10 / 4)
    # rank-deficient: k = rank = 2, not the dimension 3 (spec pitfall 1): D stays ≥ 0
    assert R.r_ill_gap(np.diag([3.0, 1.0, 0.0])) == pytest.approx(2.0)
    assert R.r_ill(np.eye(3)) == float("inf")


@pytest.mark.parametrize("shape", [(5, 5), (4, 6)])
def test_s_gradients_match_autograd_and_finite_differences(shape):
    rng = np.random.default_rng(0)
    S = rng.standard_normal(shape)
    k = min(shape)
    for closed, value, torch_fn in ((R.r_ill_grad, R.r_ill, R.r_ill_torch), (R.r_well_grad, R.r_well, R.r_well_torch)):
        g = closed(S, rank=k)
        St = torch.tensor(S, requires_grad=True)
        torch_fn(St, k).backward()
        np.testing.assert_allclose(g, St.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g, _fd(lambda X: value(X, rank=k), S), rtol=1e-5, atol=1e-8)


def test_theta_gradients_match_autograd_with_rank_deficient_K():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 5))  # K = XᵀX has rank 3 < 5: k must be the rank
    K = X.T @ X
    theta = np.eye(5) + 0.3 * rng.standard_normal((5, 5))
    for closed, torch_fn in ((R.r_ill_grad_theta, R.r_ill_torch), (R.r_well_grad_theta, R.r_well_torch)):
        g = closed(theta, K, rank=3)
        th = torch.tensor(theta, requires_grad=True)
        torch_fn(th.T @ torch.tensor(K) @ th, 3).backward()
        np.testing.assert_allclose(g, th.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert R.r_ill_gap(hessian(theta, K), rank=3) > 0


def test_log_condition_gradient_matches_autograd():
    rng = np.random.default_rng(2)
    K = _spd(rng, 4)
    theta = np.eye(4) + 0.2 * rng.standard_normal((4, 4))
    th = torch.tensor(theta, requires_grad=True)
    R.log_condition_torch(th.T @ torch.tensor(K) @ th, 4).backward()
    np.testing.assert_allclose(R.log_condition_grad_theta(theta, K, rank=4), th.grad.numpy(), rtol=1e-8)


def test_left_preconditioned_step_keeps_eigenvectors_right_does_not():
    rng = np.random.default_rng(3)
    K = _spd(rng, 5)
    theta = rng.standard_normal((5, 5))
    A = R.r_ill_direction(theta, K, rank=5)
    g = R.r_ill_grad_theta(theta, K, rank=5)
    eta = 1e-3 / np.abs(np.linalg.eigvalsh(A)).max()
    K_inv = inverse_covariance(K)
    left = theta - eta * precondition(g, K_inv, "left")
    M = np.eye(5) - 2 * eta * A  # Thm 4.3: H′ = (I − 2ηA)H(I − 2ηA)
    np.testing.assert_allclose(hessian(left, K), M @ hessian(theta, K) @ M, rtol=1e-10, atol=1e-10)
    right = theta - eta * precondition(g, K_inv, "right")
    assert not np.allclose(hessian(right, K), M @ hessian(theta, K) @ M, rtol=1e-6)
    assert condition_number(hessian(left, K)) > condition_number(hessian(theta, K))


def test_rir_hand_computed():
    K_H, K_P = np.diag([4.0, 1.0]), np.diag([4.0, 1.0])
    theta = np.diag([1.0, 0.5])  # H_H = H_P = diag(4, 0.25): κ 16 vs 4
    r = immunization_ratios(theta, K_H, K_P)
    assert r["i"] == pytest.approx(4.0) and r["ii"] == pytest.approx(4.0) and r["rir"] == pytest.approx(1.0)
    r = immunization_ratios(np.diag([2.0, 1.0]), np.diag([4.0, 1.0]), np.diag([1.0, 4.0]))
    # H_H = diag(16, 1): κ 16 (was 4); H_P = diag(4, 4): κ 1 (was 4)  ->  (i) = 4, (ii) = 1/4, RIR = 16
    assert (r["i"], r["ii"], r["rir"]) == pytest.approx((4.0, 0.25, 16.0))
    assert relative_immunization_ratio(16, 4, 1, 4) == pytest.approx(16.0)
    with pytest.raises(ValueError, match="condition number"):
        relative_immunization_ratio(0.5, 4, 1, 4)


def _save_and_load_extractors(tmp_path):
    torch.manual_seed(0)
    net0 = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4)).double()
    torch.save(net0.state_dict(), tmp_path / "theta0.pt")
    with torch.no_grad():
        net0[2].weight.mul_(torch.tensor([[5.0], [1.0], [1.0], [0.2]], dtype=torch.float64))
    torch.save(net0.state_dict(), tmp_path / "thetaI.pt")
    loaded = []
    for name in ("theta0.pt", "thetaI.pt"):  # two separate objects, each from its own checkpoint
        net = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4)).double()
        net.load_state_dict(torch.load(tmp_path / name))
        loaded.append(net.eval())
    return loaded


def test_rir_theta0_compares_two_loaded_models(tmp_path):
    net0, netI = _save_and_load_extractors(tmp_path)
    assert net0 is not netI
    rng = np.random.default_rng(0)
    X_H = torch.tensor(rng.standard_normal((300, 6)))
    X_P = torch.tensor(rng.standard_normal((300, 6)) * np.array([3, 1, 1, 1, 1, 0.5]))
    with torch.no_grad():
        differ = rir_theta0(net0, netI, X_H, X_P, groups=5, group_size=50)
        same = rir_theta0(net0, net0, X_H, X_P, groups=5, group_size=50)
    assert same["rir"] == 1.0 and same["i"] == 1.0 and same["ii"] == 1.0
    assert abs(differ["i"] - 1) > 0.05 and abs(differ["rir"] - 1) > 1e-3
    assert len(differ["per_group_rir"]) == 5
    with pytest.raises(ValueError, match="group_size"):
        rir_theta0(net0, netI, X_H[:10], X_P, groups=2, group_size=50)


def test_exact_line_search_is_one_step_on_identity_and_slower_when_ill_conditioned():
    e0 = np.array([1.0, -2.0, 0.5])
    assert exact_line_search_gd(np.eye(3), e0, 1)[1] == pytest.approx(0.0, abs=1e-30)
    slow = exact_line_search_gd(np.diag([1000.0, 1.0, 10.0]), e0, 20)
    fast = exact_line_search_gd(np.diag([2.0, 1.0, 1.5]), e0, 20)
    assert slow[10] > fast[10]
    with pytest.raises(ValueError, match="optimum"):
        exact_line_search_gd(np.eye(3), np.zeros(3), 5)


def test_bad_inputs_raise_clear_errors():
    singular = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="singular.*ridge"):
        inverse_covariance(singular)
    assert np.all(np.isfinite(inverse_covariance(singular, ridge=1e-3)))
    with pytest.raises(ValueError, match="square"):
        precondition(np.ones((3, 2)), np.eye(3), "right")
    with pytest.raises(ValueError, match="square"):
        hessian(np.ones((3, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="square"):
        immunize(LinearTask(np.eye(3), np.ones(3), np.eye(3)), ImmunizationConfig(steps=1, precondition="right"),
                 theta0=np.ones((3, 2)))
    with pytest.raises(ValueError, match="rows"):
        immunize(LinearTask(np.eye(3), np.ones(3), np.eye(3)), ImmunizationConfig(steps=1), theta0=np.ones((2, 2)))
    with pytest.raises(ValueError, match="method"):
        ImmunizationConfig(method="imma")
    with pytest.raises(ValueError, match="precondition"):
        ImmunizationConfig(precondition="both")
    with pytest.raises(ValueError, match="rank"):
        R.r_ill(np.eye(3), rank=5)
    task = LinearTask(np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.ones(2), np.eye(3))
    with pytest.raises(ValueError, match="singular"):
        immunize(task, ImmunizationConfig(steps=1, ridge=0.0))


def test_algorithm1_raises_rir_on_a_synthetic_pair():
    rng = np.random.default_rng(4)
    X_P = rng.standard_normal((200, 6)) * np.geomspace(5, 1, 6)
    X_H = rng.standard_normal((200, 6)) @ np.linalg.qr(rng.standard_normal((6, 6)))[0] * np.geomspace(1, 5, 6)
    task = LinearTask(X_P, X_P @ rng.standard_normal(6), X_H)
    res = immunize(task, ImmunizationConfig(method="ours", steps=200, lr=0.01))
    r = immunization_ratios(res.theta, task.K_H, task.K_P)
    assert res.diverged_at is None and r["rir"] > 1.5
    # Def. 3.1(c): θ_I stays invertible, so D_P's least-squares loss is unchanged
    assert task.task_loss(res.theta, task.least_squares_probe(res.theta)) == pytest.approx(
        task.task_loss(np.eye(6), task.least_squares_probe(np.eye(6))), rel=1e-6)


def test_non_square_theta_last_block_case():
    rng = np.random.default_rng(7)
    Z_P = rng.standard_normal((150, 6)) * np.geomspace(4, 1, 6)
    Z_H = rng.standard_normal((150, 6)) * np.geomspace(1, 4, 6)
    theta0 = rng.standard_normal((6, 3))  # a Din×Dout last block, Din ≠ Dout
    task = LinearTask(Z_P, rng.standard_normal((150, 2)), Z_H)
    res = immunize(task, ImmunizationConfig(steps=50, lr=0.01), theta0=theta0)
    assert res.theta.shape == (6, 3) and res.omega.shape == (3, 2) and res.diverged_at is None
    r = immunization_ratios(res.theta, task.K_H, task.K_P, theta_ref=theta0)
    assert r["rir"] > 1
    assert immunization_ratios(theta0, task.K_H, task.K_P, theta_ref=theta0)["rir"] == 1.0
