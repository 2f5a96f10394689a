from geomopt.report.readme import BEGIN, END, collect_rows, render, update_readme
from geomopt.results import write_json


def test_table_from_results_and_readme_update(tmp_path):
    res = tmp_path / "results"
    theory = {"check": "c", "paper": "paper9", "claim": "a theorem holds", "verdict": "PASS", "summary": "x=1",
              "measured": {}, "meta": {"quick": False}}
    write_json(res / "theory" / "c.json", theory)
    write_json(res / "paper9" / "claims.json", [
        {"claim": "method saves 5%", "command": "make reproduce-paper9", "ours": "+3.0% [1, 5]", "paper": "5%",
         "verdict": "saves tokens"},
        {"claim": "a theorem holds", "command": "python theory/c.py", "ours": "x=1", "paper": "-", "verdict": "PASS"}])
    rows = collect_rows(res)
    assert [r["claim"] for r in rows] == ["method saves 5%", "a theorem holds"]  # the repeat is listed once
    table = render(rows)
    assert "+3.0% [1, 5]" in table and "| paper9 |" in table and "| 5% |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nSTALE-TABLE\n{END}\nrest\n")
    update_readme(readme, table)
    text = readme.read_text()
    assert "STALE-TABLE" not in text and "+3.0% [1, 5]" in text and text.startswith("intro") and text.endswith("rest\n")
    assert "No results yet" in render([])
