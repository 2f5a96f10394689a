"""Paper 1's report: the main-variant table is read from the property record, never typed in."""

import importlib.util
import json

from geomopt.results import REPO_ROOT


def _report(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "experiments/paper1"))  # undone after the test
    spec = importlib.util.spec_from_file_location("paper1_report", REPO_ROOT / "experiments/paper1/report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_main_variant_table_lists_what_passes_and_the_first_failure(tmp_path, monkeypatch):
    main_variant = _report(monkeypatch).main_variant
    assert main_variant(tmp_path) == []
    ok = {p: {"pass": True} for p in ("iid", "jump", "rare", "cauchy")}
    rec = {"betas": [0.9, 0.99], "entries": 10, "properties": ["iid", "jump", "rare", "cauchy"],
           "variants": {"main": {"second_moment": "winsor", "warmup": "entry"}},
           "rows": [{"variant": "main", "psi": "smooth", "t": 3.0, **ok, "all_pass": True},
                    {"variant": "main", "psi": "redescend", "t": 2.0, **ok, "rare": {"pass": False},
                     "all_pass": False}]}
    (tmp_path / "shrink_properties.json").write_text(json.dumps(rec))
    row = next(line for line in main_variant(tmp_path) if line.startswith("| main"))
    assert "smooth 3" in row.split("|")[2] and "redescend 2 (rare)" in row.split("|")[3]
