"""Elementwise optimizers' steps ÷ torch's fastest AdamW on the device (``fused=True``), on
parameters shaped like a GPT-2 block (d = 768: ≈ 7.1M parameters; quick: d = 256), built with
the registry's default hyperparameters. Lion, signSGD, DeVA-ℓ∞, Stacey(p,2)/(p,p) and ShrinkAdamW
(its main variant) run their compiled step (``fused=True``, ``geomopt.optim.fused``; its compile time
is recorded), each also eagerly for reference. Goal: each compiled step ≤ 1.25× (ShrinkAdamW's
stretch goal 1.05× cannot hold for the main variant: it reads and writes two per-entry
observation tensors more than AdamW, and its step is compute-bound on a CPU: one exp and four
divisions per entry, see geomopt.optim.shrink_adamw).
Method: ``geomopt.benchmark`` (min of interleaved steps per process, median ratio over processes).
"""

from __future__ import annotations

import torch

from geomopt.benchmark import (Measurement, across_processes, bench_device, gpt2_block_shapes, median_ratios, median_seconds,
                               optimizer_on_random_grads, sync_for, time_interleaved)
from geomopt.optim import fused, get_spec

NAME = "elementwise_step"
DESCRIPTION = "elementwise optimizers (compiled step) / torch AdamW(fused=True), GPT-2-block shapes"
FUSED = ("lion", "signsgd", "deva_linf", "stacey_p2", "stacey_pp", "shrink_adamw")
LABELS = {"adamw_fused": "torch AdamW(fused=True)", "adamw_foreach": "torch AdamW(foreach=True)",
          **{n: f"{n} (compiled)" for n in FUSED},
          **{f"{n}_eager": f"{n} (eager)" for n in FUSED}}


def tensor_passes(opt: torch.optim.Optimizer) -> int:
    """Parameter-sized tensors a step reads or writes at least: the parameter (read + write), its gradient
    (read) and each per-entry state tensor (read + write). torch's AdamW: 3 + 2·2 = 7."""
    p = opt.param_groups[0]["params"][0]
    state = [t for t in opt.state[p].values() if torch.is_tensor(t) and t.shape == p.shape]
    return 3 + 2 * len(state)


def measure(quick: bool) -> dict:
    device = bench_device()
    shapes = gpt2_block_shapes(1, 256 if quick else 768)

    def make(opt_cls, **hp):  # 12 warm steps: compiled, past every warm-up
        return optimizer_on_random_grads(opt_cls, shapes, warm_steps=12, grad_scale=1e-2, device=device, **hp)[0]

    adamw = get_spec("adamw").overrides  # the house settings; torch fills in the rest (fused, foreach below)
    opts = {"adamw_fused": make(torch.optim.AdamW, **{**adamw, "fused": True, "foreach": None}),
            "adamw_foreach": make(torch.optim.AdamW, **{**adamw, "fused": None, "foreach": True})}
    for name in FUSED:
        spec = get_spec(name)
        opts[name] = make(spec.cls(), **{**spec.overrides, "fused": True})  # built as the trainer builds it
        opts[f"{name}_eager"] = make(spec.cls(), **{**spec.overrides, "fused": False})
    seconds = time_interleaved({n: o.step for n, o in opts.items()}, reps=10 if quick else 12, warmup=1,
                               sync=sync_for(device), stat=min)
    return {"seconds": seconds, "compile_seconds": fused.compile_seconds(), "device": device,
            "n_params": sum(torch.Size(s).numel() for s in shapes),
            "tensor_passes": {n: tensor_passes(o) for n, o in opts.items()}}


def bench(quick: bool) -> Measurement:
    runs = across_processes(__file__, quick)
    names = ["adamw_foreach", *FUSED, *(f"{n}_eager" for n in FUSED)]
    ratios = median_ratios(runs, {n: "adamw_fused" for n in names})
    worst = max(FUSED, key=lambda n: ratios["1"][n]["ratio"])
    first = runs["1"][0]
    return Measurement(
        numerator={"what": f"{worst} compiled step (the slowest of {', '.join(FUSED)})",
                   "seconds": ratios["1"][worst]["seconds"]},
        denominator={"what": "torch.optim.AdamW(fused=True) step", "seconds": median_seconds(runs, "1", "adamw_fused")},
        ratio=ratios["1"][worst]["ratio"], goal="<= 1.25",
        extra={"ratios": ratios, "labels": LABELS, "goals": {n: "≤ 1.25" for n in FUSED},
               "n_params": first["n_params"], "device": first["device"], "processes": len(runs["1"]),
               # the ratio a step moving this many parameter-sized tensors would take at AdamW's bandwidth: below it,
               # no kernel goes (ShrinkAdamW's main variant moves its observation mass and count too)
               "floors": {n: first["tensor_passes"][n] / first["tensor_passes"]["adamw_fused"] for n in names},
               "compile_seconds": {t: [p["compile_seconds"] for p in procs] for t, procs in runs.items()},
               "note": "per process: min of interleaved steps; ratio: median over processes"})
