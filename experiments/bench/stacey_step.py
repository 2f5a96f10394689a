"""Stacey(p,2) step time ÷ the faster of torch.optim.AdamW(foreach=True) and (foreach=False), on
parameters shaped like GPT-2 124M blocks (goal ≤ 1.3). Stacey runs its default path (on CPU the
per-tensor path with one reused scratch buffer, as torch defaults to its for-loop on CPU).
``extra``: Stacey(p,p), p = 3 (the code's default: the fractional power of c is a square root) and
p = 4 (general powers), Stacey's ``_foreach_`` path, Lion, and every step in units of one fp32 copy
of all parameters."""

from __future__ import annotations

import torch

from geomopt.benchmark import Measurement, gpt2_block_shapes, optimizer_on_random_grads, versus_torch_adamw
from geomopt.optim.lion import Lion
from geomopt.optim.stacey import StaceyP2, StaceyPP

NAME = "stacey_step"
DESCRIPTION = "Stacey(p=3,2) step / fastest torch AdamW step, GPT-2-block shapes"


def bench(quick: bool) -> Measurement:
    torch.set_num_threads(1)
    shapes = gpt2_block_shapes(1 if quick else 3, d=384 if quick else 768)
    hp = dict(lr=1e-3, weight_decay=0.1)

    def make(opt_cls, **kw):
        return optimizer_on_random_grads(opt_cls, shapes, grad_scale=1e-2, **kw)

    cands = {
        "stacey_p2": make(StaceyP2, p=3.0, **hp),
        "stacey_pp": make(StaceyPP, p=3.0, **hp),
        "stacey_p2_p4": make(StaceyP2, p=4.0, **hp),
        "stacey_pp_p4": make(StaceyPP, p=4.0, **hp),
        "stacey_p2_foreach": make(StaceyP2, p=3.0, foreach=True, **hp),
        "lion": make(Lion, **hp),
    }
    v = versus_torch_adamw(make, cands, reps=5 if quick else 15, **hp)
    return Measurement(
        numerator={"what": "Stacey(p=3, 2) step", "seconds": v.seconds["stacey_p2"]},
        denominator={"what": f"torch.optim.AdamW step ({v.baseline})", "seconds": v.seconds[v.baseline]},
        ratio=v.ratio("stacey_p2"),
        goal="<= 1.3",
        extra={"n_params": v.n_params, "threads": torch.get_num_threads(), "device": "cpu",
               "ratio_per_variant": {k: v.ratio(k) for k in v.seconds if k not in ("copy", v.baseline)},
               "seconds": v.seconds, "in_param_copies": v.in_param_copies()},
    )


if __name__ == "__main__":
    print(bench(quick=False))
