"""Bad input is found before any work starts (one line naming the problem and the fix, exit 2,
nothing written, no sweep marker left); Ctrl-C is one line, exit 130, and the sweep resumes."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geomopt.data import DataMissing
from geomopt.results import REPO_ROOT, read_run
from geomopt.train import cli, load_config
from geomopt.train.config import ConfigError, from_dict
from geomopt.train.sweep import run_sweep, sweep_session

SMOKE = str(REPO_ROOT / "experiments" / "presets" / "cpu" / "smoke.toml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}


def _paths(tmp_path, tag="run"):
    return [f"out={tmp_path}/{tag}/metrics.jsonl", f"checkpoint_dir={tmp_path}/{tag}/ckpt"]


def _results_state() -> tuple[str, list[Path]]:
    """git's view of results/ and figures/, and the sweep markers under results/ (ignored by git)."""
    status = subprocess.run(["git", "status", "--porcelain", "results", "figures"], cwd=REPO_ROOT,
                            capture_output=True, text=True).stdout
    return status, sorted((REPO_ROOT / "results").rglob(".sweep-in-progress"))


def _paper1():
    spec = importlib.util.spec_from_file_location("paper1_run", REPO_ROOT / "experiments/paper1/run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_data_dir_stops_a_sweep_before_any_run(tmp_path):
    before = _results_state()
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper1/run.py"), "--data-dir", "/nope",
                        "--out", str(tmp_path / "p1")], capture_output=True, text=True, env=ENV)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "paper1: data_dir /nope is not a directory" in r.stderr, r.stderr
    assert not (tmp_path / "p1").exists() and r.stdout == ""  # no marker, no run, no progress line
    assert _results_state() == before


