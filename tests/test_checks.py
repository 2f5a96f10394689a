"""The theory harness: records, table, exit codes (on a throw-away check module)."""

import json

from geomopt.report import checks
from geomopt.report.checks import Outcome, format_table, run_check


class _Passing:
    PAPER = "paper0"
    CLAIM = "two plus two is four"

    @staticmethod
    def check(quick, seed):
        return Outcome(measured={"sum": 2 + 2, "quick": quick}, passed=2 + 2 == 4, summary="sum=4")


class _Crashing:
    PAPER = "paper0"
    CLAIM = "never crashes"

    @staticmethod
    def check(quick, seed):
        raise RuntimeError("boom")


def test_record_format(tmp_path):
    rec = run_check("demo", _Passing, quick=True, seed=7, out_dir=tmp_path)
    on_disk = json.loads((tmp_path / "demo.json").read_text())
    assert on_disk["verdict"] == "PASS" and on_disk["paper"] == "paper0" and on_disk["measured"]["sum"] == 4
    for key in ("command", "git_commit", "seed", "torch_version", "device", "seconds"):
        assert key in on_disk["meta"]
    assert on_disk["meta"]["seed"] == 7 and on_disk["meta"]["quick"] is True
    assert "sum=4" in format_table([rec])


def test_crash_is_a_fail(tmp_path):
    rec = run_check("bad", _Crashing, quick=True, seed=0, out_dir=tmp_path)
    assert rec["verdict"] == "FAIL" and "boom" in rec["measured"]["error"]


def test_main_exit_codes(tmp_path, monkeypatch):
    (tmp_path / "good.py").write_text(
        "from geomopt.report.checks import Outcome\nPAPER='paper0'\nCLAIM='ok'\n"
        "def check(quick, seed):\n    return Outcome({'x': 1}, True, 'x=1')\n")
    (tmp_path / "badone.py").write_text(
        "from geomopt.report.checks import Outcome\nPAPER='paper9'\nCLAIM='fails'\n"
        "def check(quick, seed):\n    return Outcome({'x': 0}, False, 'x=0')\n")
    monkeypatch.setattr(checks, "THEORY_DIR", tmp_path)
    monkeypatch.setattr(checks, "discover", lambda theory_dir=tmp_path: {
        "good": tmp_path / "good.py", "badone": tmp_path / "badone.py"})
    out = tmp_path / "out"
    assert checks.main(["--quick", "--out", str(out), "--only", "good"]) == 0
    assert checks.main(["--quick", "--out", str(out)]) == 1
    assert checks.main(["--quick", "--out", str(out), "--only", "nope"]) == 2
    assert checks.main(["--quick", "--out", str(out), "--paper", "paper9"]) == 1
    assert json.loads((out / "badone.json").read_text())["verdict"] == "FAIL"
