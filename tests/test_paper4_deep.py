"""Paper 4's deep analogue: class-subset pre-training through the trainer, the small CNN,
the ImageFolder reader, the ImageNet ResNet-18 and the GPU plan (dry run, missing paths, smoke run)."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from geomopt.data import DataMissing
from geomopt.data.image_folder import ImageFolderDataset, resolve_data_dir, scan_image_folder
from geomopt.data.images import load_digits_data, select_classes
from geomopt.models import IMAGE_MODELS, resnet18_imagenet
from geomopt.models.resnet import from_torchvision_state_dict
from geomopt.results import REPO_ROOT, read_run
from geomopt.train import ConfigError, TrainConfig, Trainer, from_dict
from geomopt.train.sweep import _same_config

# a bare environment (no GEOMOPT_* paths); PYTHONPATH kept so a work tree tests its own package
MINIMAL_ENV = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
               **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}

sys.path.insert(0, str(REPO_ROOT / "experiments" / "paper4"))


def test_select_classes_relabels_in_given_order_and_recomputes_stats():
    data = load_digits_data()
    sub = select_classes(data, [7, 2])
    assert sub.num_classes == 2 and set(sub.train.y.tolist()) == {0, 1}
    assert len(sub.train) == int(((data.train.y == 7) | (data.train.y == 2)).sum())
    assert torch.equal(sub.train.x[sub.train.y == 0], data.train.x[data.train.y == 7])  # 7 -> label 0
    assert not torch.allclose(sub.mean, data.mean)
    with pytest.raises(ValueError, match="out of range"):
        select_classes(data, [3, 10])


def test_classes_config_is_validated():
    assert from_dict({"task": "image", "dataset": "digits", "steps": 1, "classes": [0, 1]}).classes == [0, 1]
    for bad in ([1, 1], [3], [-1, 2]):
        with pytest.raises(ConfigError, match="classes"):
            from_dict({"task": "image", "dataset": "digits", "steps": 1, "classes": bad})
    with pytest.raises(ConfigError, match="expected list"):
        from_dict({"task": "image", "dataset": "digits", "steps": 1, "classes": [0.5, 1]})


def test_trainer_pretrains_cnn_small_on_a_class_subset(tmp_path):
    cfg = TrainConfig(name="sub", task="image", dataset="digits", classes=[3, 5, 8], model="cnn_small", width=4,
                      optimizer="adamw", optim={"lr": 1e-2}, batch_size=32, steps=60, log_every=10, progress=False,
                      device="cpu", out=str(tmp_path / "m.jsonl"), checkpoint_dir=str(tmp_path / "ck"),
                      checkpoint_every=10**9)
    trainer = Trainer(from_dict(dataclasses.asdict(cfg)))
    trainer.fit()
    assert trainer.model.fc.out_features == 3 and trainer.task.data.num_classes == 3
    meta, rows = read_run(tmp_path / "m.jsonl")
    assert meta["status"] == "completed" and meta["config"]["classes"] == [3, 5, 8]
    assert rows["val_acc"].dropna().iloc[-1] > 0.6  # 3-way digits: chance is 1/3
    ckpt = torch.load(tmp_path / "ck" / "checkpoint.pt", weights_only=False)
    fresh = IMAGE_MODELS["cnn_small"](in_channels=1, num_classes=3, width=4)
    fresh.load_state_dict(ckpt["model"])  # θ₀ comes back from the trainer's checkpoint
    assert torch.equal(fresh.last_block.weight, trainer.model.last_block.weight)


def test_runs_written_before_the_classes_field_still_match():
    cfg = TrainConfig(task="image", dataset="digits", steps=1)
    old = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(cfg))).items() if k != "classes"}
    assert _same_config(old, cfg)
    assert not _same_config(old, TrainConfig(task="image", dataset="digits", steps=1, classes=[0, 1]))


def test_deep_quick_pretrains_through_the_trainer_and_reloads_theta0(tmp_path, fashion_mnist):
    from deep import D_P_CLASSES, run_deep

    rec = run_deep(tmp_path, quick=True)
    meta, _ = read_run(tmp_path / rec["pretrain"]["metrics"])
    assert meta["config"]["classes"] == list(D_P_CLASSES) and meta["config"]["model"] == "cnn_small"
    assert rec["pretrain"]["steps"] == 60 and rec["pretrain"]["val_acc_P"] > 0.5
    rows = {r["method"]: r for r in rec["rows"]}
    assert set(rows) == {"ours", "rill_only", "opt_kappa"}
    # θ₀ and θ_I are separate modules: the ratios are not identically 1 (spec pitfall 7)
    assert all(np.isfinite(r["rir_theta0"]) and abs(r["i_groups"] - 1) > 1e-3 for r in rows.values())
    from report import deep_section

    claims = []
    assert any("RIR_θ₀" in line for line in deep_section(rec, claims)) and len(claims) == 2
    assert all(c["verdict"] == "inconclusive (n = 1)" for c in claims)  # one seed: no interval


# ---------------------------------------------------------------- paper scale: ImageFolder, ResNet-18, GPU plan

def _write_folder(root, classes, per_class, size=(40, 30)):
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, (10 * c, 20 * i, 200)).save(root / name / f"{i}.png")


def test_image_folder_reader_on_pngs(tmp_path):
    _write_folder(tmp_path / "set", ["zebra", "ant"], 3)
    (tmp_path / "set" / "ant" / "notes.txt").write_text("not an image")
    classes, samples = scan_image_folder(tmp_path / "set")
    assert classes == ["ant", "zebra"] and len(samples) == 6 and {lab for _, lab in samples} == {0, 1}
    ds = ImageFolderDataset(tmp_path / "set", size=16)
    x, y = ds[4]  # zebra/1.png, written first (c = 0): colour (0, 20, 200)
    assert x.dtype == torch.uint8 and x.shape == (3, 16, 16) and y == 1
    assert x[:, 8, 8].tolist() == [0, 20, 200]
    xt, _ = ImageFolderDataset(tmp_path / "set", size=16, train=True, seed=1)[0]
    assert xt.shape == (3, 16, 16)
    with pytest.raises(DataMissing, match="no .* images"):
        scan_image_folder(tmp_path / "set" / "ant")


def test_missing_data_dir_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GEOMOPT_CARS", raising=False)
    with pytest.raises(DataMissing, match="GEOMOPT_CARS"):
        resolve_data_dir(None, "GEOMOPT_CARS", "Stanford Cars")
    r = subprocess.run([sys.executable, str(REPO_ROOT / "experiments/paper4/deep.py"), "--preset", "gpu",
                        "--imagenet-dir", str(tmp_path / "nowhere"), "--cars-dir", str(tmp_path), "--dry-run"],
                       capture_output=True, text=True, env=MINIMAL_ENV)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "nowhere" in r.stderr


def _torchvision_names(state):
    """Our resnet18_imagenet state dict under torchvision's names (the inverse of from_torchvision_state_dict)."""
    out = {}
    for k, v in state.items():
        if k.startswith("layers."):
            _, i, rest = k.split(".", 2)
            k = f"layer{int(i) // 2 + 1}.{int(i) % 2}.{rest.replace('shortcut.', 'downsample.')}"
        out[k] = v
    return out


