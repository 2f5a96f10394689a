"""The trainer: bad configs, SIGKILL + resume bit for bit, NaN stop, grad transforms, image runs."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from geomopt.results import read_run
from geomopt.train import TrainConfig, cli, load_config, register_grad_transform, run
from geomopt.train.config import ConfigError, apply_overrides, from_dict
from geomopt.train.loop import NonFiniteLoss
from geomopt.train.schedule import lr_multiplier
from geomopt.train.transforms import GRAD_TRANSFORMS

SMOKE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "smoke.toml")


def _paths(tmp_path, tag="run"):
    return [f"out={tmp_path}/{tag}/metrics.jsonl", f"checkpoint_dir={tmp_path}/{tag}/ckpt"]


def _train_losses(path):
    meta, df = read_run(path)
    return meta, df.dropna(subset=["train_loss"])["train_loss"].tolist(), df.dropna(subset=["val_loss"])["val_loss"].tolist()


@pytest.mark.parametrize("override, words", [
    ("optimizer=adamw2", "optimizer 'adamw2' unknown"),
    ("optim.lr=-0.1", "lr must be a number >= 0"),
    ("data_dir=/nonexistent/geomopt", "/nonexistent/geomopt"),
    ("learning_rate=0.1", "config key 'learning_rate' unknown"),
    ("steps=many", "expected int"),
    ("optim.betaz=3", "betaz"),
])
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, repo_root, override, words):
    rc = cli.main([SMOKE, *_paths(tmp_path), override])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not any(tmp_path.rglob("*")), "nothing may be written for a bad config"


def test_bad_config_through_the_real_cli(tmp_path, repo_root, python):
    proc = subprocess.run([python, "-m", "geomopt", "train", SMOKE, *_paths(tmp_path), "dataset=fineweb",
                           f"data_dir={tmp_path}"], cwd=repo_root, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "fineweb_train_*.bin" in proc.stderr and str(tmp_path) in proc.stderr
    assert not (tmp_path / "run").exists()


def test_overrides_are_type_checked_and_merge_tables(repo_root):
    cfg = load_config(SMOKE, ["optim.lr=0.01", "epochs=0", "name=abc", "grad_clip=1"])
    assert cfg.optim == {"lr": 0.01, "weight_decay": 0.1} and cfg.name == "abc" and cfg.grad_clip == 1.0
    assert apply_overrides({"optim": {"lr": 1}}, ["optim.betas=[0.9, 0.95]"])["optim"]["betas"] == [0.9, 0.95]
    with pytest.raises(ConfigError, match="exactly one of"):
        from_dict({"steps": 3, "total_tokens": 100})
    with pytest.raises(ConfigError, match="'task'"):
        from_dict({"steps": 3, "task": "vision"})


def test_schedule_shapes():
    assert [round(lr_multiplier(s, 10, 2, "constant"), 3) for s in range(3)] == [0.5, 1.0, 1.0]
    assert lr_multiplier(2, 10, 2, "cosine", final=0.1) == 1.0 and lr_multiplier(9, 10, 2, "cosine", final=0.1) == pytest.approx(0.1)
    wd = [lr_multiplier(s, 10, 0, "warmdown", warmdown_frac=0.4, final=0.0) for s in range(10)]
    assert wd[:6] == [1.0] * 6 and wd[6:] == pytest.approx([0.75, 0.5, 0.25, 0.0])


def test_sigkill_then_resume_matches_an_uninterrupted_run_bit_for_bit(tmp_path, repo_root, python):
    common = [SMOKE, "steps=120", "checkpoint_every=10", "eval_every=1280", "progress=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [python, "-m", "geomopt", "train", *common, *_paths(tmp_path, "killed")]
    proc = subprocess.Popen(cmd, cwd=repo_root, env=env, stderr=subprocess.PIPE)
    ckpt = tmp_path / "killed" / "ckpt" / "checkpoint.pt"
    while not ckpt.exists() and proc.poll() is None:  # no wall-clock limit: a slow machine only waits longer
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run(cmd + ["--resume"], cwd=repo_root, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert cli.main([*common, *_paths(tmp_path, "whole")]) == 0
    meta_k, train_k, val_k = _train_losses(tmp_path / "killed" / "metrics.jsonl")
    meta_w, train_w, val_w = _train_losses(tmp_path / "whole" / "metrics.jsonl")
    assert meta_k["status"] == meta_w["status"] == "completed" and meta_k["resumed"][0]["step"] >= 10
    assert len(train_k) == 120 and train_k == train_w and val_k == val_w  # exact, to the last bit


def _digits_cfg(tmp_path, tag, **kw):
    base = dict(name=tag, task="image", dataset="digits", model="resnet_small", width=4, batch_size=64,
                epochs=2, augment_crop_pad=1, augment_flip=True, eval_every=640, log_every=1, progress=False,
                optimizer="sgd", optim={"lr": 0.05}, out=f"{tmp_path}/{tag}/m.jsonl",
                checkpoint_dir=f"{tmp_path}/{tag}/ckpt", device="cpu")
    return TrainConfig(**{**base, **kw})


def test_image_run_stops_per_call_and_resumes_exactly(tmp_path):
    whole = run(_digits_cfg(tmp_path, "whole"))
    part = _digits_cfg(tmp_path, "parts", max_steps_per_call=17)
    calls = 0
    while read_run(run(part, resume=True))[0]["status"] != "completed":
        calls += 1
    assert calls == 2  # 46 steps = 17 + 17 + 12 (2 epochs of 23 batches)
    _, tw, vw = _train_losses(whole)
    _, tp, vp = _train_losses(part.out_path)
    assert len(tw) == 46 and tw == tp and vw == vp
    assert "val_acc" in read_run(whole)[1].columns


def test_muon_on_the_small_resnet_trains(tmp_path):
    path = run(_digits_cfg(tmp_path, "muon", optimizer="muon", optim={"lr": 0.02}, adamw={"lr": 3e-3}, epochs=3))
    meta, train, val = _train_losses(path)
    assert meta["status"] == "completed" and val[-1] < val[0] - 0.5
    assert "lr_adamw" in read_run(path)[1].columns


def test_grad_accumulation_matches_one_big_batch(tmp_path, repo_root):
    one = run(load_config(SMOKE, ["steps=8", *_paths(tmp_path, "a1")]))
    two = run(load_config(SMOKE, ["steps=8", "grad_accum=2", *_paths(tmp_path, "a2")]))
    assert _train_losses(one)[1] == pytest.approx(_train_losses(two)[1], abs=1e-5)


@register_grad_transform("_test_poison")
def _poison(model, *, at_step: int):
    """Makes every gradient infinite at ``at_step``: the next loss is NaN."""
    def apply(step):
        if step == at_step:
            for p in model.parameters():
                p.grad.fill_(float("inf"))
    return apply


def test_nonfinite_loss_exits_3_and_keeps_the_last_good_checkpoint(tmp_path, capsys, repo_root):
    rc = cli.main([SMOKE, *_paths(tmp_path), "checkpoint_every=5", "grad_transform=_test_poison",
                   "grad_transform_args.at_step=12"])
    err = capsys.readouterr().err
    assert rc == 3 and "loss became nan at step 14" in err
    meta, df = read_run(tmp_path / "run" / "metrics.jsonl")
    assert meta["status"] == "nonfinite" and df["train_loss"].iloc[-1] == "nan"
    ckpt = torch.load(tmp_path / "run" / "ckpt" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 10 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    with pytest.raises(NonFiniteLoss):
        run(load_config(SMOKE, [*_paths(tmp_path, "api"), "grad_transform=_test_poison",
                                "grad_transform_args.at_step=0"]))


def test_unknown_grad_transform_is_a_config_error(tmp_path, capsys, repo_root):
    assert cli.main([SMOKE, *_paths(tmp_path), "grad_transform=nope"]) == 2
    assert "grad_transform 'nope' unknown" in capsys.readouterr().err and "_test_poison" in GRAD_TRANSFORMS


def test_every_preset_is_a_valid_config():
    presets = sorted((Path(SMOKE).parents[1]).glob("*/*.toml"))
    assert {p.parent.name for p in presets} == {"cpu", "gpu"} and len(presets) >= 5
    for p in presets:
        cfg = load_config(p)
        assert cfg.task == ("gpt" if "gpt" in p.stem or p.stem == "smoke" else "image"), p


def test_clip_norm_transform_equals_grad_clip(tmp_path):
    a = run(load_config(SMOKE, ["steps=6", "grad_clip=0.05", *_paths(tmp_path, "a")]))
    b = run(load_config(SMOKE, ["steps=6", "grad_transform=clip_norm", "grad_transform_args.max_norm=0.05",
                                *_paths(tmp_path, "b")]))
    c = run(load_config(SMOKE, ["steps=6", *_paths(tmp_path, "c")]))
    assert _train_losses(a)[1] == _train_losses(b)[1] != _train_losses(c)[1]


def test_chained_transforms_take_one_table_each_and_resume_exactly(tmp_path):
    chain = ["grad_transform=cauchy_noise+clip_norm", "grad_transform_args.cauchy_noise.eps=0.05",
             "grad_transform_args.cauchy_noise.seed=1", "grad_transform_args.clip_norm.max_norm=1.0", "steps=12"]
    cfg = load_config(SMOKE, [*chain, *_paths(tmp_path, "whole")])
    assert cfg.grad_transform_args == {"cauchy_noise": {"eps": 0.05, "seed": 1}, "clip_norm": {"max_norm": 1.0}}
    whole = run(cfg)
    part = load_config(SMOKE, [*chain, "max_steps_per_call=5", *_paths(tmp_path, "part")])
    while read_run(run(part, resume=True))[0]["status"] != "completed":
        pass
    assert _train_losses(whole)[1] == _train_losses(part.out_path)[1]
    with pytest.raises(ConfigError, match="one table per transform"):
        run(load_config(SMOKE, ["grad_transform=cauchy_noise+clip_norm", "grad_transform_args.eps=0.1",
                                *_paths(tmp_path, "bad")]))
