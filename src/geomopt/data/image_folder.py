"""The ImageFolder on-disk layout, read with PIL (no torchvision): ``root/<class>/<image>``.

Classes are the sorted sub-folder names, labels 0..k-1 in that order (as torchvision's
``ImageFolder``), so ImageNet's ``train/`` and class-sorted ``val/``, Stanford Cars and
Country211 arranged in class folders all read the same way. Images stay on disk; a
:class:`ImageFolderDataset` decodes one per ``__getitem__`` (for a ``DataLoader`` with
workers) and returns a uint8 tensor (3, size, size) and its label:

    eval   resize the shorter side to size·256/224, center crop size×size (the ImageNet recipe)
    train  random resized crop (area 8–100 %, aspect 3/4–4/3) to size×size + horizontal flip

Normalization is a batch op on the device (``geomopt.data.images.normalize`` with
:data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import torch

from geomopt.data import DataMissing

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])


def resolve_data_dir(given: str | os.PathLike | None, env: str, what: str) -> Path:
    """The directory from a flag, else ``$env``; DataMissing (one line) when neither names a directory."""
    raw = str(given) if given else os.environ.get(env, "")
    if not raw:
        raise DataMissing(f"{what}: no directory given; pass its path or set {env}=/path/to/{what.lower()}")
    path = Path(raw)
    if not path.is_dir():
        raise DataMissing(f"{what}: {path.resolve()} is not a directory; pass the folder holding the class "
                          f"folders (or its train/ and val/ splits) or set {env}")
    return path


def find_split(root: Path, names: tuple[str, ...], what: str) -> Path:
    """``root/<first of names that exists>``; DataMissing naming the tried folders otherwise."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise DataMissing(f"{what}: none of {', '.join(names)} under {root.resolve()}; arrange the data as "
                      f"{root}/{names[0]}/<class name>/<image>")


def scan_image_folder(root: str | os.PathLike) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(image path, label)]) of an ImageFolder tree; DataMissing if it holds no images."""
    root = Path(root)
    if not root.is_dir():
        raise DataMissing(f"image folder {root.resolve()} not found; point the path at class-named folders")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples = [(path, label) for label, name in enumerate(classes)
               for path in sorted((root / name).rglob("*")) if path.suffix.lower() in IMAGE_EXTENSIONS]
    if not samples:
        raise DataMissing(f"image folder {root.resolve()}: no {'/'.join(IMAGE_EXTENSIONS)} images in class "
                          "folders; expected root/<class name>/<image>")
    return classes, samples


def _resize(img, size: int):
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    return img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)


def center_crop(img, size: int):
    """Eval transform: shorter side to size·256/224, then the central size×size."""
    img = _resize(img, round(size * 256 / 224))
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def random_resized_crop(img, size: int, rng: random.Random):
    """Train transform: a random crop of 8–100 % of the area, aspect 3/4–4/3, resized to size×size."""
    from PIL import Image

    w, h = img.size
    for _ in range(10):
        area = w * h * rng.uniform(0.08, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return img.resize((size, size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
    return center_crop(img, size)  # fallback for extreme aspect ratios, as torchvision


class ImageFolderDataset(torch.utils.data.Dataset):
    def __init__(self, root: str | os.PathLike, size: int = 224, train: bool = False, seed: int = 0):
        self.classes, self.samples = scan_image_folder(root)
        self.size, self.train = size, train
        self.rng = random.Random(seed)  # re-seeded per worker by worker_init (see seed_worker)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([label for _, label in self.samples], dtype=np.int64)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as im:
            img = im.convert("RGB")
        img = random_resized_crop(img, self.size, self.rng) if self.train else center_crop(img, self.size)
        if self.train and self.rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        return x, label


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: each worker's crop/flip stream from torch's per-worker seed."""
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = random.Random(info.seed)
