"""ShrinkAdamW step time ÷ the faster of torch.optim.AdamW(foreach=True) and (foreach=False),
on parameters shaped like GPT-2 124M blocks (goal ≤ 1.25). ``extra`` gives every step
in units of one fp32 copy of all parameters (``torch._foreach_copy_``), each ψ's ratio,
and torch's fused AdamW (the kernel ShrinkAdamW runs its moment update on)."""

from __future__ import annotations

import torch

from geomopt.benchmark import Measurement, gpt2_block_shapes, optimizer_on_random_grads, versus_torch_adamw
from geomopt.optim.shrink_adamw import ShrinkAdamW

NAME = "shrink_adamw_step"
DESCRIPTION = "ShrinkAdamW (smooth ψ, pre-clip) step / fastest torch AdamW step, GPT-2-block shapes"


def bench(quick: bool) -> Measurement:
    torch.set_num_threads(1)
    shapes = gpt2_block_shapes(1 if quick else 3, d=384 if quick else 768)
    hp = dict(lr=1e-4, weight_decay=0.1)

    def make(opt_cls, **kw):  # 12 warm steps: past ShrinkAdamW's warm-up, so the shrink runs in the timed steps
        return optimizer_on_random_grads(opt_cls, shapes, warm_steps=12, grad_scale=1e-2, **kw)

    cands = {"adamw_fused": make(torch.optim.AdamW, fused=True, **hp)}
    for psi in ("smooth", "hard", "soft", "redescend"):
        cands[f"shrink_{psi}"] = make(ShrinkAdamW, psi=psi, t=3.0, **hp)
    cands["shrink_smooth_post"] = make(ShrinkAdamW, psi="smooth", position="post", **hp)
    v = versus_torch_adamw(make, cands, reps=5 if quick else 15, **hp)
    return Measurement(
        numerator={"what": "ShrinkAdamW(psi=smooth) step", "seconds": v.seconds["shrink_smooth"]},
        denominator={"what": f"torch.optim.AdamW step ({v.baseline})", "seconds": v.seconds[v.baseline]},
        ratio=v.ratio("shrink_smooth"),
        goal="<= 1.25",
        extra={"n_params": v.n_params, "threads": 1,
               "ratio_per_psi": {k: v.ratio(k) for k in cands if k.startswith("shrink_")},
               "seconds": v.seconds, "in_param_copies": v.in_param_copies()},
    )


if __name__ == "__main__":
    m = bench(quick=False)
    print(m)
