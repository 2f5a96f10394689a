"""One progress display for sweeps and theory checks (done / total, current item, ETA), and quick
theory records under results/quick/theory, never over the committed ones."""

import io
import json
import subprocess

from geomopt.progress import Progress
from geomopt.report import checks
from geomopt.results import REPO_ROOT


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal():
    lines = []
    with Progress(3, "sweep", lines.append, file=io.StringIO()) as p:
        for name in ("a", "b", "c"):
            p.start(name)
            p.finish(name, "completed in 1 s")
    assert [ln.split(" (ETA")[0] for ln in lines] == [f"[sweep {i}/3] {n}: completed in 1 s"
                                                      for i, n in enumerate("abc", 1)]
    assert "(ETA " in lines[0] and "ETA" not in lines[-1]


def test_a_bar_with_the_current_item_and_eta_on_a_terminal():
    lines, term = [], _Terminal()
    with Progress(4, "theory", lines.append, file=term) as p:
        p.finish("first", "PASS in 1.0 s")
        p.start("second_check")
        p.finish("second_check", "FAIL in 1.0 s", notable=True)
    shown = term.getvalue()
    assert not lines  # no plain lines under a bar
    assert "theory 2/4" in shown and "second_check" in shown and "<" in shown  # elapsed<remaining
    assert "second_check: FAIL in 1.0 s" in shown  # a notable item is written above the bar


def _fake_checks(tmp_path, monkeypatch):
    (tmp_path / "good.py").write_text(
        "from geomopt.report.checks import Outcome\nPAPER='paper0'\nCLAIM='ok'\n"
        "def check(quick, seed):\n    return Outcome({'quick': quick}, True, 'ok')\n")
    monkeypatch.setattr(checks, "discover", lambda theory_dir=None: {"good": tmp_path / "good.py"})


def test_quick_theory_writes_under_results_quick(tmp_path, monkeypatch, capsys):
    """A results root in tmp_path stands in for the repo's: quick records go to <root>/quick/theory,
    full ones to <root>/theory."""
    _fake_checks(tmp_path, monkeypatch)
    root = tmp_path / "results"
    monkeypatch.setattr(checks, "RESULTS_DIR", root / "theory")
    monkeypatch.setattr(checks, "QUICK_RESULTS_DIR", root / "quick" / "theory")
    assert checks.main(["--quick"]) == 0
    assert json.loads((root / "quick" / "theory" / "good.json").read_text())["meta"]["quick"] is True
    assert not (root / "theory").exists()
    assert "[theory 1/1] good: PASS in" in capsys.readouterr().out
    assert checks.main([]) == 0
    assert json.loads((root / "theory" / "good.json").read_text())["meta"]["quick"] is False


def test_quick_defaults_point_outside_the_committed_results():
    assert checks.QUICK_RESULTS_DIR == REPO_ROOT / "results" / "quick" / "theory"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(checks.QUICK_RESULTS_DIR / "x.json")],
                             cwd=REPO_ROOT)
    assert ignored.returncode == 0  # git never sees quick records


def test_sweep_prints_one_line_per_finished_run(tmp_path):
    from geomopt.train import load_config
    from geomopt.train.sweep import run_sweep

    cfgs = [load_config(REPO_ROOT / "experiments/presets/cpu/smoke.toml",
                        ["steps=2", "eval_every=0", "progress=false", f"name=r{s}", f"seed={s}",
                         f'out="{tmp_path}/runs/{{name}}.jsonl"', f'checkpoint_dir="{tmp_path}/ck/{{name}}"'])
            for s in (0, 1)]
    lines = []
    run_sweep(cfgs, log=lines.append)
    assert [ln.split(":")[0] for ln in lines] == ["[sweep 1/2] r0", "[sweep 2/2] r1"]
    assert all("completed in" in ln for ln in lines)
