"""ShrinkAdamW step time ÷ the faster of torch.optim.AdamW(foreach=True) and (foreach=False),
on parameters shaped like GPT-2 124M blocks (goal ≤ 1.25). ``extra`` gives every step
in units of one fp32 copy of all parameters (``torch._foreach_copy_``), each ψ's ratio,
and torch's fused AdamW (the kernel ShrinkAdamW runs its moment update on)."""

from __future__ import annotations

import torch

from geomopt.benchmark import Measurement, gpt2_block_shapes, optimizer_on_random_grads, time_interleaved
from geomopt.optim.shrink_adamw import ShrinkAdamW

NAME = "shrink_adamw_step"
DESCRIPTION = "ShrinkAdamW (smooth ψ, pre-clip) step / fastest torch AdamW step, GPT-2-block shapes"


def make(opt_cls, shapes, **hp):
    # 12 warm steps: past ShrinkAdamW's warm-up, so the shrink runs in the timed steps
    return optimizer_on_random_grads(opt_cls, shapes, warm_steps=12, grad_scale=1e-2, **hp)


def bench(quick: bool) -> Measurement:
    torch.set_num_threads(1)
    shapes = gpt2_block_shapes(1 if quick else 3, d=384 if quick else 768)
    reps = 5 if quick else 15
    hp = dict(lr=1e-4, weight_decay=0.1)
    cands = {
        "adamw_foreach": make(torch.optim.AdamW, shapes, foreach=True, **hp),
        "adamw_forloop": make(torch.optim.AdamW, shapes, foreach=False, **hp),
        "adamw_fused": make(torch.optim.AdamW, shapes, fused=True, **hp),
    }
    for psi in ("smooth", "hard", "soft", "redescend"):
        cands[f"shrink_{psi}"] = make(ShrinkAdamW, shapes, psi=psi, t=3.0, **hp)
    cands["shrink_smooth_post"] = make(ShrinkAdamW, shapes, psi="smooth", position="post", **hp)
    params = cands["adamw_foreach"][1]
    dst = [torch.empty_like(p) for p in params]
    fns = {k: opt.step for k, (opt, _) in cands.items()}
    fns["copy"] = lambda: torch._foreach_copy_(dst, params)
    t = time_interleaved(fns, reps=reps)
    base_name = min(("adamw_foreach", "adamw_forloop"), key=t.__getitem__)
    n_params = sum(p.numel() for p in params)
    return Measurement(
        numerator={"what": "ShrinkAdamW(psi=smooth) step", "seconds": t["shrink_smooth"]},
        denominator={"what": f"torch.optim.AdamW step ({base_name})", "seconds": t[base_name]},
        ratio=t["shrink_smooth"] / t[base_name],
        goal="<= 1.25",
        extra={"n_params": n_params, "threads": 1,
               "ratio_per_psi": {k: t[k] / t[base_name] for k in fns if k.startswith("shrink_")},
               "seconds": t,
               "in_param_copies": {k: t[k] / t["copy"] for k in fns if k != "copy"}},
    )


if __name__ == "__main__":
    m = bench(quick=False)
    print(m)
