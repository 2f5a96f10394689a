"""Two processes under torchrun (gloo) match one process with the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geomopt.results import read_run
from geomopt.train import cli

SMOKE = str(Path(__file__).resolve().parents[1] / "experiments" / "presets" / "cpu" / "smoke.toml")


def test_two_process_ddp_matches_single_process(tmp_path, repo_root):
    common = [SMOKE, "steps=12", "batch_size=8", "grad_accum=2", "progress=false", "checkpoint_every=6"]
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "geomopt", "train",
                           *common, f"out={tmp_path}/ddp/m.jsonl", f"checkpoint_dir={tmp_path}/ddp/ck"],
                          cwd=repo_root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert cli.main([*common, f"out={tmp_path}/one/m.jsonl", f"checkpoint_dir={tmp_path}/one/ck"]) == 0
    meta_d, ddp = read_run(tmp_path / "ddp" / "m.jsonl")
    meta_1, one = read_run(tmp_path / "one" / "m.jsonl")
    assert meta_d["world_size"] == 2 and meta_1["world_size"] == 1
    for col in ("train_loss", "val_loss"):
        a, b = ddp[col].dropna().tolist(), one[col].dropna().tolist()
        assert len(a) == len(b) > 0 and a == pytest.approx(b, abs=1e-5), col
    assert (tmp_path / "ddp" / "ck" / "checkpoint.pt").exists()



def _sharded_worker(rank: int, world: int, init_file: str, common: list[str], out_dir: str) -> None:
    """One DDP rank of clip-then-Muon smoke runs through the trainer: sharded, stopped at step 6 (a checkpoint)
    and resumed; then unsharded and uninterrupted, the reference."""
    import torch
    import torch.distributed as dist

    from geomopt.train import Trainer, load_config
    from geomopt.train.dist import DistInfo

    def config(name, *extra):
        return load_config(SMOKE, [*common, f"out={out_dir}/{name}/m.jsonl", f"checkpoint_dir={out_dir}/{name}/ck",
                                   *extra])

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        info = DistInfo(rank, world, rank)
        Trainer(config("sharded", "max_steps_per_call=6"), info).fit()
        resumed = Trainer(config("sharded"), info, resume=True)
        resumed.fit()
        plain = Trainer(config("plain"), info)
        assert [getattr(o, "shard", False) for o in plain.optimizers] == [True, False]  # on for Muon, not AdamW
        for opt in plain.optimizers:
            opt.shard = False
        plain.fit()
        muon = resumed.optimizers[0]
        torch.save({"matrix_steps": muon.matrix_steps, "matrices": len(muon.param_groups[0]["params"])},
                   f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_share_the_muon_work_in_the_trainer_and_resume(tmp_path):
    """Two gloo ranks through the trainer, each orthogonalizing its share of the matrices (``shard``), stopped
    at a checkpoint (the sharded state gathered to rank 0) and resumed, give the losses of the unsharded DDP
    run to 1e-6 (bit for bit here), and of one process to DDP's own rounding: the gradient averaged over
    ranks rounds differently from the one-process mean, and bf16 Newton–Schulz amplifies that to ~1e-5."""
    import torch
    import torch.multiprocessing as mp

    from geomopt.train import Trainer, load_config

    common = ["optimizer=clip_muon", "steps=12", "batch_size=8", "progress=false", "eval_every=1024"]
    mp.spawn(_sharded_worker, args=(2, str(tmp_path / "init"), common, str(tmp_path)), nprocs=2, join=True)
    Trainer(load_config(SMOKE, [*common, f"out={tmp_path}/one/m.jsonl", f"checkpoint_dir={tmp_path}/one/ck"])).fit()
    meta, sharded = read_run(tmp_path / "sharded" / "m.jsonl")
    assert meta["world_size"] == 2 and meta["status"] == "completed" and meta["resumed"][0]["step"] == 6
    plain, one = read_run(tmp_path / "plain" / "m.jsonl")[1], read_run(tmp_path / "one" / "m.jsonl")[1]
    for col in ("train_loss", "val_loss"):
        a, b, c = (run[col].dropna().tolist() for run in (sharded, plain, one))
        assert len(a) == len(b) == len(c) > 2, col
        assert a == pytest.approx(b, rel=1e-6, abs=0), col
        assert a == pytest.approx(c, rel=2e-5, abs=0), col
    rates = [run["clip_muon_clip_frac"].dropna().tolist() for run in (sharded, plain)]
    assert len(rates[0]) > 2 and rates[0] == pytest.approx(rates[1], abs=1e-9)  # every rank's matrices counted
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    work = [r["matrix_steps"] for r in ranks]  # matrices each rank stepped in the 6 resumed steps
    assert sum(work) == 6 * ranks[0]["matrices"] and min(work) > 0, work
