"""The run configuration: one dataclass, loaded from TOML, overridden by ``key=value``.

Every field is type-checked; unknown keys and bad values raise :class:`ConfigError`,
whose message is one line naming the problem and the fix. Tables (``[optim]``,
``[adamw]``, ``[grad_transform_args]``) are free-form dicts passed to the optimizer /
transform constructors, which check them when built. Overrides use dotted keys for
tables: ``optim.lr=0.01``; values are parsed as TOML (``name=foo`` works unquoted).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomopt.data import IMAGE_DATASETS, TEXT_DATASETS
from geomopt.models import IMAGE_MODELS


class ConfigError(ValueError):
    """A bad configuration; ``str(e)`` is one line: the problem and the fix. Exit code 2."""


@dataclass
class TrainConfig:
    name: str = "run"
    task: str = "gpt"  # "gpt" | "image"
    dataset: str = "shakespeare_char"  # see geomopt.data.TEXT_DATASETS / IMAGE_DATASETS
    data_dir: str = ""  # FineWeb shards / CIFAR batches / idx files; "" = $GEOMOPT_FINEWEB, $GEOMOPT_CIFAR10, defaults
    # GPT (geomopt.models.gpt.GPTConfig); vocab_size comes from the data
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = False
    norm: str = "layernorm"
    activation: str = "gelu"
    rotary: bool = False
    qk_norm: bool = False
    # image models (geomopt.models.IMAGE_MODELS)
    model: str = "resnet_small"  # task="image": "resnet_small" | "resnet18" | "cnn_small"
    classes: list = field(default_factory=list)  # task="image": keep these labels, relabelled 0..k-1; [] = all
    width: int = 16
    augment_crop_pad: int = 0  # random crop after zero padding by this many pixels (0 = off)
    augment_flip: bool = False
    # optimization
    optimizer: str = "adamw"  # a name in geomopt.optim.OPTIMIZERS
    optim: dict = field(default_factory=dict)  # [optim]: hyperparameters of that optimizer (lr, betas, ...)
    adamw: dict = field(default_factory=dict)  # [adamw]: AdamW for the non-matrix params of a matrix optimizer
    grad_clip: float = 0.0  # global-norm clipping threshold; 0 = off
    grad_transform: str = ""  # a name in geomopt.train.transforms.GRAD_TRANSFORMS or "module:attr"
    grad_transform_args: dict = field(default_factory=dict)  # [grad_transform_args]: its keyword arguments
    # batch: batch_size is the global number of sequences (images) per optimizer step
    batch_size: int = 32
    seq_len: int = 128  # also the GPT's block_size
    grad_accum: int = 1  # micro-batches per step (per process)
    # length: exactly one of these > 0 (tokens = images for task="image")
    total_tokens: int = 0
    steps: int = 0
    epochs: float = 0.0
    # learning-rate schedule (a multiplier on every optimizer's lr)
    schedule: str = "cosine"  # "constant" | "cosine" | "warmdown" (constant, then linear over the last warmdown_frac)
    warmup_steps: int = 0
    warmdown_frac: float = 0.2
    final_lr_frac: float = 0.1  # multiplier reached at the last step (cosine and warmdown)
    # evaluation and logging
    eval_every: int = 0  # tokens (images) between evaluations; 0 = at the start and the end only
    eval_tokens: int = 65536  # GPT: validation tokens (the first ones of the val split, fixed)
    eval_batches: int = 0  # image: test batches per evaluation; 0 = the whole test set
    eval_split: str = "report"  # "report" (val_* keys) | "select": the tuner's held-out split (select_* keys)
    log_every: int = 1  # steps between train-loss rows (each one syncs with the device)
    progress: bool = True  # tqdm bar on stderr when it is a terminal
    # outputs ({name} is replaced by the run name)
    out: str = "runs/{name}/metrics.jsonl"
    checkpoint_dir: str = "checkpoints/{name}"
    checkpoint_every: int = 0  # steps; 0 = no periodic checkpoints
    max_steps_per_call: int = 0  # stop (with a checkpoint) after this many steps; --resume continues; 0 = off
    # machine
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    dtype: str = "float32"  # autocast dtype: "float32" (off) | "bfloat16" (no float16: it would need a GradScaler)

    @property
    def out_path(self) -> Path:
        return Path(self.out.format(name=self.name))

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir.format(name=self.name)) / "checkpoint.pt"


# Fields that may differ between a run and its resumption.
RUN_CONTROL_FIELDS = ("max_steps_per_call", "progress", "device", "checkpoint_every", "data_dir")

_CHOICES = {
    "task": ("gpt", "image"),
    "schedule": ("constant", "cosine", "warmdown"),
    "dtype": ("float32", "bfloat16"),
    "norm": ("layernorm", "rmsnorm"),
    "activation": ("gelu", "relu2"),
    "model": tuple(IMAGE_MODELS),
    "eval_split": ("report", "select"),
}
_POSITIVE = ("n_layer", "n_head", "n_embd", "width", "batch_size", "seq_len", "grad_accum", "log_every",
             "eval_tokens")
_NON_NEGATIVE = ("augment_crop_pad", "grad_clip", "total_tokens", "steps", "epochs", "warmup_steps",
                 "eval_every", "eval_batches", "checkpoint_every", "max_steps_per_call", "seed")


def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _coerce(key: str, value: Any, typ: type) -> Any:
    """``value`` as a ``typ`` or ConfigError (ints are accepted for floats, nothing else converts)."""
    ok = {bool: isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str),
          list: isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
          dict: isinstance(value, dict)}[typ]
    if not ok:
        raise ConfigError(f"config key {key!r}: expected {typ.__name__}, got {value!r}; fix the value in the "
                          f"TOML file or the override")
    return float(value) if typ is float else value


def from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a config from a dict (as parsed from TOML)."""
    types = _field_types()
    kwargs = {}
    for key, value in raw.items():
        if key not in types:
            raise ConfigError(f"config key {key!r} unknown; valid keys: {', '.join(types)}")
        kwargs[key] = _coerce(key, value, types[key])
    cfg = TrainConfig(**kwargs)
    validate(cfg)
    return cfg


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["optim.lr=0.01", "steps=100"]`` applied to a raw TOML dict (tables merged key by key)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value; write e.g. optim.lr=0.01 or steps=100")
        value = _parse_value(text)
        if "." in key:
            table, sub = key.split(".", 1)
            if _field_types().get(table) is not dict:
                raise ConfigError(f"override {item!r}: {table!r} is not a table; tables are optim, adamw, "
                                  "grad_transform_args")
            target = raw.setdefault(table, {})
            *path, leaf = sub.split(".")  # grad_transform_args.shrink.t=3 -> nested table
            for part in path:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ConfigError(f"override {item!r}: {part!r} is not a table")
            target[leaf] = value
        else:
            raw[key] = value
    return raw


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; give the path of a TOML file, "
                          "e.g. experiments/presets/cpu/smoke.toml")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: invalid TOML ({e}); fix the syntax") from None
    return from_dict(apply_overrides(raw, list(overrides)))


