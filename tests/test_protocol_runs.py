"""geomopt.train.protocol: verdict runs as budget groups in the resumable sweep, and their reader."""

import json

from geomopt.report.protocol import budget_verdicts, protocol_curves
from geomopt.results import REPO_ROOT, read_run
from geomopt.train.config import load_config
from geomopt.train.protocol import verdict_configs, verdict_runs
from geomopt.train.sweep import run_sweep

SMOKE = REPO_ROOT / "experiments/presets/cpu/smoke.toml"


def _make(tmp_path):
    def make(method, table, over, name):
        lr = {"adamw": [], "sgd": ["optimizer=sgd", "optim.lr=0.05", "optim.weight_decay=0.0"]}[method]
        return load_config(SMOKE, [f"out={tmp_path}/runs/{{name}}.jsonl", f"checkpoint_dir={tmp_path}/ck/{{name}}",
                                   "steps=8", "schedule=warmdown", "warmup_steps=2", "warmdown_frac=0.5",
                                   "eval_every=512", "progress=false", f"name={name}", *lr, *over])
    return make


def test_verdict_runs_are_budget_groups_that_resume_and_read_back(tmp_path):
    specs = {"adamw": {}, "sgd": {}}
    (tmp_path / "tuning.json").write_text(json.dumps({"methods": {m: {"chosen": {}} for m in specs}}))
    make = _make(tmp_path)
    out = verdict_runs(specs, make, tmp_path / "tuning.json", seeds=[1, 2], fractions=(0.5, 1.0),
                       log=lambda *a: None)
    assert [o.name for o in out[:2]] == ["protocol__adamw__s1_b50", "protocol__adamw__s1_b100"]
    assert len(out) == 8 and all(o.status == "completed" for o in out)
    meta, _ = read_run(tmp_path / "runs" / "protocol__adamw__s1_b50.jsonl")
    assert meta["total_steps"] == 4 and meta.get("branched_from", {}).get("step", 0) > 0
    again = verdict_runs(specs, make, tmp_path / "tuning.json", seeds=[1, 2], fractions=(0.5, 1.0),
                         log=lambda *a: None)
    assert all(o.status == "skipped" for o in again)
    curves = protocol_curves(tmp_path / "runs")
    assert set(curves) == {("adamw", 50), ("adamw", 100), ("sgd", 50), ("sgd", 100)}
    rows = budget_verdicts(curves, [("sgd", "adamw", None)])
    assert [r["budget"] for r in rows] == [50, 100] and all(r["result"].delta_final.interval.n == 2 for r in rows)


def test_verdict_configs_need_a_tuning_record(tmp_path):
    import pytest

    (tmp_path / "tuning.json").write_text(json.dumps({"methods": {"adamw": {"chosen": {"optim.lr": 0.001}}}}))
    cfgs = verdict_configs({"adamw": {}}, _make(tmp_path), tmp_path / "tuning.json", [1])
    assert cfgs[0].optim["lr"] == 0.001 and cfgs[0].seed == 1
    with pytest.raises(ValueError, match="no tuned values for sgd"):
        verdict_configs({"adamw": {}, "sgd": {}}, _make(tmp_path), tmp_path / "tuning.json", [1])


def test_a_group_whose_long_run_diverges_records_every_budget(tmp_path):
    make = _make(tmp_path)
    cfg = make("sgd", {}, ["optim.lr=1e6", "seed=1"], "protocol__sgd__s1")
    out = run_sweep([cfg], budgets=(0.5, 1.0), log=lambda *a: None)
    assert [o.status for o in out] == ["nonfinite", "nonfinite"]


def test_prune_runs_removes_only_files_outside_the_plan(tmp_path):
    from geomopt.train.sweep import prune_runs

    for n in ("protocol__adamw__s1_b100", "clean__adamw__s0", "tune__adamw__abc"):
        (tmp_path / f"{n}.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("kept")
    gone = prune_runs(tmp_path, {"protocol__adamw__s1_b100", "tune__adamw__abc"}, log=lambda *a: None)
    assert [p.name for p in gone] == ["clean__adamw__s0.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "protocol__adamw__s1_b100.jsonl",
                                                           "tune__adamw__abc.jsonl"]


def test_prune_plan_keeps_the_plans_trials_verdict_runs_and_opt_in_prefixes(tmp_path):
    from types import SimpleNamespace as NS

    from geomopt.train.protocol import prune_plan, trial_name

    values = {"optim.lr": 0.001}
    kept = [trial_name("adamw", values), "protocol__adamw__s1_b100", "fig1__adamw__s1"]
    for n in kept + ["image__adamw__s0", "tune__adamw__old"]:
        (tmp_path / f"{n}.jsonl").write_text("{}\n")
    searches = {"adamw": NS(trials=[NS(values=values)])}
    gone = prune_plan(tmp_path, searches, [NS(name="protocol__adamw__s1_b100")], keep_prefixes=("fig1__",))
    assert sorted(p.stem for p in gone) == ["image__adamw__s0", "tune__adamw__old"]
    assert sorted(p.stem for p in tmp_path.iterdir()) == sorted(kept)
