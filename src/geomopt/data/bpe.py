"""Shakespeare as byte-level BPE tokens (8,192-token vocabulary), in nanoGPT ``.bin`` shards.

Why: a character vocabulary has no rare tokens, so its gradient noise is not heavy-tailed;
a byte-level BPE on the same text gives the embedding / output-head noise of the papers'
regime (the paper-1 spec, §0). The tokenizer is trained here with the PyPI package
``tokenizers`` (GPT-2's byte-level pre-tokenizer, no special tokens) on the *train* text
only, then both splits are encoded and written as one shard each:

    <dir>/tokenizer.json
    <dir>/shakespeare_bpe_train_000000.bin   (nanoGPT / modded-nanogpt shard format, uint16)
    <dir>/shakespeare_bpe_val_000000.bin
    <dir>/build.json                         (the build key's inputs and the token counts)

The default cache is ``data/shakespeare_bpe/<key>/`` in the repository, where ``key`` hashes
:data:`BUILDER_VERSION`, the ``tokenizers`` version, the vocabulary size, the validation
fraction and the text itself: a changed builder, package or corpus builds a new directory
(bump ``BUILDER_VERSION`` whenever this file changes what it writes). A build goes to a
temporary sibling directory that is renamed into place, so a killed build leaves nothing
that a loader would read. The same text gives byte-identical files (tests check it).

Splits: the last :data:`VAL_FRACTION` of every play is validation (twice the char task's
10%, so that the val stream holds ≈ 290k tokens: a report part and a disjoint selection
part of 64k tokens each fit with room to spare).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from geomopt.data import DataMissing

BUILDER_VERSION = 1
VOCAB_SIZE = 8192
VAL_FRACTION = 0.2
PREFIX = "shakespeare_bpe"
TOKENIZERS_PIN = "tokenizers==0.23.3"
DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "data" / PREFIX  # <repo>/data/shakespeare_bpe


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise DataMissing(f"shakespeare_bpe: Python package 'tokenizers' not found; `pip install {TOKENIZERS_PIN}` "
                          "(make setup installs requirements.txt)") from None
    return tokenizers


def train_tokenizer(train_text: str, vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE ``tokenizers.Tokenizer`` fitted on ``train_text`` (GPT-2's pre-tokenizer
    regex, the 256 byte symbols as the initial alphabet, so any text encodes: no unknown token)."""
    tk = _tokenizers()
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=[],
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([train_text], trainer=trainer)
    return tok


def encode(tok, text: str) -> np.ndarray:
    ids = np.asarray(tok.encode(text).ids, dtype=np.int64)
    if len(ids) and ids.max() >= 2 ** 16:
        raise ValueError(f"token id {ids.max()} does not fit the uint16 shard format; lower vocab_size")
    return ids.astype(np.uint16)


def build_key(train_text: str, val_text: str, vocab_size: int = VOCAB_SIZE, val_fraction: float = VAL_FRACTION) -> dict:
    """What a build depends on; its hash names the cache directory."""
    text_hash = hashlib.sha256(train_text.encode() + b"\0" + val_text.encode()).hexdigest()
    return {"builder_version": BUILDER_VERSION, "tokenizers": _tokenizers().__version__, "vocab_size": vocab_size,
            "val_fraction": val_fraction, "text_sha256": text_hash}


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def shard_paths(directory: Path) -> tuple[Path, Path]:
    return directory / f"{PREFIX}_train_000000.bin", directory / f"{PREFIX}_val_000000.bin"


def build(train_text: str, val_text: str, out_dir: str | os.PathLike, vocab_size: int = VOCAB_SIZE,
          key: dict | None = None) -> Path:
    """Fit the tokenizer on ``train_text``, encode both texts, write ``out_dir`` atomically
    (a temporary sibling renamed into place; if another process finished first, keep its copy)."""
    from geomopt.data.text import write_shard

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    key = key or build_key(train_text, val_text, vocab_size)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        tok = train_tokenizer(train_text, vocab_size)
        train, val = encode(tok, train_text), encode(tok, val_text)
        tok.save(str(tmp / "tokenizer.json"))
        for path, tokens in zip(shard_paths(tmp), (train, val)):
            write_shard(path, tokens)
        info = {**key, "vocab_size_built": tok.get_vocab_size(), "train_tokens": len(train), "val_tokens": len(val)}
        (tmp / "build.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not is_built(out_dir):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def is_built(directory: Path) -> bool:
    return (directory / "build.json").is_file() and all(p.is_file() for p in shard_paths(directory))


def build_info(directory: Path) -> dict:
    """The build.json of a build: its key, vocabulary size and token counts."""
    path = Path(directory) / "build.json"
    if not path.is_file():
        raise DataMissing(f"shakespeare_bpe: {path} not found; a build writes it (geomopt.data.bpe.build)")
    return json.loads(path.read_text())


def shakespeare_bpe_dir(root: str | os.PathLike = "", build_missing: bool = True, log=None) -> Path:
    """The cache directory of the current Shakespeare text and builder under ``root`` (default
    ``data/shakespeare_bpe``), built first when missing and ``build_missing``; older builds
    under ``root`` are removed after a new one is in place."""
    from geomopt.data.text import shakespeare_split

    root = Path(root) if root else DEFAULT_ROOT
    train_text, val_text = shakespeare_split(VAL_FRACTION)
    key = build_key(train_text, val_text, VOCAB_SIZE, VAL_FRACTION)
    directory = root / key_hash(key)
    if is_built(directory):
        return directory
    if not build_missing:
        raise DataMissing(f"shakespeare_bpe: {directory} not built; `python -m geomopt data --install` "
                          "(make data) builds it, or train once with dataset=shakespeare_bpe")
    if log:
        log(f"shakespeare_bpe: building the tokenizer and shards in {directory} (about 10 s)")
    build(train_text, val_text, directory, VOCAB_SIZE, key=key)
    for old in root.iterdir():  # stale builds of an older builder or text
        if old.is_dir() and old != directory and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return directory


def load_tokenizer(directory: str | os.PathLike):
    """The ``tokenizers.Tokenizer`` of a build, to decode tokens (``tok.decode(ids)``)."""
    return _tokenizers().Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
