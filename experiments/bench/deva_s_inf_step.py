"""DeVA-S∞ ÷ SOAP (and ÷ torch.optim.Muon) at equal precision, on the hidden matrices of a
GPT-2 block (d = 256; quick: d = 128): both with fp32 projections (equal precision), both with
bf16 projections (``projection_dtype``), and DeVA-S∞ with bf16 projections against fp32 SOAP;
DeVA-S∞'s direction is Muon's bf16 Newton–Schulz, as torch.optim.Muon's. Reported apart: the *plain* step
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
KINDS = {"plain": "plain step", "refresh": "refresh step", "amortized": "step (k = 10)"}
LABELS = {"torch_muon": "torch.optim.Muon",
          **{f"{n}{sfx}_{k}": f"{lab}{tag} {v}" for n, lab in (("soap", "SOAP"), ("deva", "DeVA-S∞"))
             for sfx, tag in (("", ""), ("_bf16", " (bf16 proj.)")) for k, v in KINDS.items()}}


def measure(quick: bool) -> dict:
    device = bench_device()
    shapes = gpt2_block_shapes(1, 128 if quick else 256, vectors=False)
    common = dict(lr=1e-3, weight_decay=0.0)

    def make(opt_cls, projection_dtype=None, **kw):
        opt, params = optimizer_on_random_grads(opt_cls, shapes, device=device, warm_steps=0, **common, **kw)
        for group in opt.param_groups:  # a param-group key for DevaSinf (see soap.PROJECTION_DTYPES)
            group["projection_dtype"] = projection_dtype
        opt.step()
        opt.step()
        return opt.step

    fns = {"torch_muon": make(torch.optim.Muon, momentum=0.95)}
    for name, cls in (("soap", SOAP), ("deva", DevaSinf)):
        for suffix, dtype in (("", None), ("_bf16", "bf16")):
            for kind, k in (("plain", NEVER), ("refresh", 1)):
                fns[f"{name}{suffix}_{kind}"] = make(cls, precondition_frequency=k, projection_dtype=dtype)
    s = time_interleaved(fns, reps=10, warmup=1, sync=sync_for(device), stat=min)
    for name in ("soap", "soap_bf16", "deva", "deva_bf16"):
        s[f"{name}_amortized"] = ((PERIOD - 1) * s[f"{name}_plain"] + s[f"{name}_refresh"]) / PERIOD
    return {"seconds": s, "device": device, "shapes": shapes}


def bench(quick: bool) -> Measurement:
    runs = across_processes(__file__, quick)
    pairs = {f"deva{sfx}_{k}": f"soap{sfx}_{k}" for sfx in ("", "_bf16") for k in KINDS}  # equal precision
    pairs.update({f"deva_bf16_{k}_vs_soap32": f"soap_{k}" for k in KINDS})  # bf16 DeVA vs fp32 SOAP
    ratios = median_ratios({t: [{"seconds": {**p["seconds"], **{f"deva_bf16_{k}_vs_soap32": p["seconds"][f"deva_bf16_{k}"]
                                                                for k in KINDS}}} for p in procs]
                            for t, procs in runs.items()}, pairs)
    everything = [n for n in LABELS if n != "torch_muon"]
    versus_muon = median_ratios(runs, {k: "torch_muon" for k in everything})
    for t in ratios:
        ratios[t].update({f"{k}_vs_muon": v for k, v in versus_muon[t].items()})
    labels = {**LABELS, **{f"{k}_vs_muon": LABELS[k] for k in everything},
              **{f"deva_bf16_{k}_vs_soap32": LABELS[f"deva_bf16_{k}"] for k in KINDS}}
    return Measurement(
        numerator={"what": LABELS["deva_amortized"], "seconds": ratios["1"]["deva_amortized"]["seconds"]},
        denominator={"what": LABELS["soap_amortized"], "seconds": median_seconds(runs, "1", "soap_amortized")},
        ratio=ratios["1"]["deva_amortized"]["ratio"], goal="<= 1.1",
        extra={"ratios": ratios, "labels": labels, "period": PERIOD,
               "goals": {"deva_amortized": "≤ 1.1", "deva_bf16_amortized_vs_soap32": "≤ 1.1"},
               "shapes": runs["1"][0]["shapes"], "device": runs["1"][0]["device"], "processes": len(runs["1"]),
               "note": "per process: min of interleaved steps; ratio: median over processes; equal precision "
                       "(fp32 projections in both; DeVA-S∞'s msign in bf16 as torch.optim.Muon's)"})
