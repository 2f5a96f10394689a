"""Learning-rate schedules: one multiplier per step, applied as LambdaLR on every optimizer.

``lr_multiplier`` is a pure function of the step: linear warm-up over ``warmup`` steps
(nanoGPT), then ``constant``, ``cosine`` (to ``final`` at the last step) or
``warmdown`` (constant, then linear to ``final`` over the last ``warmdown_frac`` of the
run, as in modded-nanogpt).

``shared_steps`` counts the leading steps on which two runs of different lengths get the
same multiplier, bit for bit: under ``warmdown`` (warm-up, stable, decay) that is the
shorter run's decay start, the step where it can branch off the longer run
(geomopt.train.budget).
"""

from __future__ import annotations

import math

import torch


def lr_multiplier(step: int, total: int, warmup: int = 0, shape: str = "cosine",
                  warmdown_frac: float = 0.2, final: float = 0.0) -> float:
    """Multiplier on the base lr used for optimizer step ``step`` (0-based) of ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if shape == "constant":
        return 1.0
    if shape == "cosine":
        span = max(total - 1 - warmup, 1)
        progress = min((step - warmup) / span, 1.0)
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
    if shape == "warmdown":
        start = total - round(warmdown_frac * total)
        if step < start:
            return 1.0
        progress = min((step - start + 1) / max(total - start, 1), 1.0)
        return 1.0 + (final - 1.0) * progress
    raise ValueError(f"schedule {shape!r} unknown; choose constant, cosine or warmdown")


def shared_steps(total_long: int, total_short: int, warmup: int = 0, shape: str = "cosine",
                 warmdown_frac: float = 0.2, final: float = 0.0) -> int:
    """Number of leading steps ``s < total_short`` with equal multipliers for runs of
    ``total_long`` and ``total_short`` steps (exact float equality: a branch is bit-exact)."""
    for step in range(min(total_long, total_short)):
        if (lr_multiplier(step, total_long, warmup, shape, warmdown_frac, final)
                != lr_multiplier(step, total_short, warmup, shape, warmdown_frac, final)):
            return step
    return min(total_long, total_short)


def make_schedulers(optimizers: list[torch.optim.Optimizer], total: int, warmup: int, shape: str,
                    warmdown_frac: float, final: float) -> list[torch.optim.lr_scheduler.LambdaLR]:
    def multiplier(step: int) -> float:  # a plain function: LambdaLR's state_dict then skips it
        return lr_multiplier(step, total, warmup, shape, warmdown_frac, final)

    return [torch.optim.lr_scheduler.LambdaLR(opt, multiplier) for opt in optimizers]
