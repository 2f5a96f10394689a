"""Deep-net analogue of Table 3 at CPU scale (self-contained; does not use geomopt.train).

A small CNN is pre-trained on Fashion-MNIST classes 0–4 (D_P). Its last block is a linear
layer θ ∈ ℝ^{512×64} on the frozen convolutional backbone's features Z, so the attacker's
linear probe on f_θ(x) = Z(x)θ has Hessian θᵀKθ with K = ZᵀZ: Algorithm 1 and the baselines
run on that block exactly as in the linear case, with the θ-side K⁻¹ (Din ≠ Dout, so the
public code's right-multiplied variant would not even type-check). D_H = classes 5–9.
D_P's task term regresses one-hot labels (a linear head ω, 64×5).

Reported, per method (Table 3's columns): (i), (ii), RIR_θ₀ (Eq. 17: the pre-trained and the
immunized models are saved and loaded back as two separate modules, features of 20 random
groups of 100 test images each), D_P test accuracy (the Alg. 1 head ω, and a refitted
least-squares probe); plus D_H probe accuracy per exact-line-search GD step (Fig. 3 analogue).
"""

from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geomopt.immunization import METHODS, ImmunizationConfig, LinearTask, immunization_ratios, immunize, rir_theta0
from geomopt.immunization import datasets
from geomopt.results import run_meta, write_json

D_P_CLASSES, D_H_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
DEEP = ImmunizationConfig(steps=100, lr=0.005, ridge=1e-6, log_every=100)  # Dout = 64, as digits' Din


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 5, feature_dim: int = 64):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten())  # 32·4·4 = 512
        self.last_block = nn.Linear(512, feature_dim, bias=False)  # θᵀ: the immunized block
        self.head = nn.Linear(feature_dim, classes)

    def features(self, x):
        return self.last_block(self.backbone(x))

    def forward(self, x):
        return self.head(self.features(x))


def _split(X, y, classes, per_class):
    idx = np.concatenate([np.nonzero(y == c)[0][:per_class] for c in classes])
    labels = np.searchsorted(np.array(classes), y[idx])
    return torch.tensor(X[idx], dtype=torch.float32).unsqueeze(1), torch.tensor(labels)


def load_fashion(per_class: int, test_per_class: int):
    from geomopt.data.images import read_idx

    root = datasets.FASHION_MNIST_DIR
    out = {}
    for split, n in (("train", per_class), ("t10k", test_per_class)):
        X = read_idx(root / f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
        y = read_idx(root / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
        out[split] = {"P": _split(X, y, D_P_CLASSES, n), "H": _split(X, y, D_H_CLASSES, n)}
    return out


def pretrain(model, x, y, epochs: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()


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


def _reload(state_path):
    """A fresh module loaded from its own checkpoint: θ₀ and θ_I are never the same object (pitfall 7)."""
    fresh = SmallCNN()
    fresh.load_state_dict(torch.load(state_path))
    return fresh.double().eval()


def run_deep(out: Path, quick: bool, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    data = load_fashion(per_class=300 if quick else 2000, test_per_class=200 if quick else 1000)
    (xP, yP), (xH, yH) = data["train"]["P"], data["train"]["H"]
    (xPt, yPt), (xHt, yHt) = data["t10k"]["P"], data["t10k"]["H"]
    model = SmallCNN()
    pretrain(model, xP, yP, epochs=1 if quick else 2, seed=seed)
    model.eval()
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
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), Path(tmp) / "theta0.pt")
        for method in METHODS:
            res = immunize(task, replace(cfg, method=method), theta0=theta0)
            immunized = copy.deepcopy(model)
            with torch.no_grad():
                immunized.last_block.weight.copy_(torch.tensor(res.theta.T, dtype=torch.float32))
            torch.save(immunized.state_dict(), Path(tmp) / f"{method}.pt")
            m0, mI = _reload(Path(tmp) / "theta0.pt"), _reload(Path(tmp) / f"{method}.pt")
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
    record = {"rows": rows, "probe_accuracy_D_H": curves,
              "theta0": {"acc_P_head": acc0_head, "acc_P_probe": probe_accuracy(Z_P @ theta0, yP, Z_Pt @ theta0, yPt)},
              "seconds": round(time.perf_counter() - t0, 1),
              "meta": run_meta(seed=seed, config={"immunization": asdict(cfg), "quick": quick,
                                                  "D_P": D_P_CLASSES, "D_H": D_H_CLASSES})}
    write_json(out / "deep.json", record)
    return record
