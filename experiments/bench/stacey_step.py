"""Stacey(p,2) step time ÷ the faster of torch.optim.AdamW(foreach=True) and (foreach=False), on
parameters shaped like GPT-2 124M blocks (goal ≤ 1.3). Stacey runs its default path (on CPU the
per-tensor path with one reused scratch buffer, as torch defaults to its for-loop on CPU).
``extra``: Stacey(p,p), p = 3 (the code's default: the fractional power of c is a square root) and
p = 4 (general powers), Stacey's ``_foreach_`` path, Lion, and every step in units of one fp32 copy
of all parameters."""

from __future__ import annotations

import torch

from geomopt.benchmark import Measurement, gpt2_block_shapes, optimizer_on_random_grads, time_interleaved
from geomopt.optim.lion import Lion
from geomopt.optim.stacey import StaceyP2, StaceyPP

NAME = "stacey_step"
DESCRIPTION = "Stacey(p=3,2) step / fastest torch AdamW step, GPT-2-block shapes"


def make(opt_cls, shapes, **hp):
    return optimizer_on_random_grads(opt_cls, shapes, grad_scale=1e-2, **hp)


def bench(quick: bool) -> Measurement:
    torch.set_num_threads(1)
    shapes = gpt2_block_shapes(1 if quick else 3, d=384 if quick else 768)
    reps = 5 if quick else 15
    hp = dict(lr=1e-3, weight_decay=0.1)
    cands = {
        "adamw_foreach": make(torch.optim.AdamW, shapes, foreach=True, **hp),
        "adamw_forloop": make(torch.optim.AdamW, shapes, foreach=False, **hp),
        "stacey_p2": make(StaceyP2, shapes, p=3.0, **hp),
        "stacey_pp": make(StaceyPP, shapes, p=3.0, **hp),
        "stacey_p2_p4": make(StaceyP2, shapes, p=4.0, **hp),
        "stacey_pp_p4": make(StaceyPP, shapes, p=4.0, **hp),
        "stacey_p2_foreach": make(StaceyP2, shapes, p=3.0, foreach=True, **hp),
        "lion": make(Lion, shapes, **hp),
    }
    params = cands["adamw_foreach"][1]
    dst = [torch.empty_like(p) for p in params]
    fns = {k: opt.step for k, (opt, _) in cands.items()}
    fns["copy"] = lambda: torch._foreach_copy_(dst, params)
    t = time_interleaved(fns, reps=reps)
    base_name = min(("adamw_foreach", "adamw_forloop"), key=t.__getitem__)
    return Measurement(
        numerator={"what": "Stacey(p=3, 2) step", "seconds": t["stacey_p2"]},
        denominator={"what": f"torch.optim.AdamW step ({base_name})", "seconds": t[base_name]},
        ratio=t["stacey_p2"] / t[base_name],
        goal="<= 1.3",
        extra={"n_params": sum(p.numel() for p in params), "threads": torch.get_num_threads(),
               "device": "cpu",
               "ratio_per_variant": {k: t[k] / t[base_name] for k in fns if k not in ("copy", base_name)},
               "seconds": t, "in_param_copies": {k: t[k] / t["copy"] for k in fns if k != "copy"}},
    )


if __name__ == "__main__":
    print(bench(quick=False))
