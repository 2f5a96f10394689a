"""Small image sets as one tensor on the device (the airbench way).

An :class:`ImageSet` is uint8 images ``(N, C, H, W)`` + int64 labels, both on the
training device; :func:`normalize` turns a batch into floats with the train set's
per-channel mean/std, :func:`augment` applies random crop (with zero padding) and
horizontal flip to a whole batch with tensor ops (no per-sample Python, no torchvision).

Readers: idx files (Fashion-MNIST, gz or plain), CIFAR-10 python pickle batches,
scikit-learn digits.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geomopt.data import DataMissing

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_HOWTO = "install it with `sudo apt-get install dataset-fashion-mnist` (or `make data` as root)"
CIFAR_HOWTO = ("download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it "
               "and set GEOMOPT_CIFAR10=/path/to/cifar-10-batches-py or data_dir=/path/to/cifar-10-batches-py")
FASHION_FILES = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@dataclass
class ImageSet:
    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "ImageSet":
        return ImageSet(self.x.to(device), self.y.to(device))


@dataclass
class ImageData:
    train: ImageSet
    test: ImageSet
    num_classes: int
    mean: torch.Tensor  # (C,) in [0, 1] units, from the train set
    std: torch.Tensor

    @property
    def channels(self) -> int:
        return self.train.x.shape[1]

    def to(self, device) -> "ImageData":
        return ImageData(self.train.to(device), self.test.to(device), self.num_classes,
                         self.mean.to(device), self.std.to(device))


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xf = x.double().div_(255).transpose(0, 1).reshape(x.shape[1], -1)
    return xf.mean(1).float(), xf.std(1).float()


def make_image_data(train: ImageSet, test: ImageSet, num_classes: int) -> ImageData:
    mean, std = channel_stats(train.x)
    return ImageData(train, test, num_classes, mean, std)


# ---------------------------------------------------------------- readers

def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An idx file (LeCun's MNIST format; ``.gz`` or plain) as a uint8 array of its shape."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (header {raw[:4]!r})")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header dims {dims.tolist()} need {int(np.prod(dims))} bytes, found {data.size}")
    return data.reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an idx file (gzip if the name ends in .gz); for tests."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def load_fashion_mnist(data_dir: str = "") -> ImageData:
    directory = Path(data_dir) if data_dir else FASHION_DIR
    sets = []
    for split in ("train", "t10k"):
        img, lab = directory / f"{split}-images-idx3-ubyte.gz", directory / f"{split}-labels-idx1-ubyte.gz"
        for p in (img, lab):
            if not p.exists():
                raise DataMissing(f"Fashion-MNIST: {p} not found; {FASHION_HOWTO}")
        x = torch.from_numpy(read_idx(img).copy()).unsqueeze(1)
        sets.append(ImageSet(x, torch.from_numpy(read_idx(lab).astype(np.int64))))
    return make_image_data(sets[0], sets[1], 10)


def cifar_dir(data_dir: str = "") -> Path:
    return Path(data_dir or os.environ.get("GEOMOPT_CIFAR10", "") or "data/cifar-10-batches-py")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return x, np.asarray(d[b"labels"], dtype=np.int64)


def load_cifar10(data_dir: str = "") -> ImageData:
    directory = cifar_dir(data_dir)
    missing = [n for n in CIFAR_FILES if not (directory / n).exists()]
    if missing:
        raise DataMissing(f"CIFAR-10: {directory.resolve() / missing[0]} not found; {CIFAR_HOWTO}")
    parts = [_read_cifar_batch(directory / n) for n in CIFAR_FILES]
    train_x = np.concatenate([p[0] for p in parts[:5]])
    train_y = np.concatenate([p[1] for p in parts[:5]])
    train = ImageSet(torch.from_numpy(train_x), torch.from_numpy(train_y))
    test = ImageSet(torch.from_numpy(parts[5][0]), torch.from_numpy(parts[5][1]))
    return make_image_data(train, test, 10)


DIGITS_TEST = 297  # the last 297 of sklearn's 1797 digits are the test set


def load_digits_data() -> ImageData:
    """scikit-learn's 8x8 digits (values 0..16 scaled to 0..255), fixed split: last 297 = test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    n = len(y) - DIGITS_TEST
    return make_image_data(ImageSet(x[:n], y[:n]), ImageSet(x[n:], y[n:]), 10)


def load_images(dataset: str, data_dir: str = "") -> ImageData:
    if dataset == "fashion_mnist":
        return load_fashion_mnist(data_dir)
    if dataset == "cifar10":
        return load_cifar10(data_dir)
    if dataset == "digits":
        return load_digits_data()
    raise ValueError(f"image dataset {dataset!r} unknown; choose fashion_mnist, cifar10 or digits")


def select_classes(data: ImageData, classes) -> ImageData:
    """Only the images of ``classes``, relabelled 0..k-1 in the order given; mean/std recomputed
    from the kept training images (a model pre-trained on a class subset, paper 4's D_P)."""
    classes = [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < data.num_classes]
    if bad:
        raise ValueError(f"classes {bad} out of range 0..{data.num_classes - 1}")
    table = torch.full((data.num_classes,), -1, dtype=torch.int64)
    table[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(s: ImageSet) -> ImageSet:
        new = table[s.y.cpu()].to(s.y.device)
        mask = new >= 0
        return ImageSet(s.x[mask], new[mask])

    return make_image_data(keep(data.train), keep(data.test), len(classes))


# ---------------------------------------------------------------- batch ops

def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 batch -> float batch with zero mean / unit variance per channel (train statistics)."""
    return (x.float().div_(255) - mean[:, None, None]).div_(std[:, None, None])


def draw_augment(n: int, pad: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random draws for :func:`augment`: crop shifts (n, 2) in [0, 2·pad] and flip flags (n,)."""
    shifts = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    return shifts, torch.rand(n, generator=generator) < 0.5


def augment(x: torch.Tensor, pad: int, shifts: torch.Tensor, flips: torch.Tensor | None) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` (top-left corner ``shifts[i]`` of the padded
    image) and horizontal flip where ``flips[i]`` (None = no flips), for a whole batch.

    The draws come from the caller (:func:`draw_augment`) so that the sampler's generator,
    which a checkpoint restores, decides them."""
    n, c, h, w = x.shape
    if pad > 0:
        shifts = shifts.to(x.device)
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = (shifts[:, 0, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (n, 1, h, 1)
        cols = (shifts[:, 1, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (n, 1, 1, w)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flips is not None:
        x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(3), x)
    return x
