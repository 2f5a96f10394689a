"""Muon-family steps ÷ ``torch.optim.Muon`` on the hidden matrices of a GPT-2 block (d = 512;
quick: d = 192): our Muon (conv-filter views over torch's functional step) and clip-then-Muon
(hard clip, row × column scale, before the momentum; goal ≤ 1.05), its shrink compiled
(``fused=True``, ``geomopt.optim.fused``; the compile time is recorded) and eager for reference.
Method: ``geomopt.benchmark``.
"""

from __future__ import annotations

import torch

from geomopt.benchmark import (Measurement, across_processes, bench_device, gpt2_block_shapes, median_ratios, median_seconds,
                               optimizer_on_random_grads, sync_for, time_interleaved)
from geomopt.optim import fused, get_spec
from geomopt.optim.clip_muon import ClipMuon
from geomopt.optim.muon import Muon

NAME = "muon_step"
DESCRIPTION = "Muon-family steps / torch.optim.Muon step, GPT-2-block hidden matrices"
LABELS = {"torch_muon": "torch.optim.Muon", "muon": "Muon (geomopt)",
          "clip_muon": "clip-then-Muon (hard, row×column scale, grad; compiled clip)",
          "clip_muon_eager": "clip-then-Muon (eager clip)"}


def measure(quick: bool) -> dict:
    device = bench_device()
    shapes = gpt2_block_shapes(1, 192 if quick else 512, vectors=False)
    hp = get_spec("muon").overrides  # built as the trainer builds it: the class fills in the rest

    def make(opt_cls, **kw):
        return optimizer_on_random_grads(opt_cls, shapes, device=device, **kw)[0].step

    clip = get_spec("clip_muon").overrides
    fns = {"torch_muon": make(torch.optim.Muon, **hp), "muon": make(Muon, **hp),
           "clip_muon": make(ClipMuon, **{**clip, "fused": True}), "clip_muon_eager": make(ClipMuon, **{**clip, "fused": False})}
    return {"seconds": time_interleaved(fns, reps=10, warmup=1, sync=sync_for(device), stat=min), "device": device,
            "compile_seconds": fused.compile_seconds(), "n_params": sum(torch.Size(s).numel() for s in shapes)}


def bench(quick: bool) -> Measurement:
    runs = across_processes(__file__, quick)
    ratios = median_ratios(runs, {"muon": "torch_muon", "clip_muon": "torch_muon", "clip_muon_eager": "torch_muon"})
    return Measurement(
        numerator={"what": LABELS["clip_muon"], "seconds": ratios["1"]["clip_muon"]["seconds"]},
        denominator={"what": "torch.optim.Muon step", "seconds": median_seconds(runs, "1", "torch_muon")},
        ratio=ratios["1"]["clip_muon"]["ratio"], goal="<= 1.05",
        extra={"ratios": ratios, "labels": LABELS, "goals": {"clip_muon": "≤ 1.05", "muon": "≈ 1"},
               "n_params": runs["1"][0]["n_params"], "device": runs["1"][0]["device"],
               "processes": len(runs["1"]), "note": "per process: min of interleaved steps; ratio: median over processes",
               "compile_seconds": {t: [p["compile_seconds"] for p in procs] for t, procs in runs.items()}})
