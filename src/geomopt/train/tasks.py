"""What differs between GPT and image training: data, model, batches, loss, evaluation.

A task draws the *global* batch of a step from its own ``torch.Generator`` (identical
on every rank), splits it into ``world x grad_accum`` equal micro-batches and hands this
rank its share, so a run with W processes sees exactly the samples of a one-process
run with the same global batch. Its ``state_dict`` (generator + position) goes into
checkpoints.

Evaluation splits (``cfg.eval_split``; issue 12's rule that selection never reads what a verdict reads):
- ``"report"``: GPT: the first ``eval_tokens`` of the validation stream; images: the test set.
  Metrics are logged as ``val_loss`` / ``val_acc``.
- ``"select"``: GPT: as many windows from the END of the validation stream (an error if they would
  overlap the report windows); images: a fixed 10% of the training set (a permutation of seed
  ``HOLDOUT_SEED``, the same for every run seed), removed from training in that run. Metrics are
  logged as ``select_loss`` / ``select_acc`` only. Tuning runs use "select"; verdict runs use
  "report" and train on the whole training set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geomopt.data import DataMissing
from geomopt.data.images import (ImageData, ImageSet, augment, draw_augment, load_images, make_image_data,
                                 normalize, select_classes)
from geomopt.data.text import load_text, window_counts, windows
from geomopt.models.gpt import GPT, GPTConfig
from geomopt.models import IMAGE_MODELS
from geomopt.train.config import ConfigError, TrainConfig
from geomopt.train.dist import DistInfo, all_reduce_sum

DATA_SEED_OFFSET = 0x5EED  # the sampler's stream differs from the model-init stream of the same seed
HOLDOUT_SEED = 0x5E1EC7  # the image selection split: one fixed permutation, independent of the run seed
HOLDOUT_FRACTION = 0.1


def metric_prefix(split: str) -> str:
    """Key prefix of the evaluation metrics: val_* for the report split, select_* for selection."""
    return {"report": "val", "select": "select"}[split]


def _stream(arrays: list, need: int, from_end: bool) -> np.ndarray:
    """The first (or last) ``need`` tokens of the concatenated arrays (fewer if there are fewer)."""
    parts, have = [], 0
    for a in (reversed(arrays) if from_end else arrays):
        take = need - have
        parts.append(np.asarray(a[-take:] if from_end else a[:take]))
        have += len(parts[-1])
        if have >= need:
            break
    return np.concatenate(parts[::-1] if from_end else parts).astype(np.int64)


class Task:
    tokens_per_step: int  # global tokens (images) per optimizer step

    def __init__(self, cfg: TrainConfig, device: torch.device, info: DistInfo):
        self.cfg, self.device, self.info = cfg, device, info
        per_rank, rem = divmod(cfg.batch_size, info.world * cfg.grad_accum)
        if rem or per_rank == 0:
            raise ConfigError(f"batch_size={cfg.batch_size} must be a positive multiple of processes x grad_accum = "
                              f"{info.world} x {cfg.grad_accum}; change batch_size or grad_accum")
        self.micro = per_rank
        self.generator = torch.Generator().manual_seed(cfg.seed + DATA_SEED_OFFSET)
        if cfg.data_dir and not Path(cfg.data_dir).is_dir():
            raise DataMissing(f"data_dir {Path(cfg.data_dir).resolve()} is not a directory; point data_dir at the "
                              f"{cfg.dataset} files (see `python -m geomopt data`) or leave it empty")

    def _my_share(self, global_rows: torch.Tensor) -> torch.Tensor:
        """Rows of this rank, shaped (grad_accum, micro, ...)."""
        shaped = global_rows.view(self.info.world, self.cfg.grad_accum, self.micro, *global_rows.shape[1:])
        return shaped[self.info.rank]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class GPTTask(Task):
    def __init__(self, cfg: TrainConfig, device: torch.device, info: DistInfo):
        super().__init__(cfg, device, info)
        self.data = load_text(cfg.dataset, cfg.data_dir)
        T = cfg.seq_len
        self.tokens_per_step = cfg.batch_size * T
        self.window_counts = window_counts(self.data.train, T + 1)
        self.num_windows = int(self.window_counts.sum())
        if self.num_windows <= 0:
            raise ConfigError(f"seq_len={T} is longer than the training text; lower seq_len")
        self.val = self._val_windows(cfg.eval_tokens, T)

    def _val_windows(self, eval_tokens: int, T: int) -> torch.Tensor:
        """The fixed evaluation set: consecutive windows from the start of the val split ("report")
        or the same number from its end ("select"), which must not overlap the report windows."""
        total = sum(len(a) for a in self.data.val)
        n = min(eval_tokens // T, (total - 1) // T)
        if n <= 0:
            raise ConfigError(f"eval_tokens={eval_tokens} gives no validation window of seq_len={T}; "
                              f"raise eval_tokens to at least seq_len")
        if self.cfg.eval_split == "select" and 2 * (n * T + 1) > total:
            raise ConfigError(f"eval_split='select': {n} windows of {T + 1} tokens from the end of the "
                              f"{total:,}-token validation stream would overlap the report windows; lower "
                              "eval_tokens to at most half the validation tokens")
        stream = _stream(self.data.val, n * T + 1, from_end=self.cfg.eval_split == "select")
        idx = np.arange(n)[:, None] * T + np.arange(T + 1)
        return torch.from_numpy(stream[idx]).to(self.device)

    def build_model(self) -> nn.Module:
        c = self.cfg
        return GPT(GPTConfig(vocab_size=self.data.vocab_size, block_size=c.seq_len, n_layer=c.n_layer,
                             n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout, bias=c.bias,
                             tie_weights=c.tie_weights, norm=c.norm, activation=c.activation, rotary=c.rotary,
                             qk_norm=c.qk_norm))

    def total_steps(self) -> int:
        return self.cfg.steps or self.cfg.total_tokens // self.tokens_per_step

    def next_batch(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        starts = torch.randint(0, self.num_windows, (self.cfg.batch_size,), generator=self.generator)
        rows = torch.from_numpy(windows(self.data.train, starts.numpy(), self.cfg.seq_len + 1, self.window_counts))
        mine = self._my_share(rows)
        if self.device.type == "cuda":
            mine = mine.pin_memory().to(self.device, non_blocking=True)
        return [(m[:, :-1], m[:, 1:]) for m in mine]

    @staticmethod
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        logits = model(x)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction=reduction)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, autocast) -> dict[str, float]:
        was_training = model.training
        model.eval()
        mine = self.val[self.info.rank:: self.info.world]
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # (loss sum, tokens)
        for chunk in mine.split(self.micro):
            with autocast():
                total[0] += self.loss(model, chunk[:, :-1], chunk[:, 1:], reduction="sum").double()
            total[1] += chunk[:, 1:].numel()
        all_reduce_sum(total, self.info)
        model.train(was_training)
        return {f"{metric_prefix(self.cfg.eval_split)}_loss": (total[0] / total[1]).item()}


class ImageTask(Task):
    def __init__(self, cfg: TrainConfig, device: torch.device, info: DistInfo):
        super().__init__(cfg, device, info)
        data = load_images(cfg.dataset, cfg.data_dir)
        if cfg.classes:
            try:
                data = select_classes(data, cfg.classes)
            except ValueError as e:
                raise ConfigError(f"{e}; fix classes in the config") from None
        if cfg.eval_split == "select":
            data = holdout_split(data)
        self.data = data.to(device)
        n = len(self.data.train)
        if cfg.batch_size > n:
            raise ConfigError(f"batch_size={cfg.batch_size} exceeds the {n} training images; lower batch_size")
        self.tokens_per_step = cfg.batch_size
        self.steps_per_epoch = n // cfg.batch_size  # the last partial batch of an epoch is dropped
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def build_model(self) -> nn.Module:
        return IMAGE_MODELS[self.cfg.model](in_channels=self.data.channels, num_classes=self.data.num_classes,
                                       width=self.cfg.width)

    def total_steps(self) -> int:
        c = self.cfg
        if c.epochs:
            return round(c.epochs * self.steps_per_epoch)
        return c.steps or c.total_tokens // self.tokens_per_step

    def next_batch(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        B, n, c = self.cfg.batch_size, len(self.data.train), self.cfg
        if self.pos + B > n:
            self.perm, self.pos = torch.randperm(n, generator=self.generator), 0
        idx = self.perm[self.pos: self.pos + B]
        self.pos += B
        # Augmentation draws for the global batch, on every rank, so that ranks agree with one process.
        shifts, flips = draw_augment(B, c.augment_crop_pad, self.generator)
        out = []
        for i, s, f in zip(self._my_share(idx), self._my_share(shifts), self._my_share(flips)):
            i = i.to(self.device)
            x = augment(self.data.train.x[i], c.augment_crop_pad, s, f if c.augment_flip else None)
            out.append((normalize(x, self.data.mean, self.data.std), self.data.train.y[i]))
        return out

    @staticmethod
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(model(x).float(), y, reduction=reduction)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, autocast) -> dict[str, float]:
        was_training = model.training
        model.eval()
        test = self.data.test
        chunks = torch.arange(len(test), device=self.device).split(self.micro)
        if self.cfg.eval_batches:
            chunks = chunks[: self.cfg.eval_batches * self.info.world * self.cfg.grad_accum]
        total = torch.zeros(3, dtype=torch.float64, device=self.device)  # (loss sum, correct, count)
        for i in chunks[self.info.rank:: self.info.world]:
            with autocast():
                logits = model(normalize(test.x[i], self.data.mean, self.data.std)).float()
            total[0] += F.cross_entropy(logits, test.y[i], reduction="sum").double()
            total[1] += (logits.argmax(1) == test.y[i]).sum()
            total[2] += len(i)
        all_reduce_sum(total, self.info)
        model.train(was_training)
        k = metric_prefix(self.cfg.eval_split)
        return {f"{k}_loss": (total[0] / total[2]).item(), f"{k}_acc": (total[1] / total[2]).item()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "perm": self.perm.clone(), "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.perm, self.pos = state["perm"], state["pos"]


def holdout_split(data: ImageData) -> ImageData:
    """Train on all but a fixed ``HOLDOUT_FRACTION`` of the training images and evaluate on those
    (the tuner's selection split; the test set is not touched)."""
    n = len(data.train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    k = max(1, int(HOLDOUT_FRACTION * n))
    hold, keep = perm[:k].sort().values, perm[k:].sort().values
    t = data.train
    return make_image_data(ImageSet(t.x[keep], t.y[keep]), ImageSet(t.x[hold], t.y[hold]), data.num_classes)


def make_task(cfg: TrainConfig, device: torch.device, info: DistInfo) -> Task:
    return (GPTTask if cfg.task == "gpt" else ImageTask)(cfg, device, info)
