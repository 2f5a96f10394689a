"""Paper 1's report names the committed runs that predate the current main variants."""

import importlib.util
import json

from geomopt.results import REPO_ROOT


def _report(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "experiments/paper1"))  # undone after the test
    spec = importlib.util.spec_from_file_location("paper1_report", REPO_ROOT / "experiments/paper1/report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(root, name, optim):
    (root / "runs").mkdir(exist_ok=True)
    (root / "runs" / f"{name}.jsonl").write_text(json.dumps({"meta": {"config": {"optim": optim}}}) + "\n")


def test_older_variants_are_named_and_current_ones_are_not(tmp_path, monkeypatch):
    older_variants = _report(monkeypatch).older_variants
    _run(tmp_path, "clean__shrink_adamw__s0", {"psi": "smooth", "t": 3.0})  # before second_moment existed
    _run(tmp_path, "clean__clip_muon__s0", {"psi": "hard", "scale": "mad"})
    _run(tmp_path, "clean__adamw__s0", {"lr": 3e-3})
    lines = older_variants(tmp_path)
    assert any("1 shrink_adamw runs" in line for line in lines) and any("1 clip_muon runs" in line for line in lines)
    _run(tmp_path, "clean__shrink_adamw__s0", {"psi": "smooth", "second_moment": "winsor"})
    _run(tmp_path, "clean__clip_muon__s0", {"psi": "hard", "scale": "rowcol_geo"})
    assert older_variants(tmp_path) == []
