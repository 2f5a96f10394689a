"""theory/immunization_linear.py: quick mode passes, verdicts are computed from measurements."""

import importlib.util

import numpy as np

from geomopt.results import REPO_ROOT


def _load():
    spec = importlib.util.spec_from_file_location("immunization_linear", REPO_ROOT / "theory" / "immunization_linear.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_mode_passes():
    mod = _load()
    assert mod.PAPER == "paper4"
    out = mod.check(quick=True, seed=0)
    m = out.measured
    assert out.passed, out.summary
    assert all(m["verdicts"].values())
    assert m["thm41"]["grad_fd_max_rel_err"] < 1e-5 and m["thm42"]["grad_theta_fd_max_rel_err"] < 1e-5
    # Prop 3.2's printed formula: exact when aligned, not in general (reported, not failed)
    assert m["prop32"]["printed_aligned_max_rel_err"] < 1e-10 < m["prop32"]["printed_general_median_rel_err"]
    assert m["prop32"]["aligned_distinct_spectra_counterexample"]["rir"] > 1


def test_prop32_printed_formula_is_the_diagonal_not_the_spectrum():
    mod = _load()
    rng = np.random.default_rng(5)
    K = mod.random_spd(rng, 4)
    theta = rng.standard_normal((4, 4))
    U, s, _ = np.linalg.svd(theta)
    diag = np.sort(np.diag(np.diag(s) @ U.T @ K @ U @ np.diag(s)))[::-1]
    np.testing.assert_allclose(mod.prop32_printed(theta, K), diag, rtol=1e-10)


def test_rir_ceiling_bounds_random_thetas_and_is_attained():
    mod = _load()
    from geomopt.immunization import immunization_ratios

    rng = np.random.default_rng(6)
    K_P, K_H = mod.random_spd(rng, 5), mod.random_spd(rng, 5)
    ceiling = mod.rir_ceiling(K_P, K_H)
    for _ in range(20):
        assert immunization_ratios(rng.standard_normal((5, 5)), K_H, K_P)["rir"] <= ceiling * (1 + 1e-9)
    w, V = np.linalg.eigh(K_P)
    np.testing.assert_allclose(immunization_ratios(V @ np.diag(w**-0.5) @ V.T, K_H, K_P)["rir"], ceiling, rtol=1e-8)
