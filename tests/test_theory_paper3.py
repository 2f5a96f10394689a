"""Paper 3's theory checks in quick mode, and their figures drawn from the quick records."""

import importlib.util

import pytest

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
    for res in m["results"].values():
        assert set(res) == {"stacey_p2", "stacey_pp", "adamw", "lion"}
        assert all(0.0 <= r["unstable_fraction"] <= 1.0 for r in res.values())


def test_paper3_figures_draw(quick_records, tmp_path):
    from geomopt.report import figures

    results_dir, _ = quick_records
    # hasd_gap_vs_iterations shares its drawing code with hasd_gap_vs_grad_calls; skipped for time.
    names = ["paper3/hasd_gap_vs_grad_calls", "paper3/hasd_gain", "paper3/stacey_synthetic"]
    drawn, bad = figures.draw_all(results_dir, tmp_path, only=names, out=lambda *_: None)
    assert (drawn, bad) == (3, [])
    assert all((tmp_path / f"{n}.png").exists() for n in names)
