"""experiments/paper2: the plan builds valid configs for both presets; a tiny quick run writes
runs and the update-RMS record; the report computes REPORT.md and claims.json from them."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest
from conftest import require_data

from geomopt.report.claims import validate
from geomopt.results import REPO_ROOT, read_json

TINY_GPT = ["n_layer=1", "n_head=2", "n_embd=32", "seq_len=32", "batch_size=4", "total_tokens=1024",
            "eval_every=256", "eval_tokens=256", "warmup_steps=1"]
TINY_IMAGE = ["width=4", "batch_size=64", "epochs=0.005", "eval_batches=1", "warmup_steps=1"]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"paper2_{name}", REPO_ROOT / "experiments/paper2" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def runner():
    return _module("run")


def test_cpu_plan_shared_lr_sweep_and_images(runner, tmp_path):
    configs = runner.plan("full", "cpu", tmp_path, [], [])
    names = [c.name for c in configs]
    sweep = sum(len(runner.grid(spec, "full")) for spec in runner.load_methods()["gpt"]["tuned"].values())
    assert len(names) == len(set(names)) == 12 + sweep + 12  # shared 4×3, the lr grids on s0, image 4×3
    assert sweep == 4 * 5  # five-point log grids ×3 apart, from the methods' search tables
    shared = {c.name.split("__")[1]: c for c in configs if c.name.startswith("shared__") and c.seed == 0}
    assert set(shared) == {"adamw", "muon", "soap", "deva_sinf"}
    # one lr 1e-3 for every optimizer and for the AdamW half; Muon's 5e-3 with 0.2·√max scaling is lr 1e-3 at RMS 1
    assert all(shared[m].optim["lr"] == 1e-3 for m in ("adamw", "soap", "deva_sinf"))
    assert shared["muon"].optim == {**shared["muon"].optim, "lr": 5e-3, "adjust_lr_fn": "match_rms_adamw"}
    assert all(shared[m].adamw["lr"] == 1e-3 for m in ("muon", "soap", "deva_sinf"))
    gpt = [c for c in configs if c.task == "gpt"]
    assert {c.total_tokens for c in gpt} == {runner.CPU_SCALE["full"]["gpt"]["total_tokens"]}
    assert all(c.total_tokens // c.eval_every >= 20 for c in gpt)  # dense evaluation
    images = [c for c in configs if c.task == "image"]
    assert {c.dataset for c in images} == {"fashion_mnist"} and {c.seed for c in images} == {0, 1, 2}
    assert {c.optimizer for c in images} == {"sgd", "adamw", "muon", "deva_sinf"}
    # after the sweep: the chosen lr on every seed, nothing else
    final = runner.plan_gpt("full", "cpu", tmp_path, [], {"adamw": 3e-3, "muon": 0.03, "soap": 1e-3,
                                                          "deva_sinf": 1e-2})
    tuned = [c for c in final if c.name.startswith("tune__")]
    assert len(tuned) == 4 * 3 and {c.seed for c in tuned} == {0, 1, 2}
    assert {(c.optimizer, c.optim["lr"]) for c in tuned} == {("adamw", 3e-3), ("muon", 0.03), ("soap", 1e-3),
                                                             ("deva_sinf", 1e-2)}
    assert "tune__muon-lr0.03__s0" in {c.name for c in tuned}  # seed 0 is the sweep's own run (skipped)


def test_gpu_plan_wires_fineweb_and_cifar(runner, tmp_path, capsys):
    configs = runner.plan("full", "gpu", tmp_path, ['data_dir="/data/fw"'], ['data_dir="/data/cifar"'])
    gpt = [c for c in configs if c.task == "gpt"]
    images = [c for c in configs if c.task == "image"]
    assert {c.dataset for c in gpt} == {"fineweb"} and {c.n_embd for c in gpt} == {768}
    assert {c.data_dir for c in gpt} == {"/data/fw"} and {c.data_dir for c in images} == {"/data/cifar"}
    assert {(c.dataset, c.model) for c in images} == {("cifar10", "resnet18")}
    assert runner.main(["--preset", "gpu", "--dry-run", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "shared__deva_sinf__s2" in printed and "image__muon__s0" in printed


def test_bad_override_exits_2(runner, tmp_path, capsys):
    assert runner.main(["--dry-run", "--out", str(tmp_path), "--gpt", "n_layr=2"]) == 2
    assert "n_layr" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    require_data("fashion_mnist")  # the tiny image runs read Fashion-MNIST
    out = tmp_path_factory.mktemp("p2") / "results" / "paper2"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper2/run.py"), "--quick", "--out", str(out),
                        "--gpt", *TINY_GPT, "--image", *TINY_IMAGE], capture_output=True, text=True, timeout=120,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_tiny_run_then_report(runner, tiny_results):
    runs = sorted(p.stem for p in (tiny_results / "runs").glob("*.jsonl"))
    assert len(runs) == 4 + 4 * runner.QUICK_GRID + 4
    rms = read_json(tiny_results / "update_rms.json")["methods"]
    assert set(rms) == {"adamw", "muon", "soap", "deva_sinf"}
    assert all(math.isfinite(r["rms_per_paper_lr_median"]) and r["rms_per_paper_lr_median"] > 0 for r in rms.values())
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper2/report.py"), "--results",
                        str(tiny_results.parent)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    report = (tiny_results / "REPORT.md").read_text()
    assert "GPT tokens to target — one shared lr" in report and "per-method tuned lr" in report
    assert "Image classification" in report and "RMS(ΔW)" in report and "★" in report
    claims = json.loads((tiny_results / "claims.json").read_text())
    for c in claims:
        validate(c)  # the registry schema (geomopt.report.claims)
    vs_muon = [c for c in claims if c["statement"].startswith("DeVA-S∞ saves tokens over muon")]
    assert len(vs_muon) == 2 and all(c["paper_value"].startswith("6.6%") for c in vs_muon)
    assert any(c["paper_value"].startswith("2.3%") for c in claims)
    assert "## Summary: claims and verdicts" in report and "## Protocol" in report
    image = next(c for c in claims if "image" in c["statement"])
    assert "deva_sinf 0." in image["ours"]  # a computed accuracy, not a placeholder
    # report.py's lr choice is run.py's
    report_mod = _module("report")
    _, best = report_mod.lr_sweep(report_mod.load(tiny_results))
    assert best == runner.best_lrs(tiny_results)


def test_report_without_runs_exits_2(tmp_path):
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper2/report.py"), "--results", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "run experiments/paper2/run.py" in r.stderr


def test_figures_draw_from_tiny_results(tiny_results, tmp_path):
    from geomopt.report.figures import draw_all

    names = ["paper2/gpt_curves_shared", "paper2/gpt_curves_tuned", "paper2/image_accuracy"]
    drawn, bad = draw_all(tiny_results.parent, tmp_path / "figs", only=names, out=lambda *_: None)
    assert (drawn, bad) == (3, [])
    assert all((tmp_path / "figs" / f"{n}.png").exists() for n in names)


def test_tuning_protocol_plans_verdict_runs_from_its_record(runner, tmp_path):
    """--tune: the chosen values of tuning.json (every key, not only lr) on seeds disjoint from seed 0."""
    from geomopt.train import tune

    spaces = {m: tune.split_search(spec)[1] for m, spec in runner.load_methods()["gpt"]["tuned"].items()}
    assert all("optim.lr" in {p.key for p in sp} for sp in spaces.values())
    assert {p.key for p in spaces["muon"]} >= {"adamw.lr"}  # the AdamW half is tuned on its own
    searches = {}
    for m, space in spaces.items():
        searches[m] = tune.tune(space, lambda v: abs(math.log(v["optim.lr"] / 2e-3)), budget=6)
    tune.write_tuning(tmp_path / "tuning.json", searches, budget=6)
    planned = runner.plan_protocol("full", "cpu", tmp_path, [])
    assert {c.seed for c in planned} == set(runner.VERDICT_SEEDS["full"]) and 0 not in {c.seed for c in planned}
    muon = next(c for c in planned if c.name.startswith("protocol__muon"))
    assert muon.optim["lr"] == searches["muon"].chosen["optim.lr"]
    assert muon.adamw["lr"] == searches["muon"].chosen["adamw.lr"]