def test_unknown_optim_key_names_the_closest_one(tmp_path, capsys):
    assert cli.main([SMOKE, *_paths(tmp_path), "optim.lrr=0.01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("train: optimizer 'adamw' has no hyper-parameter 'lrr'; did you mean 'lr'? "
                          "(accepted: lr, betas, eps, weight_decay,") and err.count("\n") == 1
    assert _paper1().main(["--out", str(tmp_path / "p1"), "adamw.bettas=[0.9, 0.95]"]) == 2
    err = capsys.readouterr().err
    assert "has no hyper-parameter 'bettas'; did you mean 'betas'?" in err and err.count("\n") == 1
    assert not any(tmp_path.rglob("*"))


def test_unknown_optimizer_is_found_before_data_or_model(tmp_path, capsys):
    """The data named here is missing: the optimizer is what the one line is about."""
    with pytest.raises(ConfigError, match="optimizer 'shrink_adam' unknown; did you mean 'shrink_adamw'"):
        from_dict({"optimizer": "shrink_adam", "steps": 1})
    (tmp_path / "empty").mkdir()
    assert cli.main([SMOKE, *_paths(tmp_path), "optimizer=shrink_adam", "dataset=fineweb",
                     f"data_dir={tmp_path / 'empty'}"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'shrink_adamw'?" in err and "FineWeb" not in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_every_spec_override_is_a_constructor_argument():
    from geomopt.optim.registry import OPTIMIZERS, accepted_hparams

    for spec in OPTIMIZERS.values():
        accepted = accepted_hparams(spec.cls())
        assert accepted and set(spec.overrides) <= set(accepted), spec.name


def test_unknown_grad_transform_and_config_key_suggest_the_closest():
    with pytest.raises(ConfigError, match="grad_transform 'shrnk' unknown; did you mean 'shrink'"):
        from_dict({"grad_transform": "shrnk", "steps": 1})
    with pytest.raises(ConfigError, match="config key 'stpes' unknown; did you mean 'steps'"):
        from_dict({"stpes": 1})


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_reproduce_of_an_unknown_paper_is_one_line():
    r = subprocess.run(["make", "-s", "reproduce-paper9"], cwd=REPO_ROOT, capture_output=True, text=True)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and out.count("\n") == 1, out
    assert "unknown paper 'paper9'; choose from paper1 paper2 paper3 paper4" in out and "No rule" not in out


def _smoke(tmp_path, name, *extra):
    return load_config(SMOKE, ["steps=4", "eval_every=0", "progress=false", f"name={name}", *extra,
                               f'out="{tmp_path}/runs/{{name}}.jsonl"', f'checkpoint_dir="{tmp_path}/ck/{{name}}"'])


def test_every_runs_data_is_checked_before_the_first_run(tmp_path):
    configs = [_smoke(tmp_path, "good"), _smoke(tmp_path, "bad", "dataset=fineweb", f"data_dir={tmp_path}")]
    with pytest.raises(DataMissing, match="fineweb_train"):
        with sweep_session(tmp_path / "sweep", configs):
            pass
    with pytest.raises(DataMissing, match="fineweb_train"):
        run_sweep(configs, log=lambda *_: None)
    assert not any(tmp_path.rglob("*"))  # no marker, no run of the good config


# A sweep as every paper's run.py drives it: two runs at a time in worker processes.
SWEEP = """
import sys
from geomopt.train import load_config
from geomopt.train.sweep import run_sweep, sweep_main, sweep_session

@sweep_main("demo")
def main(argv):
    out = argv[0]
    configs = [load_config({smoke!r}, ["steps=150", "checkpoint_every=5", "eval_every=0", "progress=false",
                                       f"seed={{s}}", f"name=r{{s}}", f'out="{{out}}/runs/{{{{name}}}}.jsonl"',
                                       f'checkpoint_dir="{{out}}/ck/{{{{name}}}}"']) for s in (0, 1)]
    with sweep_session(out, configs) as start:
        run_sweep(configs, since=start, jobs=2)
    return 0

if __name__ == "__main__":  # spawned workers import this file
    sys.exit(main(sys.argv[1:]))
"""


def _default_sigint() -> None:
    """Ctrl-C as at a terminal, even when this test runs where SIGINT is ignored (a shell's
    background job passes SIG_IGN on, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(cmd: list[str], ready) -> subprocess.CompletedProcess:
    """Start ``cmd`` in its own process group, wait (no time limit) until ``ready()``, then Ctrl-C
    the whole group as a terminal does."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    while not ready() and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_ctrl_c_stops_a_sweep_in_one_line_and_the_same_command_resumes(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP.format(smoke=SMOKE))
    out = tmp_path / "out"
    cmd = [sys.executable, str(script), str(out)]
    ckpts = [out / "ck" / f"r{s}" / "checkpoint.pt" for s in (0, 1)]
    r = _interrupt_when(cmd, lambda: any(p.exists() for p in ckpts))
    assert r.returncode == 130 and r.stderr == "demo: interrupted; run the same command again to resume\n", r.stderr
    assert (out / ".sweep-in-progress").exists()  # the session stays open: the next call resumes it
    started = [p.exists() for p in ckpts]
    again = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert not (out / ".sweep-in-progress").exists()
    metas = [read_run(out / "runs" / f"r{s}.jsonl")[0] for s in (0, 1)]
    assert all(m["status"] == "completed" for m in metas)
    resumed = [bool(m.get("resumed")) for m in metas]
    assert any(resumed) and all(r <= s for r, s in zip(resumed, started))  # resumed from the first call's checkpoints


def test_ctrl_c_stops_training_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "geomopt", "train", SMOKE, "steps=100000", "checkpoint_every=5",
           "progress=false", *_paths(tmp_path)]
    r = _interrupt_when(cmd, lambda: (tmp_path / "run" / "ckpt" / "checkpoint.pt").exists())
    assert r.returncode == 130 and r.stderr.count("\n") == 1 and "train: interrupted" in r.stderr, r.stderr
    assert "--resume" in r.stderr
