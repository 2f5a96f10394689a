"""A sweep retrains results older than its session, and skips/resumes within an interrupted one."""

import os

from geomopt.results import REPO_ROOT
from geomopt.train import load_config
from geomopt.train.sweep import run_sweep, sweep_session


def _config(tmp_path):
    return load_config(REPO_ROOT / "experiments/presets/cpu/smoke.toml",
                       ["steps=4", "eval_every=0", "checkpoint_every=2", "progress=false", "name=s",
                        f'out="{tmp_path}/runs/{{name}}.jsonl"', f'checkpoint_dir="{tmp_path}/ck/{{name}}"'])


def test_fresh_session_retrains_and_interrupted_session_skips(tmp_path):
    cfg = _config(tmp_path)
    with sweep_session(tmp_path) as start:
        assert [o.status for o in run_sweep([cfg], since=start, log=lambda *_: None)] == ["completed"]
    assert not (tmp_path / ".sweep-in-progress").exists()
    old = os.path.getmtime(cfg.out_path) - 100
    os.utime(cfg.out_path, (old, old))  # as a fresh clone's committed results: older than any session
    os.utime(cfg.checkpoint_path, (old, old))
    with sweep_session(tmp_path) as start:
        assert [o.status for o in run_sweep([cfg], since=start, log=lambda *_: None)] == ["completed"]
    (tmp_path / ".sweep-in-progress").touch()  # an interrupted session is still open
    os.utime(tmp_path / ".sweep-in-progress", (old - 10, old - 10))
    with sweep_session(tmp_path) as start:
        assert [o.status for o in run_sweep([cfg], since=start, log=lambda *_: None)] == ["skipped"]


def test_parallel_jobs_give_the_same_runs(tmp_path):
    """Two runs at a time in their own one-thread processes: the same losses as one after another
    (one thread each, so the reductions round alike)."""
    import dataclasses

    import torch

    from geomopt.results import read_run

    cfgs = [dataclasses.replace(_config(tmp_path / mode), name=f"s{seed}", seed=seed)
            for mode in ("serial", "parallel") for seed in (0, 1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = run_sweep(cfgs[:2], log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    parallel = run_sweep(cfgs[2:], jobs=2)
    assert [o.status for o in serial + parallel] == ["completed"] * 4
    for a, b in zip(serial, parallel):
        assert a.name == b.name
        ra, rb = read_run(a.path)[1], read_run(b.path)[1]
        assert ra["train_loss"].notna().sum() == 4
        assert ra["train_loss"].equals(rb["train_loss"]) and ra["val_loss"].equals(rb["val_loss"])


def test_an_open_session_reads_back_runs_moved_with_their_checkout(tmp_path):
    """A run's ``out`` path is run control: the results of a checkout moved (or copied into a
    fresh clone) are read back inside an open session, not trained again."""
    import shutil

    cfg = _config(tmp_path / "a")
    with sweep_session(tmp_path / "a") as start:
        assert [o.status for o in run_sweep([cfg], since=start, log=lambda *_: None)] == ["completed"]
    shutil.copytree(tmp_path / "a" / "runs", tmp_path / "b" / "runs")
    moved = _config(tmp_path / "b")
    (tmp_path / "b" / ".sweep-in-progress").touch()
    old = os.path.getmtime(moved.out_path) - 10
    os.utime(tmp_path / "b" / ".sweep-in-progress", (old, old))
    with sweep_session(tmp_path / "b") as start:
        assert [o.status for o in run_sweep([moved], since=start, log=lambda *_: None)] == ["skipped"]