def validate(cfg: TrainConfig) -> None:
    """Check every value that does not need data or a model; ConfigError names the first problem."""
    for key, choices in _CHOICES.items():
        if getattr(cfg, key) not in choices:
            raise ConfigError(f"config key {key!r} = {getattr(cfg, key)!r} unknown; choose one of: "
                              f"{', '.join(choices)}")
    datasets = TEXT_DATASETS if cfg.task == "gpt" else IMAGE_DATASETS
    if cfg.dataset not in datasets:
        raise ConfigError(f"dataset {cfg.dataset!r} does not fit task {cfg.task!r}; choose one of: "
                          f"{', '.join(datasets)}")
    for key in _POSITIVE:
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"config key {key!r} must be > 0, got {getattr(cfg, key)!r}")
    for key in _NON_NEGATIVE + ("dropout", "warmdown_frac", "final_lr_frac"):
        v = getattr(cfg, key)
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"config key {key!r} must be a finite number >= 0, got {v!r}")
    for key in ("dropout", "warmdown_frac", "final_lr_frac"):
        if getattr(cfg, key) > 1:
            raise ConfigError(f"config key {key!r} must be in [0, 1], got {getattr(cfg, key)!r}")
    lengths = [k for k in ("total_tokens", "steps", "epochs") if getattr(cfg, k) > 0]
    if len(lengths) != 1:
        raise ConfigError(f"set exactly one of total_tokens, steps, epochs to a value > 0 (got "
                          f"{', '.join(lengths) or 'none'})")
    if cfg.epochs > 0 and cfg.task != "image":
        raise ConfigError("epochs is for task='image'; for GPT runs set total_tokens or steps")
    if cfg.classes and (cfg.task != "image" or len(set(cfg.classes)) != len(cfg.classes) or len(cfg.classes) < 2
                        or min(cfg.classes) < 0):
        raise ConfigError(f"classes = {cfg.classes!r}: give at least two distinct labels >= 0 (task='image' only), "
                          "or [] for all classes")
    if cfg.task == "gpt" and cfg.n_embd % cfg.n_head:
        raise ConfigError(f"n_embd={cfg.n_embd} must be a multiple of n_head={cfg.n_head}")
    for table in ("optim", "adamw"):
        lr = getattr(cfg, table).get("lr", 0.0)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
            raise ConfigError(f"{table}.lr must be a number >= 0, got {lr!r}; fix [{table}] lr in the config")
    if cfg.grad_transform_args and not cfg.grad_transform:
        raise ConfigError("grad_transform_args given without grad_transform; name the transform or drop the table")
    for key in ("out", "checkpoint_dir"):
        try:
            getattr(cfg, key).format(name=cfg.name)
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"config key {key!r} = {getattr(cfg, key)!r}: only {{name}} may appear in braces") from None


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
