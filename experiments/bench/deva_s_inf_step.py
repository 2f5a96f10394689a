"""DeVA-S∞ step time ÷ torch.optim.Muon step time on GPT-2-124M-shaped hidden matrices (goal ≤ 1.5).

One GPT-2 block's matrices, (3d, d), (d, d), (4d, d), (d, 4d) with d = 768 on CUDA. On CPU (one
thread) full mode uses d = 384 (a 768-wide period takes minutes there), quick mode d = 192.
Each timed call is one full eigenbasis period (10 steps, one of which refreshes Q by a power
step + QR), so the refresh is amortised exactly as in training; both optimizers take the same
number of steps per call. ``extra`` times the variants: Γ in the original basis (no
projections or refresh), only the d-wide sides rotated (max_precond_dim = d), Γ ≡ 1 (Muon at
RMS 0.2 through our code), and SOAP, to say where the time goes. CPU: one thread; on CUDA the calls are synchronised.
"""

from __future__ import annotations

import torch

from geomopt.benchmark import Measurement, gpt2_block_shapes, optimizer_on_random_grads, time_interleaved
from geomopt.optim.deva import DevaSinf
from geomopt.optim.soap import SOAP

NAME = "deva_s_inf_step"
DESCRIPTION = "DeVA-S∞ step (refresh amortised over its 10-step period) / torch.optim.Muon step"
PERIOD = 10


def make(opt_cls, shapes, device, **hp):
    # the first step builds the state (eigendecompositions) before timing
    opt, params = optimizer_on_random_grads(opt_cls, shapes, device=device, **hp)

    def one_period():
        for _ in range(PERIOD):
            opt.step()

    return one_period, params


def bench(quick: bool) -> Measurement:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cpu":
        torch.set_num_threads(1)
    d = 192 if quick else (768 if device == "cuda" else 384)
    shapes = gpt2_block_shapes(1, d, vectors=False)
    common = dict(lr=1e-3, weight_decay=0.0)
    cands = {"muon": make(torch.optim.Muon, shapes, device, momentum=0.95, **common),
             "deva_sinf": make(DevaSinf, shapes, device, precondition_frequency=PERIOD, **common),
             "deva_sinf_noeig": make(DevaSinf, shapes, device, basis="identity", **common),
             # Only the d-wide sides rotated (max_precond_dim = d): the 3d/4d sides' projections dominate.
             "deva_sinf_rotate_d_only": make(DevaSinf, shapes, device, precondition_frequency=PERIOD,
                                             max_precond_dim=d, **common),
             "deva_sinf_gamma1": make(DevaSinf, shapes, device, gain="none", **common),
             "soap": make(SOAP, shapes, device, precondition_frequency=PERIOD, **common)}
    reps = 5 if device == "cuda" else 3
    t = time_interleaved({k: fn for k, (fn, _) in cands.items()}, reps=reps, warmup=1, sync=sync)
    per_step = {k: v / PERIOD for k, v in t.items()}
    return Measurement(
        numerator={"what": "DeVA-S∞ step (eigenbasis, refresh every 10)", "seconds": per_step["deva_sinf"]},
        denominator={"what": "torch.optim.Muon step", "seconds": per_step["muon"]},
        ratio=per_step["deva_sinf"] / per_step["muon"],
        goal="<= 1.5",
        extra={"device": device, "d": d, "reps": reps,
               "threads": torch.get_num_threads() if device == "cpu" else None,
               "shapes": shapes, "period": PERIOD, "seconds_per_step": per_step,
               "ratio_per_variant": {k: v / per_step["muon"] for k, v in per_step.items() if k != "muon"}},
    )


if __name__ == "__main__":
    print(bench(quick=False))
