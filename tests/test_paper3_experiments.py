"""experiments/paper3: the plan builds valid configs for both presets; a tiny quick run (sklearn digits,
a 1-layer GPT, a few steps) goes through the trainer, then report.py and the figures read it."""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from geomopt.report.claims import validate
from geomopt.results import REPO_ROOT, read_run

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


def _plan(run_mod, mode, preset, tmp_path):
    planner = run_mod.Planner(mode, preset, tmp_path / "res", tmp_path / "ck", {})
    return planner, {"sweep": planner.lr_sweep(), "seeds": planner.more_seeds(), "p": planner.p_sweep(),
                     "gpt": planner.gpt()}


def test_full_cpu_plan(run_mod, tmp_path):
    planner, plan = _plan(run_mod, "full", "cpu", tmp_path)
    methods = planner.methods
    assert len(plan["sweep"]) == sum(len(run_mod.tune.planned_grid(s)) for s in methods["image"].values())
    assert len(plan["seeds"]) == 2 * len(methods["image"])  # seeds 1, 2 at the chosen lr
    assert {c.seed for c in plan["seeds"]} == {1, 2}
    assert {c.optim["p"] for c in plan["p"]} == {2.0, 2.5, 4.0}  # p = 3 is the main sweep
    assert {c.optimizer for c in plan["gpt"]} == {"adamw", "lion", "stacey_p2", "stacey_pp"}
    images = plan["sweep"] + plan["seeds"] + plan["p"]
    for c in images:  # evaluations fall exactly on 25% and 50% of the budget
        assert c.task == "image" and c.dataset == "fashion_mnist" and c.steps > 0
        assert 4 * c.eval_every == c.steps * c.batch_size
        assert "momentum" not in c.optim or c.optimizer == "sgd"  # the preset's SGD table never leaks
    names = [c.name for c in images + plan["gpt"]]
    assert len(names) == len(set(names))
    assert all(c.out_path.parent == tmp_path / "res" / "runs" for c in images + plan["gpt"])


def test_gpu_plan_uses_gpu_presets(run_mod, tmp_path, capsys):
    _, plan = _plan(run_mod, "full", "gpu", tmp_path)
    img = plan["sweep"][0]
    assert (img.dataset, img.model, img.epochs) == ("cifar10", "resnet18", 200.0)
    gpt = plan["gpt"][0]
    assert gpt.dataset == "fineweb" and gpt.n_layer == 12 and gpt.steps == 5100
    assert run_mod.main(["--preset", "gpu", "--dry-run", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "image__stacey_p2-p3__lr" in printed and "gpt__lion__lr" in printed


def test_quick_plan_is_small(run_mod, tmp_path):
    _, plan = _plan(run_mod, "quick", "cpu", tmp_path)
    assert len(plan["sweep"]) == 5 and plan["seeds"] == [] and len(plan["p"]) == 4 and len(plan["gpt"]) == 4


def test_chosen_lr_reads_the_sweep(run_mod, tmp_path):
    """Seeds 1, 2 run at the lr whose seed-0 run has the lowest final train NLL."""
    from geomopt.results import RunLog

    planner = run_mod.Planner("full", "cpu", tmp_path / "res", tmp_path / "ck", {})
    grid = run_mod.tune.planned_grid(planner.methods["image"]["lion"])
    assert planner.chosen_lr("lion") == (planner.methods["image"]["lion"]["lr"], False)
    for i, lr in enumerate(grid):
        cfg = planner.config("image", "lion", lr, 0)
        log = RunLog(cfg.out_path, {"config": {"name": cfg.name}, "seed": 0, "total_steps": 10})
        loss = 1.0 if i == len(grid) - 1 else 2.0
        log.log(step=10, tokens=1280, train_loss=loss)
        log.close(status="completed")
    assert planner.chosen_lr("lion") == (grid[-1], True)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("p3") / "results"
    out = root / "paper3"
    cmd = [sys.executable, str(RUN), "--quick", "--out", str(out), "--checkpoints", str(root / "ck"),
           "--image-override", "dataset=digits", "--image-override", "steps=8",
           "--image-override", "eval_every=256", "--image-override", "width=4",
           "--image-override", "log_every=1", "--gpt-override", "log_every=1",
           "--gpt-override", "n_layer=1", "--gpt-override", "n_head=2", "--gpt-override", "n_embd=16",
           "--gpt-override", "seq_len=16", "--gpt-override", "batch_size=8", "--gpt-override", "total_tokens=1024",
           "--gpt-override", "eval_every=256", "--gpt-override", "eval_tokens=256"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return root


def test_tiny_quick_run_writes_runs(tiny_results):
    runs = sorted((tiny_results / "paper3" / "runs").glob("*.jsonl"))
    assert len(runs) == 13
    meta, rows = read_run(tiny_results / "paper3" / "runs" / "image__stacey_pp-p4__lr0.03__s0.jsonl")
    assert meta["status"] == "completed" and meta["config"]["optim"]["p"] == 4.0
    assert rows["val_acc"].notna().sum() >= 4  # start + every quarter


def test_report_on_tiny_run(tiny_results):
    out = tiny_results / "paper3"
    r = subprocess.run([sys.executable, str(REPORT), "--results", str(tiny_results)], capture_output=True, text=True,
                       env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    report = (out / "REPORT.md").read_text()
    assert "Table 1 analogue" in report and "p sweep — images" in report and "GPT on Shakespeare" in report
    table1 = report.split("## Table 1 analogue")[1]
    row = next(line for line in table1.splitlines() if line.startswith("| Stacey(p,2) |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert all(math.isfinite(float(c.split()[0])) for c in cells[2:])  # 3 NLLs + 3 accuracies, computed
    claims = json.loads((out / "claims.json").read_text())
    for c in claims:
        validate(c)  # the registry schema (geomopt.report.claims)
    assert claims and any("final test accuracy" in c["statement"] for c in claims)
    assert "## Summary: claims and verdicts" in report and "## Protocol" in report
    assert any(ch.isdigit() for c in claims for ch in c["ours"])


def test_figures_on_tiny_run(tiny_results, tmp_path):
    from geomopt.report.figures import draw_all

    names = ["paper3/image_curves", "paper3/gpt_curves", "paper3/p_sweep"]
    drawn, bad = draw_all(tiny_results, tmp_path / "figs", only=names, out=lambda *_: None)
    assert (drawn, bad) == (3, [])
    assert all((tmp_path / "figs" / f"{n}.png").exists() for n in names)
