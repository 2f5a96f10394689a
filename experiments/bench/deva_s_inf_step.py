"""DeVA-S∞ ÷ SOAP (and ÷ torch.optim.Muon) at equal precision, on the hidden matrices of a
GPT-2 block (d = 256; quick: d = 128): both keep fp32 eigenbases and projections; DeVA-S∞'s
direction is Muon's bf16 Newton–Schulz, as torch.optim.Muon's. Reported apart: the *plain* step
(no eigenbasis refresh), the *refresh* step (every step refreshes: one power step + QR per side)
and the *amortized* step of the default period k = 10, (9·plain + refresh)/10.
Goal: DeVA-S∞ amortized ≤ 1.1× SOAP amortized. Method: ``geomopt.benchmark``.
"""

from __future__ import annotations

import torch

from geomopt.benchmark import (Measurement, across_processes, bench_device, gpt2_block_shapes, median_ratios, median_seconds,
                               optimizer_on_random_grads, sync_for, time_interleaved)
from geomopt.optim.deva import DevaSinf
from geomopt.optim.soap import SOAP

NAME = "deva_s_inf_step"
DESCRIPTION = "DeVA-S∞ step / SOAP step (plain, refresh, amortized over 10) and / torch.optim.Muon step"
PERIOD = 10
NEVER = 10 ** 9
LABELS = {"torch_muon": "torch.optim.Muon", "soap_plain": "SOAP plain step", "soap_refresh": "SOAP refresh step",
          "soap_amortized": "SOAP step (k = 10)", "deva_plain": "DeVA-S∞ plain step",
          "deva_refresh": "DeVA-S∞ refresh step", "deva_amortized": "DeVA-S∞ step (k = 10)"}


def measure(quick: bool) -> dict:
    device = bench_device()
    shapes = gpt2_block_shapes(1, 128 if quick else 256, vectors=False)
    common = dict(lr=1e-3, weight_decay=0.0)

    def make(opt_cls, **kw):
        return optimizer_on_random_grads(opt_cls, shapes, device=device, warm_steps=2, **common, **kw)[0].step

    fns = {"torch_muon": make(torch.optim.Muon, momentum=0.95),
           "soap_plain": make(SOAP, precondition_frequency=NEVER), "soap_refresh": make(SOAP, precondition_frequency=1),
           "deva_plain": make(DevaSinf, precondition_frequency=NEVER),
           "deva_refresh": make(DevaSinf, precondition_frequency=1)}
    s = time_interleaved(fns, reps=10, warmup=1, sync=sync_for(device), stat=min)
    for name in ("soap", "deva"):
        s[f"{name}_amortized"] = ((PERIOD - 1) * s[f"{name}_plain"] + s[f"{name}_refresh"]) / PERIOD
    return {"seconds": s, "device": device, "shapes": shapes}


def bench(quick: bool) -> Measurement:
    runs = across_processes(__file__, quick)
    pairs = {"deva_plain": "soap_plain", "deva_refresh": "soap_refresh", "deva_amortized": "soap_amortized"}
    ratios = median_ratios(runs, pairs)
    versus_muon = median_ratios(runs, {k: "torch_muon" for k in (*pairs, *pairs.values())})
    for t in ratios:
        ratios[t].update({f"{k}_vs_muon": v for k, v in versus_muon[t].items()})
    labels = {**LABELS, **{f"{k}_vs_muon": LABELS[k] for k in (*pairs, *pairs.values())}}
    return Measurement(
        numerator={"what": LABELS["deva_amortized"], "seconds": ratios["1"]["deva_amortized"]["seconds"]},
        denominator={"what": LABELS["soap_amortized"], "seconds": median_seconds(runs, "1", "soap_amortized")},
        ratio=ratios["1"]["deva_amortized"]["ratio"], goal="<= 1.1",
        extra={"ratios": ratios, "labels": labels, "goals": {"deva_amortized": "≤ 1.1"}, "period": PERIOD,
               "shapes": runs["1"][0]["shapes"], "device": runs["1"][0]["device"], "processes": len(runs["1"]),
               "note": "per process: min of interleaved steps; ratio: median over processes; equal precision "
                       "(fp32 projections in both; DeVA-S∞'s msign in bf16 as torch.optim.Muon's)"})
