"""The tuning protocol: bracketing log grids, equal budgets, failures last, and a selection split
that never touches what the verdicts read."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from geomopt.report.protocol import tuning_rows
from geomopt.results import read_run
from geomopt.train import TrainConfig, load_config, run
from geomopt.train import tune as T
from geomopt.train.config import ConfigError
from geomopt.train.tasks import HOLDOUT_FRACTION, GPTTask, ImageTask, holdout_split
from geomopt.data.images import load_images
from geomopt.train.dist import DistInfo

SMOKE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "smoke.toml")


def bowl(opt: dict):
    """A synthetic objective: (log10 x − log10 opt)² summed over keys."""
    return lambda v: sum((math.log10(v[k]) - math.log10(o)) ** 2 for k, o in opt.items())


def test_log_grid_spacing_is_bounded():
    g = T.log_grid(1e-2, 3.0, 5)
    assert g[2] == pytest.approx(1e-2) and max(b / a for a, b in zip(g, g[1:])) == pytest.approx(3.0)
    with pytest.raises(T.SearchSpaceError, match="factor"):
        T.log_grid(1e-2, 10.0, 3)


def test_an_edge_winner_triggers_an_extension():
    """Optimum 30× above the grid's top: the grid extends until the winner is interior."""
    space = T.parse_space({"optim.lr": {"center": 1e-3, "factor": 2, "points": 3}})
    s = T.tune(space, bowl({"optim.lr": 6e-2}), budget=20)
    assert s.extensions >= 5 and s.tried["optim.lr"][-1] > 6e-2 > s.tried["optim.lr"][0]
    assert s.chosen["optim.lr"] == pytest.approx(6e-2, rel=0.3) and not s.at_edge["optim.lr"]
    assert len(s.trials) == 20  # the whole budget is spent (refining after the bracket)


def test_budget_spent_at_an_edge_is_recorded_not_final():
    space = T.parse_space({"optim.lr": {"center": 1e-3, "factor": 2, "points": 3}})
    s = T.tune(space, bowl({"optim.lr": 10.0}), budget=5)
    assert len(s.trials) == 5 and s.at_edge["optim.lr"]


def test_each_key_is_tuned_on_its_own_with_the_same_budget():
    space = T.parse_space({"optim.lr": {"center": 0.1, "factor": 3}, "optim.tau_ratio": {"center": 0.01, "factor": 3},
                           "optim.betas": {"choices": [[0.9, 0.999], [0.9, 0.99]]}})
    opt = {"optim.lr": 0.05, "optim.tau_ratio": 2e-3}

    def objective(v):
        return bowl(opt)(v) + (0.5 if v["optim.betas"] == [0.9, 0.999] else 0.0)
    s = T.tune(space, objective, budget=30)
    assert len(s.trials) == 30
    assert s.chosen["optim.betas"] == [0.9, 0.99]
    assert s.chosen["optim.tau_ratio"] == pytest.approx(2e-3, rel=0.5)  # found apart from lr
    assert s.chosen["optim.lr"] == pytest.approx(0.05, rel=0.5)
    s2 = T.tune(T.parse_space({"optim.lr": {"center": 0.1}}), bowl({"optim.lr": 0.05}), budget=30)
    assert len(s2.trials) == len(s.trials)  # every method gets the same number of trials


def test_diverged_trials_rank_last():
    space = T.parse_space({"optim.lr": {"center": 1e-2, "factor": 2, "points": 5}})

    def objective(v):  # loss falls with lr until 2e-2, above which the run diverges
        return math.nan if v["optim.lr"] > 2e-2 else -math.log(v["optim.lr"])
    s = T.tune(space, objective, budget=12)
    assert s.chosen["optim.lr"] <= 2e-2 and all(t.score == math.inf for t in s.trials if t.values["optim.lr"] > 2e-2)
    assert s.best.score < math.inf


def test_search_table_is_split_from_the_method_overrides():
    rest, space = T.split_search({"optimizer": "adamw", "search": {"optim.lr": {"center": 3e-3}}})
    assert rest == {"optimizer": "adamw"} and [p.key for p in space] == ["optim.lr"]
    with pytest.raises(T.SearchSpaceError, match="choices"):
        T.parse_space({"optim.betas": {"choices": [[0.9, 0.99]]}})


# ------------------------------------------------------------------ the selection split
def _gpt(tmp_path, tag, *extra):
    return load_config(SMOKE, [f"out={tmp_path}/{tag}/m.jsonl", f"checkpoint_dir={tmp_path}/{tag}/ck", "steps=4",
                               "eval_every=0", "progress=false", *extra])


def test_gpt_select_windows_come_from_the_end_and_never_overlap(tmp_path):
    info = DistInfo(rank=0, world=1, local_rank=0)
    report = GPTTask(_gpt(tmp_path, "r"), torch.device("cpu"), info)
    select = GPTTask(_gpt(tmp_path, "s", "eval_split=select"), torch.device("cpu"), info)
    val = np.concatenate(report.data.val)
    assert report.val.shape == select.val.shape
    assert torch.equal(report.val[0], torch.from_numpy(val[: 33].astype(np.int64)))  # unchanged: from the start
    assert torch.equal(select.val[-1], torch.from_numpy(val[-33:].astype(np.int64)))  # from the end
    with pytest.raises(ConfigError, match="overlap"):
        GPTTask(_gpt(tmp_path, "x", "eval_split=select", f"eval_tokens={len(val) - 100}"), torch.device("cpu"), info)


