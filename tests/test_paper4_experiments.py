"""experiments/paper4: the quick runner writes stamped results into --out; the report and figures read them."""

import json
import os
import subprocess
import sys

import pytest

from geomopt.report.claims import validate
from geomopt.results import REPO_ROOT, read_json, read_run

# a bare environment (no GEOMOPT_* paths); PYTHONPATH kept so a work tree tests its own package
MINIMAL_ENV = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
               **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("p4") / "results"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper4/run.py"), "--quick", "--out",
                        str(root / "paper4"), "--only", "tabular", "digits", "curves"],
                       capture_output=True, text=True, env=MINIMAL_ENV)
    assert r.returncode == 0, r.stderr
    return root


def test_quick_runner_writes_stamped_results(quick_results):
    out = quick_results / "paper4"
    tab = read_json(out / "tabular.json")
    assert tab["meta"]["git_commit"] and tab["meta"]["config"]["quick"] is True
    methods = {row["method"] for row in tab["rows"]}
    assert {"ours", "rill_only", "opt_kappa", "ours_right_precond", "whitening_ceiling"} <= methods
    ceiling = next(row["rir"] for row in tab["rows"] if row["method"] == "whitening_ceiling")
    assert all(row["rir"] <= ceiling * (1 + 1e-6) for row in tab["rows"])  # no θ beats the bound
    meta, df = read_run(out / "pairs_digits.jsonl")
    assert meta["config"]["dataset"] == "digits" and meta["config"]["din"] == 64 and len(df) == 3 * 3
    assert (df["rir"] > 0).all() and set(df["method"]) == {"ours", "rill_only", "opt_kappa"}
    assert set(read_json(out / "curves_digits.json")["curves"]) == {"identity", "ours", "rill_only", "opt_kappa"}


def test_report_writes_claims_from_results(quick_results):
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper4/report.py"), "--results",
                        str(quick_results)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    claims = json.loads((quick_results / "paper4" / "claims.json").read_text())
    assert isinstance(claims, list) and claims
    for c in claims:
        validate(c)  # the registry schema (geomopt.report.claims)
    report = (quick_results / "paper4" / "REPORT.md").read_text()
    assert "Table 1 analogue" in report and "IMMA" in report and "digits" in report


def test_paper4_figures_draw_from_quick_results(quick_results, tmp_path):
    from geomopt.report.figures import draw_all

    names = ["paper4/heatmap_digits", "paper4/probe_curves"]
    drawn, bad = draw_all(quick_results, tmp_path / "figs", only=names, out=lambda *_: None)
    assert (drawn, bad) == (2, [])
    for n in names:
        assert (tmp_path / "figs" / f"{n}.png").exists()


def test_runner_rejects_unknown_part(tmp_path):
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper4/run.py"), "--only", "mnist",
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr
