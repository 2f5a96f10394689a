"""`make reproduce-paperN QUICK=1` end to end (into a temporary directory), and the refusal
to run a paper whose parts are missing."""

import json
import subprocess
import sys

from geomopt.results import REPO_ROOT


def test_reproduce_paper1_quick_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/reproduce.py"), "paper1", "--quick",
                        "--base", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = tmp_path / "results" / "quick"
    report = (res / "paper1" / "REPORT.md").read_text()
    assert "## Tokens to target" in report and "shrink_adamw" in report
    claims = json.loads((res / "paper1" / "claims.json").read_text())
    assert claims and all(c["verdict_word"] and c["ours"] for c in claims)
    for check in ("localization", "bayes_shrinkage", "cauchy_convergence", "real_noise"):
        assert json.loads((res / "theory" / f"{check}.json").read_text())["meta"]["quick"] is True
    assert (tmp_path / "figures" / "quick" / "paper1" / "curves_clean.png").exists()
    names = {p.stem for p in (res / "paper1" / "runs").glob("*.jsonl")}
    assert {"protocol__adamw__s1_b50", "protocol__adamw__s1_b100", "cauchy__clip_muon__s1"} <= names
    assert sum(n.startswith("tune__") for n in names) == 8  # 4 methods × the quick budget of 2 trials
    assert json.loads((res / "paper1" / "tuning.json").read_text())["budget"] == 2


def test_unknown_paper_exits_2():
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/reproduce.py"), "paper9"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown paper" in r.stderr
