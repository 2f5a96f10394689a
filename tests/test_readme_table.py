"""The claims registry (schema, theory mapping) and the README table rendered from it."""

import json

import pytest

from geomopt.report import claims as C
from geomopt.report import verdict as V
from geomopt.report.readme import BEGIN, END, readme_table, render, update_readme
from geomopt.report.tokens import Interval
from geomopt.results import REPO_ROOT, write_json

REGIME = {"model": "GPT 4L d=128", "data": "shakespeare_char", "tokens": 1000, "steps": 10}


def _results(tmp_path):
    res = tmp_path / "results"
    write_json(res / "theory" / "c.json", {"check": "c", "paper": "paper9", "claim": "a theorem holds",
                                           "verdict": "FAIL", "summary": "x=1", "measured": {}, "meta": {}})
    _, v = V.compare({0: 1.9, 1: 2.0, 2: 2.1}, {0: 2.0, 1: 2.1, 2: 2.2})
    rec = C.record("paper9", "saving", "method saves 5%", "5%", "abstract", "+3.0% [1, 5]", v, REGIME,
                   "results/paper9/REPORT.md#protocol", "make reproduce-paper9",
                   interval=Interval(-0.1, -0.11, -0.09, 3))
    write_json(res / "paper9" / "claims.json", [rec])
    return res


def test_registry_from_results_validates_and_maps_theory(tmp_path):
    res = _results(tmp_path)
    recs = C.write_registry(res)
    assert [r["id"] for r in recs] == ["saving", "theory:c"]
    assert recs[1]["verdict"] == "contradicted" and recs[1]["rule"] == V.RULES["contradicted"]  # FAIL → contradicted
    on_disk = json.loads((res / "claims.json").read_text())
    assert on_disk["rules"] == V.RULES and len(on_disk["claims"]) == 2
    for r in C.read_registry(res):
        C.validate(r)


def test_a_measurement_of_two_claims_gives_one_record_each(tmp_path):
    (tmp_path / "theory").mkdir()
    rec = {"paper": "paper1", "claim": "Measurement (C1/C2)", "summary": "s", "verdict": "PASS", "meta": {},
           "measured": {"verdicts": {"C1": {"verdict": "holds"}, "C2": {"verdict": "not observed"}}}}
    (tmp_path / "theory" / "m.json").write_text(json.dumps(rec))
    recs = {r["id"]: r for r in C.theory_records(tmp_path)}
    assert set(recs) == {"theory:m:C1", "theory:m:C2"}
    assert recs["theory:m:C1"]["verdict"] == "reproduced" and recs["theory:m:C2"]["verdict"] == "contradicted"
    assert V.theory(rec).word == "contradicted"  # the whole measurement: one part not observed


def test_schema_rejects_bad_records():
    _, v = V.compare({0: 1.0}, {0: 2.0})
    good = C.record("p", "i", "s", "1", "Fig. 1", "o", v, REGIME, "proto", "cmd")
    for bad, match in (({**good, "verdict_word": "partly"}, "vocabulary"), ({**good, "n": "3"}, "n="),
                       ({**good, "rule": "my own rule"}, "vocabulary"), ({**good, "extra": 1}, "unknown"),
                       ({**good, "interval": [1.0]}, "interval"), ({**good, "regime": {"model": "m"}}, "regime")):
        with pytest.raises(ValueError, match=match):
            C.validate(bad)


def test_readme_update_and_duplicate_ids(tmp_path):
    res = _results(tmp_path)
    C.write_registry(res)
    table = render(res)
    assert "+3.0% [1, 5]" in table and "| paper9 |" in table and "**reproduced**" in table
    assert V.RULES["reproduced"] in table  # the rule text beside the verdicts
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nSTALE-TABLE\n{END}\nrest\n")
    update_readme(readme, table)
    text = readme.read_text()
    assert readme_table(text) == table and text.startswith("intro") and text.endswith("rest\n")
    rec = json.loads((res / "paper9" / "claims.json").read_text())
    write_json(res / "paper9" / "claims.json", rec + rec)
    with pytest.raises(ValueError, match="twice"):
        C.build(res)


def test_committed_registry_and_readme_table_match_their_rendering():
    """results/claims.json validates, and the README table is byte-identical to its rendering."""
    results = REPO_ROOT / "results"
    recs = C.read_registry(results)
    assert recs and all(r["verdict_word"] in V.VOCABULARY for r in recs)
    assert readme_table((REPO_ROOT / "README.md").read_text()) == render(results)
    assert C.build(results) == recs  # the registry is what results/ gives today
