"""Deep-net analogue of Table 3 at CPU scale; ``--preset gpu``: the ImageNet -> Cars / Country211 plan.

CPU preset: a small CNN (geomopt.models.cnn) is pre-trained **through the trainer**
(geomopt.train, ``classes = [0..4]`` of Fashion-MNIST = D_P; its final checkpoint is θ₀).
Its last block is a linear layer θ ∈ ℝ^{512×64} on the frozen convolutional backbone's
features Z, so the attacker's linear probe on f_θ(x) = Z(x)θ has Hessian θᵀKθ with K = ZᵀZ:
Algorithm 1 and the baselines run on that block exactly as in the linear case, with the
θ-side K⁻¹ (Din ≠ Dout, so the public code's right-multiplied variant would not even
type-check). D_H = classes 5–9. D_P's task term regresses one-hot labels (a linear head ω, 64×5).

Reported, per method (Table 3's columns): (i), (ii), RIR_θ₀ (Eq. 17: θ₀ is loaded from the
trainer's checkpoint and the immunized model from its own file, two separate modules;
features of 20 random groups of 100 test images each), D_P test accuracy (the Alg. 1 head ω,
and a refitted least-squares probe); plus D_H probe accuracy per exact-line-search GD step
(Fig. 3 analogue). The GPU preset lives in deep_gpu.py (``python experiments/paper4/deep.py
--preset gpu --imagenet-dir ... --cars-dir ...``).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from geomopt.data.images import ImageSet, load_images, normalize, select_classes
from geomopt.immunization import (REGULARIZED_METHODS, ImmunizationConfig, LinearTask, immunization_ratios, immunize,
                                  rir_theta0)
from geomopt.models import cnn_small
from geomopt.results import REPO_ROOT, read_run, run_meta, write_json
from geomopt.train import TrainConfig, Trainer
from geomopt.train.checkpoint import load_checkpoint

D_P_CLASSES, D_H_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
DEEP = ImmunizationConfig(steps=100, lr=0.005, ridge=1e-6, log_every=100)  # Dout = 64, as digits' Din
# θ₀: Adam(W) at 2e-3, batch 128, one epoch over D_P's 30 000 training images (quick: 60 steps).
PRETRAIN = TrainConfig(task="image", dataset="fashion_mnist", classes=list(D_P_CLASSES), model="cnn_small", width=16,
                       optimizer="adamw", optim={"lr": 2e-3, "weight_decay": 0.0}, batch_size=128, epochs=1.0,
                       schedule="constant", log_every=20, progress=False, device="cpu")


def pretrain_theta0(out: Path, workdir: Path, quick: bool, seed: int) -> tuple[Path, Path]:
    """θ₀ through geomopt.train: (its metrics file, its final checkpoint). A huge checkpoint_every
    gives exactly one checkpoint, at the end of the run."""
    length = {"epochs": 0.0, "steps": 60} if quick else {}
    cfg = replace(PRETRAIN, **length, name=f"deep_pretrain_s{seed}", seed=seed,
                  out=str(out / f"deep_pretrain_s{seed}.jsonl"),
                  checkpoint_dir=str(workdir / "{name}"), checkpoint_every=10**9)
    Trainer(cfg).fit()
    return cfg.out_path, cfg.checkpoint_path


def _first_per_class(s: ImageSet, per_class: int) -> ImageSet:
    idx = torch.cat([torch.nonzero(s.y == c).flatten()[:per_class] for c in s.y.unique()])
    return ImageSet(s.x[idx], s.y[idx])


def load_splits(per_class: int, test_per_class: int) -> dict:
    """{'train'|'t10k': {'P'|'H': (x, y)}}: float images normalized with D_P's training mean/std
    (what the pre-trained model saw), labels 0..4 within each class set."""
    data = load_images("fashion_mnist")
    P, H = select_classes(data, D_P_CLASSES), select_classes(data, D_H_CLASSES)
    out = {}
    for split, src, n in (("train", "train", per_class), ("t10k", "test", test_per_class)):
        out[split] = {}
        for key, d in (("P", P), ("H", H)):
            s = _first_per_class(getattr(d, src), n)
            out[split][key] = (normalize(s.x, P.mean, P.std), s.y)
    return out


@torch.no_grad()
def backbone_features(model, x) -> np.ndarray:
    return torch.cat([model.backbone(b) for b in x.split(1000)]).double().numpy()


def one_hot(y, k=5):
    return np.eye(k)[y.numpy()]


def probe_accuracy(F_train, y_train, F_test, y_test) -> float:
    W = np.linalg.lstsq(F_train, one_hot(y_train), rcond=None)[0]
    return float(np.mean((F_test @ W).argmax(1) == y_test.numpy()))


def probe_accuracy_curve(F_train, y_train, F_test, y_test, steps: int) -> np.ndarray:
    """Fig. 3 analogue: D_H linear-probe test accuracy along GD with exact line search from W = 0."""
    H, B = F_train.T @ F_train, F_train.T @ one_hot(y_train)
    W, acc = np.zeros_like(B), []
    for _ in range(steps + 1):
        acc.append(float(np.mean((F_test @ W).argmax(1) == y_test.numpy())))
        G = H @ W - B
        curv = float(np.sum(G * (H @ G)))
        if curv <= 0:
            continue
        W = W - (float(np.sum(G * G)) / curv) * G
    return np.array(acc)


def _reload(state_path, key: str | None = None):
    """A fresh module loaded from its own file (``key``: the entry holding the state dict, as
    "model" in a trainer checkpoint): θ₀ and θ_I are never the same object (pitfall 7)."""
    state = load_checkpoint(state_path)
    fresh = cnn_small(in_channels=1, num_classes=len(D_P_CLASSES), width=PRETRAIN.width)
    fresh.load_state_dict(state[key] if key else state)
    return fresh.double().eval()


def run_deep(out: Path, quick: bool, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data = load_splits(per_class=300 if quick else 2000, test_per_class=200 if quick else 1000)
    (xP, yP), (xH, yH) = data["train"]["P"], data["train"]["H"]
    (xPt, yPt), (xHt, yHt) = data["t10k"]["P"], data["t10k"]["H"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        metrics_path, theta0_path = pretrain_theta0(out, tmp, quick, seed)
        model = _reload(theta0_path, key="model").float()
        t_pretrain = time.perf_counter() - t0
        with torch.no_grad():
            acc0_head = float((model(xPt).argmax(1) == yPt).double().mean())
        Z_P, Z_H = backbone_features(model, xP), backbone_features(model, xH)
        Z_Pt, Z_Ht = backbone_features(model, xPt), backbone_features(model, xHt)
        theta0 = model.last_block.weight.detach().double().numpy().T  # 512×64
        # common scale so that D_P's probe Hessian at θ₀ has unit top eigenvalue (κ unchanged)
        scale = np.sqrt(np.linalg.eigvalsh(theta0.T @ (Z_P.T @ Z_P) @ theta0)[-1] / len(Z_P))
        task = LinearTask(Z_P / scale, one_hot(yP) - one_hot(yP).mean(0), Z_H / scale)
        cfg = replace(DEEP, steps=30) if quick else DEEP
        rows, curves = [], {"theta0": probe_accuracy_curve(Z_H @ theta0, yH, Z_Ht @ theta0, yHt, 50)}
        for method in REGULARIZED_METHODS:
            res = immunize(task, replace(cfg, method=method), theta0=theta0)
            immunized = copy.deepcopy(model.state_dict())
            immunized["last_block.weight"] = torch.tensor(res.theta.T, dtype=torch.float32)
            torch.save(immunized, tmp / f"{method}.pt")
            m0, mI = _reload(theta0_path, key="model"), _reload(tmp / f"{method}.pt")
            with torch.no_grad():
                rir = rir_theta0(m0.features, mI.features,
                                 xHt.double(), xPt.double(), groups=20, group_size=100, seed=seed)
            ratios = immunization_ratios(res.theta, task.K_H, task.K_P, theta_ref=theta0)
            F_P, F_Pt = Z_P @ res.theta, Z_Pt @ res.theta
            head_pred = ((Z_Pt / scale) @ res.theta @ res.omega).argmax(1)
            rows.append({"method": method, "i": ratios["i"], "ii": ratios["ii"], "rir_full": ratios["rir"],
                         "rir_theta0": rir["rir"], "rir_theta0_std": rir["rir_std"], "i_groups": rir["i"],
                         "ii_groups": rir["ii"], "acc_P_alg1_head": float(np.mean(head_pred == yPt.numpy())),
                         "acc_P_probe": probe_accuracy(F_P, yP, F_Pt, yPt), "diverged_at": res.diverged_at})
            curves[method] = probe_accuracy_curve(Z_H @ res.theta, yH, Z_Ht @ res.theta, yHt, 50)
    pre_meta, pre_rows = read_run(metrics_path)
    val = pre_rows.dropna(subset=["val_acc"]) if "val_acc" in pre_rows else pre_rows.iloc[0:0]
    pretrain = {"metrics": metrics_path.name, "steps": int(pre_meta.get("steps_done", 0)),
                "val_acc_P": float(val["val_acc"].iloc[-1]) if len(val) else None,
                "seconds": round(t_pretrain, 1), "config": pre_meta["config"]}
    record = {"rows": rows, "probe_accuracy_D_H": curves, "pretrain": pretrain,
              "theta0": {"acc_P_head": acc0_head, "acc_P_probe": probe_accuracy(Z_P @ theta0, yP, Z_Pt @ theta0, yPt)},
              "seconds": round(time.perf_counter() - t0, 1),
              "meta": run_meta(seed=seed, config={"immunization": asdict(cfg), "quick": quick,
                                                  "D_P": D_P_CLASSES, "D_H": D_H_CLASSES})}
    write_json(out / "deep.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    ap.add_argument("--preset", choices=["cpu", "gpu"], default="cpu")
    args, rest = ap.parse_known_args(argv)
    if args.preset == "gpu":  # its own flags (--imagenet-dir, --cars-dir, --dry-run, ...): deep_gpu.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from deep_gpu import main as gpu_main

        return gpu_main(rest)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["cpu", "gpu"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="60 pre-training steps, 30 immunization steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="results directory (default results/paper4, quick: results/quick/paper4)")
    args = ap.parse_args(argv)
    args.out = args.out or REPO_ROOT / "results" / ("quick/paper4" if args.quick else "paper4")
    rec = run_deep(args.out, args.quick, args.seed)
    print(f"[paper4] deep: {args.out / 'deep.json'} ({rec['seconds']} s; pre-training {rec['pretrain']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
