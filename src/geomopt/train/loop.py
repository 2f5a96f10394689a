"""The training loop: build everything (validating), then step, evaluate, log, checkpoint.

``Trainer(cfg)`` builds data, model, optimizers, schedulers and the grad transform and
raises ConfigError / DataMissing before any file is written. ``fit()`` runs to the end
(or to ``max_steps_per_call``) and returns the metrics path. ``train_step()`` is one
optimizer step (the benchmark times it against a bare loop).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from geomopt.optim import build_optimizers
from geomopt.optim.shard import gather_state
from geomopt.results import RunLog, now_iso, run_meta
from geomopt.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from geomopt.train.config import RUN_CONTROL_FIELDS, ConfigError, TrainConfig, to_dict
from geomopt.train.dist import DistInfo, all_reduce_sum, barrier, share_matrix_work
from geomopt.train.schedule import make_schedulers
from geomopt.train.tasks import make_task
from geomopt.train.transforms import build_grad_transform

DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


class NonFiniteLoss(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is kept. Exit code 3."""


def resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; set device=cpu or device=auto")
    if name == "cuda" and info.enabled:
        return torch.device(f"cuda:{info.local_rank}")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} unknown; use auto, cpu, cuda or cuda:N") from None


class Trainer:
    def __init__(self, cfg: TrainConfig, info: DistInfo = DistInfo(), resume: bool = False, command: str | None = None):
        self.cfg, self.info = cfg, info
        self.device = resolve_device(cfg.device, info)
        if self.device.type == "cuda":  # as nanoGPT: TF32 matmuls under float32 autocast-off code
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(cfg.seed)  # model initialization (the sampler has its own generator)
        self.task = make_task(cfg, self.device, info)
        self.model: nn.Module = self.task.build_model().to(self.device)
        try:
            self.optimizers = build_optimizers(cfg.optimizer, self.model, cfg.optim, cfg.adamw)
            self.transform = build_grad_transform(cfg.grad_transform, self.model, cfg.grad_transform_args)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{e}; fix the optimizer / grad_transform settings in the config") from None
        share_matrix_work(self.optimizers, info)  # under DDP each rank orthogonalizes its share of the matrices
        self.total_steps = self.task.total_steps()
        if self.total_steps <= 0:
            raise ConfigError(f"the run has 0 steps ({self.task.tokens_per_step} tokens per step); "
                              "raise total_tokens / steps / epochs or lower batch_size")
        self.schedulers = make_schedulers(self.optimizers, self.total_steps, cfg.warmup_steps, cfg.schedule,
                                          cfg.warmdown_frac, cfg.final_lr_frac)
        self.net = self.model
        if info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        torch.manual_seed(cfg.seed + 1000 * info.rank + 1)  # dropout stream, distinct per rank
        self.amp_dtype = DTYPES[cfg.dtype]
        self.step, self.tokens, self._saved_step = 0, 0, -1
        self.log = RunLog(cfg.out_path, {**run_meta(cfg.seed, to_dict(cfg), command), "world_size": info.world,
                                         "total_steps": self.total_steps, "status": "running"})
        if resume and cfg.checkpoint_path.exists():
            self.restore(load_checkpoint(cfg.checkpoint_path, map_location=self.device))

    # ------------------------------------------------------------ one step
    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, check: bool = True) -> float | None:
        """One optimizer step. Returns the global mean train loss when ``check`` (a device sync), else None."""
        accum = self.cfg.grad_accum
        micro = self.task.next_batch()
        loss_sum = None
        for i, (x, y) in enumerate(micro):
            sync_now = i == accum - 1 or not self.info.enabled
            ctx = contextlib.nullcontext() if sync_now else self.net.no_sync()
            with ctx:
                with self.autocast():
                    loss = self.task.loss(self.net, x, y)
                    if accum > 1:
                        loss = loss / accum
                loss.backward()
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        value = None
        if check:
            value = all_reduce_sum(loss_sum, self.info).item() / self.info.world
            if not math.isfinite(value):
                return value  # no update from a non-finite gradient
        if self.transform is not None:
            self.transform(self.step)
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        for opt in self.optimizers:
            opt.step()
        for sched in self.schedulers:
            sched.step()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += self.task.tokens_per_step
        return value

    def lrs(self) -> dict[str, float]:
        out = {"lr": self.optimizers[0].param_groups[0]["lr"]}
        if len(self.optimizers) > 1:
            out["lr_adamw"] = self.optimizers[-1].param_groups[0]["lr"]
        return out

    def evaluate(self) -> dict[str, float]:
        row = {"step": self.step, "tokens": self.tokens, **self.task.evaluate(self.model, self.autocast)}
        self.log.log(**row)
        return row

    # ------------------------------------------------------------ the loop
    def fit(self) -> Path:
        cfg, main = self.cfg, self.info.is_main
        if self.step == 0:
            self.evaluate()
        if main:
            self.log.flush(status="running")
        from tqdm import tqdm

        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", file=sys.stderr, dynamic_ncols=True,
                   disable=not (main and cfg.progress and sys.stderr.isatty()))
        steps_this_call = 0
        while self.step < self.total_steps:
            if cfg.max_steps_per_call and steps_this_call >= cfg.max_steps_per_call:
                self.checkpoint()
                self.finish("incomplete")
                bar.close()
                return cfg.out_path
            last = self.step + 1 == self.total_steps
            check = (self.step + 1) % cfg.log_every == 0 or last or self._checkpoint_due(self.step + 1)
            lr = self.lrs()
            t0 = time.perf_counter()
            loss = self.train_step(check)
            seconds = time.perf_counter() - t0
            steps_this_call += 1
            if loss is not None:
                if not math.isfinite(loss):
                    bar.close()
                    self.nonfinite(loss)
                clips = {k: v for o in (self.transform, *self.optimizers) if hasattr(o, "stats")  # clip rates
                         for k, v in o.stats().items()}
                self.log.log(step=self.step, tokens=self.tokens, train_loss=loss, **lr, step_time=seconds, **clips)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.update()
            if self._eval_due() or last:
                row = self.evaluate()
                if main:
                    self.log.flush(status="running")
                if not bar.disable:
                    bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                               if k.endswith("_loss")))
            if self._checkpoint_due(self.step):
                self.checkpoint()
        bar.close()
        if (cfg.checkpoint_every or cfg.max_steps_per_call) and self._saved_step != self.step:
            self.checkpoint()
        self.finish("completed")
        return cfg.out_path

    def _eval_due(self) -> bool:
        every = self.cfg.eval_every
        return every > 0 and self.tokens // every > (self.tokens - self.task.tokens_per_step) // every

    def _checkpoint_due(self, step: int) -> bool:
        return self.cfg.checkpoint_every > 0 and step % self.cfg.checkpoint_every == 0

    def finish(self, status: str, **extra) -> None:
        if self.info.is_main:
            self.log.close(status=status, steps_done=self.step, tokens_done=self.tokens, **extra)

    def nonfinite(self, loss: float) -> None:
        self.log.log(step=self.step + 1, tokens=self.tokens + self.task.tokens_per_step, train_loss=loss)
        msg = (f"loss became {loss} at step {self.step + 1}; stopped. The last good checkpoint (if any) is "
               f"{self.cfg.checkpoint_path}; lower the learning rate or enable grad_clip")
        self.finish("nonfinite", error=msg)
        raise NonFiniteLoss(msg)

    # ------------------------------------------------------------ checkpoints
    def checkpoint(self) -> None:
        finite = torch.stack([p.detach().float().abs().max() for p in self.model.parameters()]).isfinite().all()
        if not bool(finite):  # a finite loss with a non-finite gradient: never save the broken weights
            self.nonfinite(float("nan"))
        self._saved_step = self.step
        for opt in self.optimizers:  # collective: a sharded matrix's state lives on its owner rank only
            gather_state(opt)
        if self.info.is_main:
            payload = {
                "config": to_dict(self.cfg), "step": self.step, "tokens": self.tokens,
                "model": self.model.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "sampler": self.task.state_dict(), "rng": rng_state(),
                "transform": self.transform.state_dict() if hasattr(self.transform, "state_dict") else None,
                "log_meta": self.log.meta, "log_rows": self.log.rows,
            }
            save_checkpoint(self.cfg.checkpoint_path, payload)
            self.log.flush(status="running", last_checkpoint_step=self.step)
        barrier(self.info)

    def restore(self, ckpt: dict) -> None:
        # a key added to TrainConfig after the checkpoint was written takes its default (e.g. ``classes``)
        saved, now = {**to_dict(TrainConfig()), **ckpt["config"]}, to_dict(self.cfg)
        differ = [k for k in now if k not in RUN_CONTROL_FIELDS and saved.get(k) != now[k]]
        if differ:
            raise ConfigError(f"--resume: the checkpoint {self.cfg.checkpoint_path} was made with different "
                              f"{', '.join(differ)}; use the same config or start fresh without --resume")
        self.model.load_state_dict(ckpt["model"])
        for obj, state in zip(self.optimizers + self.schedulers, ckpt["optimizers"] + ckpt["schedulers"]):
            obj.load_state_dict(state)
        self.task.load_state_dict(ckpt["sampler"])
        if self.transform is not None and ckpt["transform"] is not None:
            self.transform.load_state_dict(ckpt["transform"])
        set_rng_state(ckpt["rng"])
        if self.info.rank > 0:
            torch.manual_seed(self.cfg.seed + 1000 * self.info.rank + 1 + ckpt["step"])
        self.step, self.tokens = ckpt["step"], ckpt["tokens"]
        resumed = list(ckpt["log_meta"].get("resumed", [])) + [{"step": self.step, "time": now_iso()}]
        self.log = RunLog(self.cfg.out_path, {**ckpt["log_meta"], "resumed": resumed}, ckpt["log_rows"])
