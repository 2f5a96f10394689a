"""ClipMuon step time ÷ torch.optim.Muon step on GPT-2-block hidden matrices (goal ≤ 1.10).
``extra``: each variant (scale rms/mad, position grad/momentum) and every step in units of
one fp32 copy of all parameters (``torch._foreach_copy_``)."""

from __future__ import annotations

import torch

from geomopt.benchmark import Measurement, gpt2_block_shapes, optimizer_on_random_grads, time_interleaved
from geomopt.optim.clip_muon import ClipMuon

NAME = "clip_muon_step"
DESCRIPTION = "ClipMuon (hard clip, MAD scale, before momentum) step / torch.optim.Muon step"


def make(opt_cls, shapes, **hp):
    return optimizer_on_random_grads(opt_cls, shapes, **hp)


def bench(quick: bool) -> Measurement:
    torch.set_num_threads(1)
    shapes = gpt2_block_shapes(1, 256 if quick else 768, vectors=False)
    reps = 3 if quick else 7
    hp = dict(lr=0.02, momentum=0.95, weight_decay=0.0)
    cands = {"muon": make(torch.optim.Muon, shapes, **hp),
             "clip_mad_grad": make(ClipMuon, shapes, scale="mad", **hp),
             "clip_rms_grad": make(ClipMuon, shapes, scale="rms", **hp),
             "clip_mad_momentum": make(ClipMuon, shapes, scale="mad", position="momentum", **hp),
             "smooth_mad_grad": make(ClipMuon, shapes, psi="smooth", scale="mad", **hp)}
    params = cands["muon"][1]
    dst = [torch.empty_like(p) for p in params]
    fns = {k: opt.step for k, (opt, _) in cands.items()}
    fns["copy"] = lambda: torch._foreach_copy_(dst, params)
    t = time_interleaved(fns, reps=reps, warmup=1)
    return Measurement(
        numerator={"what": "ClipMuon(hard, t=3, mad, grad) step", "seconds": t["clip_mad_grad"]},
        denominator={"what": "torch.optim.Muon step", "seconds": t["muon"]},
        ratio=t["clip_mad_grad"] / t["muon"],
        goal="<= 1.10",
        extra={"threads": 1, "n_params": sum(p.numel() for p in params),
               "ratio_per_variant": {k: t[k] / t["muon"] for k in fns if k not in ("muon", "copy")},
               "seconds": t, "in_param_copies": {k: t[k] / t["copy"] for k in fns if k != "copy"}},
    )


if __name__ == "__main__":
    print(bench(quick=False))
