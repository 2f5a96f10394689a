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
