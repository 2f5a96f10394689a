"""Paper 3's theory checks in quick mode, and their figures drawn from the quick records."""

import importlib.util

import numpy as np
import pytest
import torch

from geomopt.report.checks import THEORY_DIR, run_check


def _load(name):
    spec = importlib.util.spec_from_file_location(f"theory_{name}", THEORY_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    recs = {name: run_check(name, _load(name), quick=True, seed=0, out_dir=out / "theory")
            for name in ("lp_acceleration", "stacey_synthetic")}
    return out, recs


def test_lp_acceleration_quick_passes(quick_records):
    rec = quick_records[1]["lp_acceleration"]
    m = rec["measured"]
    assert rec["verdict"] == "PASS", rec["summary"]
    assert m["bounds_hold_everywhere"] and m["accelerated_everywhere"]
    lo, hi = m["G2_over_ceiling_range"]
    assert 0 < lo <= hi <= 1 + 1e-9


def test_stacey_synthetic_quick_runs_and_computes_its_verdict(quick_records):
    rec = quick_records[1]["stacey_synthetic"]
    m = rec["measured"]
    assert "error" not in m, m
    assert set(m["results"]) == {"p2", "p4", "p8"}
    expected = m["holds_for_every_p"] and m["margin_largest_at_p8"]
    assert rec["verdict"] == ("PASS" if expected else "FAIL")
    for key, res in m["results"].items():
        assert set(res) == {"stacey_p2", "stacey_pp", "adamw", "lion"}
        assert all(0.0 <= r["unstable_fraction"] <= 1.0 for r in res.values())
        for name in ("stacey_p2", "stacey_pp"):  # the verdict: stability and speed only, not the final value
            v = m["verdicts"][key][name]
            assert v["holds"] == (v["more_stable"] and v["faster"])


def test_no_nan_run_is_dropped_from_any_statistic(quick_records):
    syn = _load("stacey_synthetic")
    final = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0] + [float("nan")] * 4, dtype=torch.float64)
    nonfinite = torch.isnan(final)
    reached = torch.tensor([10.0] * 10, dtype=torch.float64)  # every run hit the target before diverging
    st = syn.run_statistics(final, torch.full((10,), 100.0, dtype=torch.float64), nonfinite, reached)
    assert st["n_runs"] == 10 and st["unstable_fraction"] == st["nonfinite_fraction"] == 0.4
    assert st["final_median"] == 5.5  # of [1..6, inf×4]; dropping the NaN runs would give 3.5
    assert st["final_iqr"][1] == float("inf")
    assert st["reached_fraction"] == 0.6 and st["iters_to_target_median"] == 10.0
    final[5] = float("nan")  # 5 of 10 failed: the median touches a failure
    st = syn.run_statistics(final, torch.full((10,), 100.0, dtype=torch.float64), torch.isnan(final), reached)
    assert st["final_median"] == float("inf") and st["iters_to_target_median"] == float("inf")
    # In the quick record every restart is counted: medians over all runs, failures as +inf.
    m = quick_records[1]["stacey_synthetic"]["measured"]
    for res in m["results"].values():
        for r in res.values():
            f = np.asarray(r["final"], dtype=float)
            assert r["n_runs"] == len(f) == m["restarts"]
            assert r["final_median"] == float(np.median(np.where(np.isfinite(f), f, np.inf)))


def test_paper3_figures_draw(quick_records, tmp_path):
    from geomopt.report import figures

    results_dir, _ = quick_records
    # hasd_gap_vs_iterations shares its drawing code with hasd_gap_vs_grad_calls; skipped for time.
    names = ["paper3/hasd_gap_vs_grad_calls", "paper3/hasd_gain", "paper3/stacey_synthetic"]
    drawn, bad = figures.draw_all(results_dir, tmp_path, only=names, out=lambda *_: None)
    assert (drawn, bad) == (3, [])
    assert all((tmp_path / f"{n}.png").exists() for n in names)