def test_torchvision_resnet18_names_map_onto_ours():
    ours = resnet18_imagenet().state_dict()
    tv = _torchvision_names(ours)
    assert len(tv) == 122 and {"layer4.1.bn2.running_var", "layer2.0.downsample.0.weight", "fc.weight"} <= set(tv)
    assert from_torchvision_state_dict(tv).keys() == ours.keys()
    assert resnet18_imagenet()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.fixture
def gpu_inputs(tmp_path):
    for split in ("train", "val"):
        _write_folder(tmp_path / "imagenet" / split, ["n01", "n02"], 4, size=(36, 36))
    for split in ("train", "test"):
        _write_folder(tmp_path / "cars" / split, ["audi", "bmw", "fiat"], 3, size=(36, 36))
    torch.manual_seed(0)
    torch.save(_torchvision_names(resnet18_imagenet().state_dict()), tmp_path / "r18.pth")
    return ["--imagenet-dir", str(tmp_path / "imagenet"), "--cars-dir", str(tmp_path / "cars"),
            "--weights", str(tmp_path / "r18.pth"), "--out", str(tmp_path / "out")]


def test_gpu_plan_builds(gpu_inputs, capsys):
    from deep import main

    assert main(["--preset", "gpu", "--dry-run", *gpu_inputs]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["images"] == {"P_train": 8, "P_val": 8, "H_train": 9, "H_test": 9} and plan["classes"]["H_train"] == 3
    layer4 = sum(p.numel() for n, p in resnet18_imagenet().named_parameters() if n.startswith(("layers.6.", "layers.7.")))
    assert plan["trainable"]["block_params"] == layer4 and plan["trainable"]["head_params"] == 512 * 1000 + 1000
    p = plan["preset"]
    assert (p["momentum"], p["nesterov"], p["head_weight_decay"], p["label_smoothing"]) == (0.9, True, 2e-5, 0.1)
    assert (p["seeds"], p["groups"], p["group_size"], plan["runs"]) == ([0, 1, 2], 20, 100, 9)


def test_gpu_run_smoke_on_cpu(gpu_inputs, tmp_path):
    from deep import main

    sets = ["max_steps=1", "seeds=[0]", 'methods=["ours"]', "groups=2", "group_size=4", "batch_size=4",
            "workers=0", "image_size=32"]
    assert main(["--preset", "gpu", *gpu_inputs, "--set", *sets]) == 0
    rec = json.loads((tmp_path / "out" / "deep_gpu_cars.json").read_text())
    (row,) = rec["rows"]
    assert row["method"] == "ours" and np.isfinite(row["rir_theta0"]) and row["rir_theta0"] != 1.0
    from report import gpu_section

    assert any("RIR_θ₀" in line for line in gpu_section({"cars": rec}))
