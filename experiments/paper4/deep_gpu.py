"""Table 3 at paper scale (GPU): ImageNet-1k ResNet-18 immunized against Stanford Cars / Country211.

    python experiments/paper4/deep.py --preset gpu --target cars --imagenet-dir /data/imagenet \
        --cars-dir /data/stanford_cars --weights /data/resnet18-f37072fd.pth [--dry-run]

Data (ImageFolder layout, geomopt.data.image_folder): ``--imagenet-dir`` / $GEOMOPT_IMAGENET
with train/ and val/ (class folders); ``--cars-dir`` / $GEOMOPT_CARS, ``--country211-dir`` /
$GEOMOPT_COUNTRY211 with train/ and test/ (or val/, valid/). θ₀: a torchvision ``resnet18``
state dict (``--weights`` / $GEOMOPT_RESNET18_WEIGHTS; names mapped by
geomopt.models.resnet.from_torchvision_state_dict). A missing path: one line, exit 2.

Table-3 settings (spec §4): SGD, Nesterov momentum 0.9, weight decay 2e-5 on the head only,
label-smoothing CE (0.1), only the last two conv blocks (``layers.6``, ``layers.7`` =
torchvision's layer4) and the head trainable, 3 seeds; epochs / batch / lr / λ from the
public code's configs (resnet18_cars, resnet18_country211). RIR_θ₀ (Eq. 17): θ₀ loaded from
the weights file and θ_I from its own saved file, 20 groups of 100 training samples each.

Objective per step (Eq. 11 with mini-batch Gram matrices H̃ = FᵀF of the pooled features;
k = numerical rank of each, spec pitfall 1): CE_ls(D_P) + λ_P·R_well(H̃_P) + λ_H·R_ill(H̃_H)
(Ours), λ_H·R_ill(H̃_H) (R_ill Only), CE_ls + λ_P·log κ(H̃_P) + λ_H/log κ(H̃_H) (Opt κ).
**Not implemented:** the App. C.3 K⁻¹ "dummy layer" (its side and ridge are not public);
gradients here are plain autograd gradients. BatchNorm statistics stay frozen (eval mode).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geomopt.data import DataMissing
from geomopt.data.image_folder import (IMAGENET_MEAN, IMAGENET_STD, ImageFolderDataset, find_split,
                                       resolve_data_dir, seed_worker)
from geomopt.data.images import normalize
from geomopt.immunization import rir_theta0
from geomopt.immunization.regularizers import log_condition_torch, r_ill_torch, r_well_torch
from geomopt.models.resnet import from_torchvision_state_dict, resnet18_imagenet
from geomopt.results import REPO_ROOT, run_meta, write_json

METHODS = ("ours", "rill_only", "opt_kappa")
TARGETS = {"cars": ("Stanford Cars", "GEOMOPT_CARS"), "country211": ("Country211", "GEOMOPT_COUNTRY211")}
IMMUNIZED_BLOCKS = ("layers.6", "layers.7")  # the last two BasicBlocks (torchvision's layer4.0, layer4.1)


@dataclass
class GPUPreset:
    """Table 3 / public-code config for one D_H (λ_P weights R_well on D_P, λ_H weights R_ill on D_H)."""

    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-5
    lambda_P: float = 5e-5
    lambda_H: float = 2e6
    momentum: float = 0.9
    nesterov: bool = True
    head_weight_decay: float = 2e-5
    label_smoothing: float = 0.1
    image_size: int = 224
    seeds: tuple[int, ...] = (0, 1, 2)
    groups: int = 20
    group_size: int = 100
    methods: tuple[str, ...] = METHODS
    max_steps: int = 0  # 0 = epochs × |D_H train| / batch; > 0 caps the steps (smoke runs)
    val_limit: int = 0  # D_P val images for the accuracy column; 0 = all
    workers: int = 8
    immunized: tuple[str, ...] = field(default=IMMUNIZED_BLOCKS)


PRESETS = {"cars": GPUPreset(), "country211": GPUPreset(lambda_P=1e-4)}


def resolve_inputs(args) -> dict[str, Path]:
    """Every path the run needs, or DataMissing with one line naming the first missing one."""
    name, env = TARGETS[args.target]
    imagenet = resolve_data_dir(args.imagenet_dir, "GEOMOPT_IMAGENET", "ImageNet")
    target = resolve_data_dir(getattr(args, f"{args.target}_dir"), env, name)
    paths = {"P_train": find_split(imagenet, ("train",), "ImageNet"),
             "P_val": find_split(imagenet, ("val", "validation"), "ImageNet"),
             "H_train": find_split(target, ("train",), name),
             "H_test": find_split(target, ("test", "val", "valid"), name)}
    weights = args.weights or os.environ.get("GEOMOPT_RESNET18_WEIGHTS", "")
    if not weights or not Path(weights).is_file():
        raise DataMissing(f"ResNet-18 weights: {Path(weights).resolve() if weights else 'no file given'} not found; "
                          "pass --weights /path/to/resnet18.pth (a torchvision state dict) or set "
                          "GEOMOPT_RESNET18_WEIGHTS")
    paths["weights"] = Path(weights)
    return paths


def load_theta0(path: Path, num_classes: int = 1000) -> torch.nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    if any(k.startswith("layer1.") for k in state):
        state = from_torchvision_state_dict(state)
    model = resnet18_imagenet(num_classes=num_classes)
    model.load_state_dict(state)
    return model


def trainable_groups(model, preset: GPUPreset) -> list[dict]:
    """Only the immunized blocks (no weight decay) and the head (weight decay 2e-5) train."""
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = [p for n, p in model.named_parameters() if n.startswith(tuple(b + "." for b in preset.immunized))]
    head = list(model.fc.parameters())
    for p in blocks + head:
        p.requires_grad_(True)
    return [{"params": blocks, "weight_decay": 0.0}, {"params": head, "weight_decay": preset.head_weight_decay}]


def gram_rank(S: torch.Tensor, rtol: float = 1e-9) -> int:
    s = torch.linalg.eigvalsh(S.detach())
    return max(1, int((s > rtol * s[-1]).sum()))


def objective(method: str, model, x_P, y_P, x_H, preset: GPUPreset) -> torch.Tensor:
    """Eq. 11 on one mini-batch of each task (see the module docstring for each method)."""
    f_H = model.features(x_H).double()
    S_H = f_H.T @ f_H
    k_H = gram_rank(S_H)
    if method == "rill_only":
        return preset.lambda_H * r_ill_torch(S_H, k_H)
    f_P = model.features(x_P)
    ce = F.cross_entropy(model.fc(f_P).float(), y_P, label_smoothing=preset.label_smoothing)
    S_P = f_P.double().T @ f_P.double()
    k_P = gram_rank(S_P)
    if method == "ours":
        return ce + preset.lambda_P * r_well_torch(S_P, k_P) + preset.lambda_H * r_ill_torch(S_H, k_H)
    if method == "opt_kappa":
        return ce + preset.lambda_P * log_condition_torch(S_P, k_P) + preset.lambda_H / log_condition_torch(S_H, k_H)
    raise ValueError(f"method {method!r} unknown; choose one of: {', '.join(METHODS)}")


def _loader(ds, preset, shuffle: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=preset.batch_size, shuffle=shuffle, drop_last=shuffle,
                                       num_workers=preset.workers, worker_init_fn=seed_worker, generator=g,
                                       pin_memory=torch.cuda.is_available(), persistent_workers=False)


def _prep(x, device):
    return normalize(x.to(device, non_blocking=True), IMAGENET_MEAN.to(device), IMAGENET_STD.to(device))


def immunize_deep(method: str, paths, preset: GPUPreset, seed: int, device) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = load_theta0(paths["weights"]).to(device).eval()  # BatchNorm statistics frozen
    opt = torch.optim.SGD(trainable_groups(model, preset), lr=preset.lr, momentum=preset.momentum,
                          nesterov=preset.nesterov)
    P = _loader(ImageFolderDataset(paths["P_train"], preset.image_size, train=True, seed=seed), preset, True, seed)
    H = _loader(ImageFolderDataset(paths["H_train"], preset.image_size, train=True, seed=seed), preset, True, seed + 1)
    steps = preset.epochs * len(H)
    steps = min(steps, preset.max_steps) if preset.max_steps else steps
    P_iter, H_iter, step = iter(P), iter(H), 0
    while step < steps:
        try:
            x_H, _ = next(H_iter)
        except StopIteration:
            H_iter = iter(H)
            x_H, _ = next(H_iter)
        try:
            x_P, y_P = next(P_iter)
        except StopIteration:
            P_iter = iter(P)
            x_P, y_P = next(P_iter)
        loss = objective(method, model, _prep(x_P, device), y_P.to(device), _prep(x_H, device), preset)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
    return model


@torch.no_grad()
def top1(model, root: Path, preset: GPUPreset, device) -> float:
    ds = ImageFolderDataset(root, preset.image_size, train=False)
    if preset.val_limit:
        ds = torch.utils.data.Subset(ds, np.random.default_rng(0).permutation(len(ds))[: preset.val_limit])
    correct = total = 0
    for x, y in _loader(ds, preset, False, 0):
        correct += int((model(_prep(x, device)).argmax(1).cpu() == y).sum())
        total += len(y)
    return correct / total


def _group_inputs(root: Path, preset: GPUPreset, seed: int) -> torch.Tensor:
    """The images RIR_θ₀ draws its groups from: groups × group_size random training images."""
    ds = ImageFolderDataset(root, preset.image_size, train=False)
    n = min(len(ds), preset.groups * preset.group_size)
    idx = np.random.default_rng(seed).permutation(len(ds))[:n]
    return torch.stack([ds[int(i)][0] for i in idx])


def run_gpu(args, preset: GPUPreset) -> dict:
    paths = resolve_inputs(args)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    theta0 = load_theta0(paths["weights"]).to(device).eval()
    X_H = _prep(_group_inputs(paths["H_train"], preset, 0), device)
    X_P = _prep(_group_inputs(paths["P_train"], preset, 1), device)
    acc0 = top1(theta0, paths["P_val"], preset, device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in preset.methods:
            for seed in preset.seeds:
                t0 = time.perf_counter()
                model = immunize_deep(method, paths, preset, seed, device)
                torch.save(model.state_dict(), Path(tmp) / "theta_I.pt")
                immunized = resnet18_imagenet().to(device).eval()  # θ_I from its own file (pitfall 7)
                immunized.load_state_dict(torch.load(Path(tmp) / "theta_I.pt", map_location=device))
                with torch.no_grad():
                    rir = rir_theta0(theta0.features, immunized.features, X_H, X_P, groups=preset.groups,
                                     group_size=min(preset.group_size, len(X_H), len(X_P)), seed=seed)
                rows.append({"method": method, "seed": seed, "i": rir["i"], "ii": rir["ii"], "rir_theta0": rir["rir"],
                             "acc_P": top1(immunized, paths["P_val"], preset, device),
                             "seconds": round(time.perf_counter() - t0, 1)})
                print(f"[paper4 gpu] {args.target} {method} seed {seed}: RIR_θ₀ {rir['rir']:.3f}", flush=True)
    summary = {m: {"rir_theta0_mean": float(np.mean([r["rir_theta0"] for r in rows if r["method"] == m])),
                   "rir_theta0_std": float(np.std([r["rir_theta0"] for r in rows if r["method"] == m]))}
               for m in preset.methods}
    record = {"target": args.target, "rows": rows, "summary": summary, "theta0_acc_P": acc0,
              "meta": run_meta(config={"preset": asdict(preset), "paths": {k: str(v) for k, v in paths.items()}})}
    write_json(args.out / f"deep_gpu_{args.target}.json", record)
    return record


def plan(args, preset: GPUPreset) -> dict:
    """What a run would do (no training): data sizes, trainable parameters, steps, optimizer groups."""
    paths = resolve_inputs(args)
    sets = {k: ImageFolderDataset(paths[k], preset.image_size) for k in ("P_train", "P_val", "H_train", "H_test")}
    model = load_theta0(paths["weights"])
    groups = trainable_groups(model, preset)
    steps = preset.epochs * (len(sets["H_train"]) // preset.batch_size)
    return {"target": args.target, "paths": {k: str(v) for k, v in paths.items()},
            "images": {k: len(v) for k, v in sets.items()},
            "classes": {k: len(v.classes) for k, v in sets.items()},
            "trainable": {"immunized_blocks": list(preset.immunized),
                          "block_params": sum(p.numel() for p in groups[0]["params"]),
                          "head_params": sum(p.numel() for p in groups[1]["params"]),
                          "frozen_params": sum(p.numel() for p in model.parameters() if not p.requires_grad)},
            "steps_per_run": min(steps, preset.max_steps) if preset.max_steps else steps,
            "runs": len(preset.methods) * len(preset.seeds), "preset": asdict(preset)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="deep.py --preset gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=sorted(TARGETS), default="cars")
    ap.add_argument("--imagenet-dir")
    ap.add_argument("--cars-dir")
    ap.add_argument("--country211-dir")
    ap.add_argument("--weights", help="torchvision resnet18 state dict (.pth)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "paper4")
    ap.add_argument("--dry-run", action="store_true", help="print the plan as JSON and exit")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override preset fields, e.g. max_steps=2 seeds=[0] workers=0 (values as JSON)")
    args = ap.parse_args(argv)
    preset = copy.deepcopy(PRESETS[args.target])
    for item in args.set:
        key, _, text = item.partition("=")
        if key not in GPUPreset.__dataclass_fields__:
            ap.error(f"--set {item!r}: unknown field; valid: {', '.join(GPUPreset.__dataclass_fields__)}")
        value = json.loads(text)
        setattr(preset, key, tuple(value) if isinstance(value, list) else value)
    try:
        if args.dry_run:
            print(json.dumps(plan(args, preset), indent=1))
        else:
            run_gpu(args, preset)
    except DataMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