def test_image_holdout_is_fixed_and_excluded_from_training():
    data = load_images("digits")
    a, b = holdout_split(data), holdout_split(data)
    n = len(data.train)
    assert len(a.test) == int(HOLDOUT_FRACTION * n) and len(a.train) + len(a.test) == n
    assert torch.equal(a.test.x, b.test.x)  # the same split every time, whatever the run seed
    rows = {tuple(r.tolist()) for r in a.train.x.flatten(1)}
    assert not any(tuple(r.tolist()) in rows for r in a.test.x.flatten(1)[:50])  # held out, not trained on


def test_selection_reads_only_the_select_split(tmp_path):
    """A tuning run logs select_* keys only, and the tuner's score cannot read a report-split run."""
    sel = run(_gpt(tmp_path, "sel", "eval_split=select"))
    rep = run(_gpt(tmp_path, "rep"))
    _, rows = read_run(sel)
    assert "select_loss" in rows and "val_loss" not in rows
    assert math.isfinite(T.selection_score(sel))
    with pytest.raises(ValueError, match="eval_split='select'"):
        T.selection_score(rep)
    with pytest.raises(ValueError, match="reads only"):
        T.selection_score(sel, "val_loss")
    img = run(TrainConfig(name="img", task="image", dataset="digits", model="cnn_small", width=4, batch_size=64,
                          steps=3, eval_split="select", progress=False, out=f"{tmp_path}/img/m.jsonl",
                          checkpoint_dir=f"{tmp_path}/img/ck", device="cpu", optimizer="sgd", optim={"lr": 0.05}))
    _, rows = read_run(img)
    assert {"select_loss", "select_acc"} <= set(rows) and "val_acc" not in rows


def test_a_tiny_real_search_writes_its_record(tmp_path):
    """Three trials of the smoke GPT on the selection split (trained together, geomopt.train.protocol), then
    tuning.json and its Protocol rows; a second call reads the finished trials back instead of retraining."""
    from geomopt.train.protocol import tune_methods

    def make(method, table, over, name):
        return _gpt(tmp_path, name, "steps=3", *over)
    spec = {"adamw": {"search": {"optim.lr": {"center": 3e-3, "factor": 3, "points": 3}}}}
    s = tune_methods(spec, make, 3, tmp_path / "tuning.json", log=lambda *a: None)["adamw"]
    assert len(s.trials) == 3 and all(math.isfinite(t.score) for t in s.trials)
    on_disk = json.loads((tmp_path / "tuning.json").read_text())
    assert on_disk["split"] == "select" and len(on_disk["methods"]["adamw"]["trials"]) == 3
    row = tuning_rows(on_disk)[0]
    assert row["trials"] == 3 and row["at_edge"] in ("yes", "no") and "select" in row["selected_on"]
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jsonl")}
    again = tune_methods(spec, make, 3, tmp_path / "tuning.json", log=lambda *a: None)["adamw"]
    assert [t.score for t in again.trials] == [t.score for t in s.trials]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jsonl")} == mtimes


def test_prefetch_sees_each_grid_before_it_is_scored():
    """tune(prefetch=...) is called with every untried value of a grid, at most the budget left."""
    seen = []
    space = T.parse_space({"x": {"center": 1.0, "factor": 2, "points": 3}})
    s = T.tune(space, lambda v: (math.log2(v["x"]) - 3) ** 2, budget=5, prefetch=lambda b: seen.append(b))
    assert len(s.trials) == 5 and [len(b) for b in seen][0] == 3
    assert sum(len(b) for b in seen) == 5


def test_protocol_row_lists_every_value_tried_per_key():
    """The values-tried column is the union over trials (not only the line through the chosen point)."""
    trials = [{"values": {"optim.lr": lr, "optim.betas": b}, "score": sc}
              for lr, b, sc in ((1e-3, [0.9, 0.99], 2.0), (3e-3, [0.9, 0.99], 2.5), (3e-4, [0.9, 0.99], 2.2),
                                (1e-3, [0.9, 0.95], 1.9))]
    rec = {"seed": 0, "split": "select",
           "methods": {"adamw": {"trials": trials, "grid": {"optim.lr": [1e-3], "optim.betas": [[0.9, 0.95]]},
                                 "chosen": {"optim.lr": 1e-3, "optim.betas": [0.9, 0.95]}, "at_edge": False,
                                 "metric": "select_loss"}}}
    row = tuning_rows(rec)[0]
    assert row["grid"] == "optim.lr ∈ [0.0003, 0.001, 0.003]; optim.betas ∈ [[0.9, 0.99], [0.9, 0.95]]"
    assert row["at_edge"] == "no"
