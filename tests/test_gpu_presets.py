"""A CPU smoke of every GPU preset (experiments/presets/gpu/*.toml): the config loaded from its
file, only the dimensions, length and paths overridden, through the trainer's own code path
(bf16 autocast, rotary, QK-norm, ReLU², RMSNorm, warm-down; ResNet-18 with crop + flip) on data
files written here in the real on-disk formats (FineWeb shards, CIFAR-10 python batches)."""

import tomllib

import numpy as np
import pytest
import torch
from test_data import _cifar_batch

from geomopt.data.text import write_shard
from geomopt.results import REPO_ROOT, read_run
from geomopt.train import Trainer, load_config

PRESETS = sorted((REPO_ROOT / "experiments" / "presets" / "gpu").glob("*.toml"))

# Tiny sizes and a few steps; everything else (optimizer tables, schedule, dtype, architecture) is the preset's.
TINY = {
    "gpt": ["n_layer=2", "n_head=2", "n_embd=32", "seq_len=32", "batch_size=4", "steps=6", "eval_every=384",
            "eval_tokens=128", "log_every=1", "checkpoint_every=3"],
    "image": ["width=4", "batch_size=8", "epochs=0", "steps=6", "eval_every=24", "eval_batches=1", "log_every=1",
              "checkpoint_every=3"],
}
# Keys whose preset value must reach the run unchanged: they choose the code path.
PATH_KEYS = ("task", "dataset", "model", "dtype", "norm", "activation", "rotary", "qk_norm", "schedule", "warmup_steps",
             "warmdown_frac", "final_lr_frac", "optimizer", "optim", "adamw", "augment_crop_pad", "augment_flip")


def _fineweb(directory):
    rng = np.random.default_rng(0)
    write_shard(directory / "fineweb_train_000001.bin", rng.integers(0, 50257, 4096).astype(np.uint16))
    write_shard(directory / "fineweb_val_000000.bin", rng.integers(0, 50257, 1024).astype(np.uint16))


def _cifar10(directory):
    for i in range(1, 6):
        _cifar_batch(directory / f"data_batch_{i}", 8, i)
    _cifar_batch(directory / "test_batch", 8, 9)


WRITERS = {"fineweb": _fineweb, "cifar10": _cifar10}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_gpu_preset_trains_on_cpu_at_tiny_size(preset, tmp_path):
    raw = tomllib.loads(preset.read_text())
    assert raw["dataset"] in WRITERS, f"{preset.name}: add a writer of {raw['dataset']!r} files to this test"
    data = tmp_path / "data"
    data.mkdir()
    WRITERS[raw["dataset"]](data)
    cfg = load_config(preset, [*TINY[raw["task"]], f"data_dir={data}", "device=cpu", "progress=false",
                               f"out={tmp_path}/run/metrics.jsonl", f"checkpoint_dir={tmp_path}/run/ckpt"])
    for key in PATH_KEYS:
        if key in raw:
            assert getattr(cfg, key) == raw[key], key
    trainer = Trainer(cfg)
    assert trainer.device.type == "cpu" and trainer.amp_dtype is torch.bfloat16
    out_dtypes = set()
    trainer.model.register_forward_hook(lambda module, args, out: out_dtypes.add(out.dtype))
    meta, rows = read_run(trainer.fit())
    assert out_dtypes == {torch.bfloat16}  # autocast on the CPU, as on the GPU
    assert meta["status"] == "completed" and meta["total_steps"] == 6
    train = rows.dropna(subset=["train_loss"])
    assert train["step"].tolist() == list(range(1, 7)) and np.isfinite(train["train_loss"].astype(float)).all()
    assert rows["val_loss"].notna().sum() >= 2
    lr = train["lr"].tolist()  # the lr of each step, before it: constant, then the schedule's decay to the end
    assert lr[0] == pytest.approx(raw["optim"]["lr"]) and lr[-1] < lr[0]
    assert (tmp_path / "run" / "ckpt" / "checkpoint.pt").exists()
    if cfg.task == "gpt":
        model = trainer.model.cfg
        assert (model.rotary, model.qk_norm, model.activation, model.norm) == (True, True, "relu2", "rmsnorm")
        assert trainer.model.wpe is None and len(trainer.optimizers) == 2  # Muon on matrices, AdamW for the rest
