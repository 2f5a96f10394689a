"""experiments/paper3 on the protocol: the search keys are Stacey's own constructor arguments, the same
budget for every method; a tiny quick run (sklearn digits, a 1-layer GPT) writes trials, tuning records
and verdict runs, and report.py and the figures read them (and refuse runs that predate the protocol)."""

import importlib.util
import inspect
import json
import os
import subprocess
import sys

import pytest

from geomopt.optim.stacey import Stacey
from geomopt.report.claims import validate
from geomopt.results import REPO_ROOT, read_json
from geomopt.train import protocol
from geomopt.train.tune import split_search

RUN = REPO_ROOT / "experiments/paper3/run.py"
REPORT = REPO_ROOT / "experiments/paper3/report.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_mod():
    return _load(RUN, "paper3_run")


def test_stacey_search_uses_the_optimizers_own_arguments(run_mod):
    """τ and α are searched apart from lr, as the absolute values the constructor takes, and β2 is searched."""
    accepted = set(inspect.signature(Stacey.__init__).parameters)
    for task in run_mod.TASKS:
        for m in run_mod.STACEY:
            keys = [p.key for p in split_search(run_mod.methods_of(task)[m])[1]]
            assert keys[0] == "optim.lr" and {"optim.tau", "optim.alpha", "optim.betas"} <= set(keys)
            assert {k.split(".", 1)[1] for k in keys} <= accepted  # no tau_ratio / alpha_ratio
        for m, t in run_mod.methods_of(task).items():
            assert "optim.lr" in {p.key for p in split_search(t)[1]}, m
    assert set(run_mod.methods_of("image")) == {"sgd", "adamw", "lion", "stacey_p2", "stacey_pp"}
    assert set(run_mod.methods_of("gpt")) == {"adamw", "lion", "stacey_p2", "stacey_pp"}
    assert run_mod.SEEDS["full"] == [1, 2, 3] and run_mod.FRACTIONS["full"] == (0.25, 0.5, 1.0)


def test_full_cpu_plan_builds_valid_configs(run_mod, tmp_path, capsys):
    assert run_mod.main(["--dry-run", "--p-sweep", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "check__stacey_pp-p4: task=gpt" in printed and "check__lion: task=image" in printed
    make = run_mod.maker("cpu", "image", tmp_path, run_mod.scale("full", "cpu", "image"))
    for m, t in run_mod.methods_of("image").items():
        c = make(m, split_search(t)[0], [], f"check__{m}")
        assert c.dataset == "fashion_mnist" and c.steps == protocol.IMAGE_STEPS["full"] and c.schedule == "warmdown"
        assert "momentum" not in c.optim or c.optimizer == "sgd"  # the preset's SGD table never leaks
    arms = run_mod.p_sweep_specs("full", "gpt")
    assert {(a.split("-p")[0], t["optim"]["p"]) for a, t in arms.items()} == \
        {(m, p) for m in run_mod.STACEY for p in run_mod.P_SWEEP}


def test_gpu_dry_run(run_mod, tmp_path, capsys):
    assert run_mod.main(["--preset", "gpu", "--dry-run", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "check__stacey_p2: task=image" in printed and "steps=5100" in printed


def test_bad_override_exits_2(run_mod, tmp_path, capsys):
    assert run_mod.main(["--dry-run", "--out", str(tmp_path), "--gpt-override", "n_layr=2"]) == 2
    assert "n_layr" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("p3") / "results"
    image = ["dataset=digits", "steps=8", "batch_size=32", "eval_every=64", "width=4", "eval_batches=1"]
    gpt = ["n_layer=1", "n_head=2", "n_embd=16", "seq_len=16", "batch_size=8", "total_tokens=1024", "eval_every=256",
           "eval_tokens=128", "log_every=1"]
    cmd = [sys.executable, str(RUN), "--quick", "--p-sweep", "--out", str(root / "paper3")]
    cmd += [a for o in image for a in ("--image-override", o)] + [a for o in gpt for a in ("--gpt-override", o)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return root


def test_tiny_quick_run_writes_trials_records_and_verdict_runs(run_mod, tiny_results):
    res = tiny_results / "paper3"
    for task in run_mod.TASKS:
        where = run_mod.task_dir(res, task)
        names = {p.stem for p in (where / "runs").glob("*.jsonl")}
        quick = run_mod.QUICK_METHODS[task]
        assert {f"protocol__{m}__s1_b{b}" for m in quick for b in (50, 100)} <= names
        rec = read_json(where / "tuning.json")
        assert rec["metric"] == run_mod.SELECT_METRIC[task] and set(rec["methods"]) == set(quick)
        assert all(len(t["trials"]) == run_mod.TUNE_BUDGET["quick"] for t in rec["methods"].values())
        assert set(read_json(where / "tuning_p.json")["methods"]) == set(run_mod.p_sweep_specs("quick", task))


def test_report_on_tiny_run(tiny_results):
    out = tiny_results / "paper3"
    r = subprocess.run([sys.executable, str(REPORT), "--results", str(tiny_results)], capture_output=True, text=True,
                       env=ENV)
    assert r.returncode == 0, r.stderr
    report = (out / "REPORT.md").read_text()
    assert "Table 1 analogue" in report and "p sweep (tuned per p" in report and "final validation loss" in report
    assert "## Summary: claims and verdicts" in report and "## Protocol" in report and "τ = lr·tau_ratio" not in report
    claims = json.loads((out / "claims.json").read_text())
    for c in claims:
        validate(c)  # the registry schema (geomopt.report.claims)
    ids = {c["id"] for c in claims}
    assert {"images-acc", "images-nll", "images-acc-b50", "gpt-val-loss", "gpt-val-loss-b50"} <= ids
    assert all("early training" in c["statement"] for c in claims if c["id"].startswith(("images", "gpt")))
    best_p = [c for c in claims if c["id"].startswith("best-p-")]
    assert best_p and all(c["verdict_word"] == "inconclusive" for c in best_p)  # one seed per p


def test_report_refuses_runs_that_predate_the_protocol(tmp_path):
    old = tmp_path / "paper3" / "runs"
    old.mkdir(parents=True)
    (old / "image__sgd__lr0.1__s0.jsonl").write_text("{}\n")
    r = subprocess.run([sys.executable, str(REPORT), "--results", str(tmp_path)], capture_output=True, text=True,
                       env=ENV)
    assert r.returncode == 2 and "predate" in r.stderr and "run experiments/paper3/run.py" in r.stderr


def test_figures_on_tiny_run(tiny_results, tmp_path):
    from geomopt.report.figures import draw_all

    names = ["paper3/image_curves", "paper3/gpt_curves", "paper3/p_sweep"]
    drawn, bad = draw_all(tiny_results, tmp_path / "figs", only=names, out=lambda *_: None)
    assert (drawn, bad) == (3, [])
    assert all((tmp_path / "figs" / f"{n}.png").exists() for n in names)
