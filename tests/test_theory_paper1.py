"""Quick modes of paper 1's numeric checks must PASS (their verdicts are computed, not set)."""

import importlib.util

import pytest

from geomopt.report.checks import THEORY_DIR


def _load(name):
    spec = importlib.util.spec_from_file_location(f"theory_{name}", THEORY_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["localization", "bayes_shrinkage", "cauchy_convergence", "real_noise"])
def test_quick_check_passes(name):
    module = _load(name)
    assert module.PAPER == "paper1"
    outcome = module.check(quick=True, seed=0)
    assert outcome.passed, outcome.summary
    assert outcome.summary


def test_verdicts_follow_the_measurements():
    loc = _load("localization").check(quick=True, seed=1)
    m = loc.measured
    assert loc.passed == (m["min_heavy_cut"] >= 100 and m["max_gaussian_change"] < 0.01 and m["bound"]["holds"])
    conv = _load("cauchy_convergence").check(quick=True, seed=1)
    smooth = conv.measured["methods"]["smooth"]
    assert conv.passed == (smooth["reached_all"] and smooth["slope_ci95"][1] >= -4 and conv.measured["sgd_fails"])


def test_real_noise_measures_every_class_at_four_points():
    out = _load("real_noise").check(quick=True, seed=0)
    record = out.measured["tasks"]["char"]
    points = record["points"]
    assert list(points) == ["0%", "5%", "50%", "100%"]
    steps = [p["step"] for p in points.values()]
    assert steps == sorted(steps) and steps[-1] == record["total_steps"]
    assert set(points["100%"]["classes"]) == {"embeddings", "head", "hidden", "gains"}
    assert set(out.measured["verdicts"]) == {"C1", "C2"}
