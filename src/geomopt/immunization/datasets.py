"""Offline data for the immunization experiments (all float64 numpy).

- ``diabetes_split``: scikit-learn's bundled diabetes data split by the ``sex``
  column, standing in for the paper's House Prices split by MSZoning (the Kaggle
  data is not available offline). D_P = one sex group with target ``bmi`` (an
  input-like property, as LotArea is for houses), D_H = the other group with the
  disease-progression target (the quantity of interest, as SalePrice); inputs are
  the remaining 8 columns, z-scored per data set as in the paper.
- ``digits_by_class``: scikit-learn's bundled 8×8 digits (Din = 64), pixels / 16.
- ``fashion_mnist_by_class``: the idx files under /usr/share/datasets/fashion-mnist
  (Din = 784), pixels / 255, read with ``geomopt.data.images.read_idx``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from geomopt.data.images import read_idx

FASHION_MNIST_DIR = Path(os.environ.get("GEOMOPT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


def _zscore(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def diabetes_split() -> dict:
    """{'X_P','Y_P','X_H','Y_H','features','description'}; see the module docstring."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    sexes = np.sort(frame["sex"].unique())
    if len(sexes) != 2:
        raise ValueError(f"expected two values of 'sex' in the diabetes data, got {len(sexes)}")
    inputs = [c for c in frame.columns if c not in ("sex", "bmi", "target")]
    P, Hd = frame[frame["sex"] == sexes[0]], frame[frame["sex"] == sexes[1]]
    return {
        "X_P": _zscore(P[inputs].to_numpy(np.float64)), "Y_P": _zscore(P[["bmi"]].to_numpy(np.float64)),
        "X_H": _zscore(Hd[inputs].to_numpy(np.float64)), "Y_H": _zscore(Hd[["target"]].to_numpy(np.float64)),
        "features": inputs,
        "description": (f"sklearn diabetes; D_P: sex={sexes[0]:.4f} (n={len(P)}), target bmi; "
                        f"D_H: sex={sexes[1]:.4f} (n={len(Hd)}), target disease progression; "
                        f"inputs {inputs} z-scored per data set"),
    }


def digits_by_class() -> dict[int, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.data.astype(np.float64) / 16.0
    return {c: X[d.target == c] for c in range(10)}


def fashion_mnist_by_class(per_class: int | None = None, root: Path = FASHION_MNIST_DIR) -> dict[int, np.ndarray]:
    """Training images per class, flattened to 784 and scaled to [0, 1] (first ``per_class`` of each)."""
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        if not (Path(root) / name).exists():
            raise FileNotFoundError(f"{Path(root) / name} not found; set GEOMOPT_FASHION_MNIST to the idx folder")
    images = read_idx(Path(root) / "train-images-idx3-ubyte.gz")
    labels = read_idx(Path(root) / "train-labels-idx1-ubyte.gz")
    X = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return {c: X[labels == c][:per_class] for c in range(10)}
