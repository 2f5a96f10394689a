"""Budgets: per-budget configs annealed at their own end, and warm-up–stable–decay branching
that is bit-exact against a separate shorter run."""

from pathlib import Path

import pytest
import torch

from geomopt.results import read_run
from geomopt.train import load_config, run
from geomopt.train.budget import branch_step, budget_configs, planned_steps, run_budgets
from geomopt.train.checkpoint import load_checkpoint
from geomopt.train.config import ConfigError
from geomopt.train.schedule import lr_multiplier, shared_steps

SMOKE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "smoke.toml")


def _cfg(tmp_path, *over):
    return load_config(SMOKE, [f"out={tmp_path}/{{name}}.jsonl", f"checkpoint_dir={tmp_path}/ck/{{name}}",
                               "progress=false", *over])


def test_budget_configs_scale_length_to_whole_steps_and_keep_the_schedule(tmp_path):
    cfg = _cfg(tmp_path, "steps=0", "total_tokens=102400", "schedule=warmdown", "warmdown_frac=0.3")  # 400 steps
    b25, b50, b100 = budget_configs(cfg, (1.0, 0.25, 0.5))
    assert [c.name for c in (b25, b50, b100)] == ["smoke_b25", "smoke_b50", "smoke_b100"]
    assert [planned_steps(c) for c in (b25, b50, b100)] == [100, 200, 400]
    assert b25.total_tokens == 100 * 8 * 32 and b25.warmdown_frac == 0.3 and b25.schedule == "warmdown"
    assert b25.out_path != b50.out_path and b25.checkpoint_path != b50.checkpoint_path
    assert [c.steps for c in budget_configs(_cfg(tmp_path, "steps=30"), (0.5, 1.0))] == [15, 30]
    img = _cfg(tmp_path, "steps=0", "epochs=2", "task=image", "dataset=digits")
    assert [c.epochs for c in budget_configs(img, (0.25, 1.0))] == [0.5, 2.0]


@pytest.mark.parametrize("fractions, words", [((0.0, 1.0), "(0, 1]"), ((1.5,), "(0, 1]"), ((), "(0, 1]"),
                                              ((0.5, 0.501), "at least 1%")])
def test_budget_configs_reject_bad_fractions(tmp_path, fractions, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("]", r"\]")):
        budget_configs(_cfg(tmp_path), fractions)


def test_budget_configs_need_name_in_the_output_paths(tmp_path):
    with pytest.raises(ConfigError, match="lacks {name}"):
        budget_configs(_cfg(tmp_path, f"out={tmp_path}/one.jsonl"))


def test_shared_steps_is_the_short_runs_decay_start_under_warmdown():
    # 100-step budget of a 400-step run, warmdown over its own last 20%: decay starts at step 80
    assert shared_steps(400, 100, warmup=10, shape="warmdown", warmdown_frac=0.2) == 80
    assert lr_multiplier(79, 100, 10, "warmdown", 0.2) == lr_multiplier(79, 400, 10, "warmdown", 0.2) == 1.0
    assert lr_multiplier(80, 100, 10, "warmdown", 0.2) < 1.0
    # cosine: the runs agree through warm-up and the first step after it only
    assert shared_steps(400, 100, warmup=10, shape="cosine") == 11
    assert shared_steps(400, 100, shape="constant") == 100


def test_branch_step_refuses_runs_that_differ_in_more_than_length(tmp_path):
    a, b = budget_configs(_cfg(tmp_path, "schedule=warmdown"), (0.5, 1.0))
    assert branch_step(b, a) == 15 - round(0.2 * 15)
    const_short, const_long = budget_configs(_cfg(tmp_path, "schedule=constant"), (0.5, 1.0))
    assert branch_step(const_long, const_short) == 14  # one step before its end: it evaluates its own end
    b.optim = {**b.optim, "lr": 1e-2}
    with pytest.raises(ConfigError, match="optim"):
        branch_step(b, a)


@pytest.mark.parametrize("schedule, branch_at", [("warmdown", 15), ("constant", 19), ("cosine", 6)])
def test_branched_budget_equals_a_separate_run_bit_for_bit(tmp_path, schedule, branch_at):
    over = ["steps=40", f"schedule={schedule}", "warmdown_frac=0.25", "warmup_steps=5", "checkpoint_every=1000",
            "eval_every=1280", "log_every=1"]
    cfg = _cfg(tmp_path / "branched", *over)
    p50, p100 = run_budgets(cfg, (0.5, 1.0), branch=True)
    separate = budget_configs(_cfg(tmp_path / "separate", *over), (0.5, 1.0))
    s50, s100 = (run(c) for c in separate)
    for branched_path, separate_path, steps in ((p50, s50, 20), (p100, s100, 40)):
        (mb, rb), (ms, rs) = read_run(branched_path), read_run(separate_path)
        assert mb["status"] == ms["status"] == "completed" and mb["total_steps"] == ms["total_steps"] == steps
        for key in ("train_loss", "val_loss", "lr"):
            assert rb.dropna(subset=[key])[key].tolist() == rs.dropna(subset=[key])[key].tolist(), key
    meta50, _ = read_run(p50)
    assert meta50["branched_from"] == {"name": "smoke_b100", "step": branch_at}  # warmdown: only its decay trained
    cb = load_checkpoint(budget_configs(cfg, (0.5, 1.0))[0].checkpoint_path)
    cs = load_checkpoint(separate[0].checkpoint_path)
    assert cb["step"] == cs["step"] == 20
    assert all(torch.equal(cb["model"][k], cs["model"][k]) for k in cs["model"])
    assert cb["optimizers"][0]["param_groups"][0]["lr"] == cs["optimizers"][0]["param_groups"][0]["lr"]
