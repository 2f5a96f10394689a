"""ShrinkAdamW's four properties on synthetic gradient streams (issue 13), for every ψ, t and moment variant.

    python experiments/paper1/shrink_properties.py           # -> results/paper1/shrink_properties.json (~2 min)
    python experiments/paper1/shrink_properties.py --quick   # fewer entries -> results/quick/paper1/

Each stream feeds one parameter of ``entries`` independent entries, β = (0.9, 0.99); the gradient
does not depend on θ, so (a) and (b) run at lr = 0 (only the moments move) and (c), (d) at lr > 0.

(a) iid    g ~ N(0, 1): √(mean v̂) within 5% of 1 at every step from 3/(1−β₂) on.
(b) jump   g ~ N(0, 1), then N(0, 10²) from step 3/(1−β₂): √(mean v̂) ≥ 9 within 3/(1−β₂) steps.
(c) rare   each entry active with probability 2% a step (g ~ N(1, 0.5²), else 0): mean |Δθ| ≥ ½ AdamW's.
(d) cauchy g = μ + n, n ~ 0.95·N(0, 1) + 0.05·Cauchy(0, 1), μ = 0.1: progress −mean Δθ ≥ AdamW's, all finite.

AdamW is ``torch.optim.AdamW`` with the same betas, eps and weight decay, on the same stream.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import torch

from geomopt.optim.shrink import PSI_NAMES
from geomopt.optim.shrink_adamw import ShrinkAdamW
from geomopt.results import REPO_ROOT, run_meta, write_json

BETAS = (0.9, 0.99)
HORIZON = round(3 / (1 - BETAS[1]))  # 3/(1−β₂) = 300 steps
VARIANTS = {  # name -> ShrinkAdamW moment options
    "main": {"second_moment": "winsor", "warmup": "entry"},
    "spec_2_6": {"second_moment": "shrunk", "warmup": "global"},  # the §2.6 reconstruction
    "raw_v": {"second_moment": "raw", "warmup": "entry"},
    "winsor_global_warmup": {"second_moment": "winsor", "warmup": "global"},
}
THRESHOLDS = (2.0, 3.0, 4.0)
PROPERTIES = ("iid", "jump", "rare", "cauchy")


def _make(kind: dict | None, p: torch.Tensor, lr: float) -> torch.optim.Optimizer:
    hp = dict(lr=lr, betas=BETAS, eps=1e-8, weight_decay=0.0)
    return torch.optim.AdamW([p], **hp) if kind is None else ShrinkAdamW([p], **hp, **kind)


def _drive(kind: dict | None, grads, entries: int, lr: float, every_step=None) -> torch.Tensor:
    """Feed ``grads`` (an iterator of tensors) to one parameter; returns θ − θ₀."""
    p = torch.zeros(entries, requires_grad=True)
    opt = _make(kind, p, lr)
    for g in grads:
        p.grad = g
        opt.step()
        if every_step is not None:
            every_step(opt, p)
    return p.detach().clone()


def _rms_sqrt_vhat(opt, p) -> float:
    st = opt.state[p]
    return math.sqrt(float((st["exp_avg_sq"] / (1 - BETAS[1] ** float(st["step"]))).mean()))


def prop_iid(kind: dict, entries: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    trace = []
    _drive(kind, (torch.randn(entries, generator=gen) for _ in range(2 * HORIZON)), entries, 0.0,
           lambda o, p: trace.append(_rms_sqrt_vhat(o, p)))
    worst = max(trace[HORIZON - 1:], key=lambda x: abs(x - 1))
    return {"sqrt_vhat_worst": worst, "sqrt_vhat_end": trace[-1], "pass": abs(worst - 1) <= 0.05}


def prop_jump(kind: dict, entries: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    trace = []
    stream = (torch.randn(entries, generator=gen) * (10.0 if k >= HORIZON else 1.0) for k in range(3 * HORIZON))
    _drive(kind, stream, entries, 0.0, lambda o, p: trace.append(_rms_sqrt_vhat(o, p)))
    after = trace[HORIZON:]
    reached = next((k + 1 for k, x in enumerate(after) if x >= 9.0), None)
    return {"steps_to_90pct": reached, "sqrt_vhat_after_horizon": after[HORIZON - 1],
            "sqrt_vhat_end": after[-1], "pass": reached is not None and reached <= HORIZON}


def _rare_stream(entries: int, seed: int, steps: int):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        active = torch.rand(entries, generator=gen) < 0.02
        yield torch.where(active, 1.0 + 0.5 * torch.randn(entries, generator=gen), 0.0)


def prop_rare(kind: dict, entries: int, seed: int, steps: int = 5 * HORIZON) -> dict:
    ours = _drive(kind, _rare_stream(entries, seed, steps), entries, 1e-3).abs().mean().item()
    adamw = _drive(None, _rare_stream(entries, seed, steps), entries, 1e-3).abs().mean().item()
    return {"moved": ours, "adamw_moved": adamw, "ratio": ours / adamw, "pass": ours >= 0.5 * adamw}


def _cauchy_stream(entries: int, seed: int, steps: int, mu: float = 0.1, eps: float = 0.05, gamma: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        gauss = torch.randn(entries, generator=gen)
        cauchy = gamma * torch.tan(math.pi * (torch.rand(entries, generator=gen) - 0.5))
        yield mu + torch.where(torch.rand(entries, generator=gen) < eps, cauchy, gauss)


def prop_cauchy(kind: dict, entries: int, seed: int, steps: int = 4 * HORIZON) -> dict:
    ours = _drive(kind, _cauchy_stream(entries, seed, steps), entries, 1e-3)
    adamw = _drive(None, _cauchy_stream(entries, seed, steps), entries, 1e-3)
    finite = bool(torch.isfinite(ours).all())
    prog, ref = -ours.mean().item(), -adamw.mean().item()
    return {"progress": prog, "adamw_progress": ref, "ratio": prog / ref, "finite": finite,
            "pass": finite and prog >= ref}


CHECKS = {"iid": prop_iid, "jump": prop_jump, "rare": prop_rare, "cauchy": prop_cauchy}


def measure(kind: dict, entries: int, seed: int = 0) -> dict:
    """The four properties of one ShrinkAdamW configuration (``kind``: its keyword arguments)."""
    return {name: fn(kind, entries, seed) for name, fn in CHECKS.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 entries, main and §2.6 variants only")
    ap.add_argument("--out", type=Path, help="output JSON (default results/paper1/shrink_properties.json)")
    args = ap.parse_args(argv)
    entries = 200 if args.quick else 1000
    variants = {k: VARIANTS[k] for k in (("main", "spec_2_6") if args.quick else VARIANTS)}
    out = args.out or REPO_ROOT / "results" / ("quick/paper1" if args.quick else "paper1") / "shrink_properties.json"
    rows = []
    for (vname, moments), psi, t in itertools.product(variants.items(), PSI_NAMES, THRESHOLDS):
        res = measure({"psi": psi, "t": t, **moments}, entries)
        rows.append({"variant": vname, **moments, "psi": psi, "t": t, **res,
                     "all_pass": all(r["pass"] for r in res.values())})
        print(f"{vname:22s} {psi:9s} t={t:g}  " + "  ".join(f"{k}:{'PASS' if r['pass'] else 'fail'}"
                                                         for k, r in res.items()), flush=True)
    write_json(out, {"what": " ".join(__doc__.split("\n\n")[2].split()), "betas": BETAS, "horizon": HORIZON,
                     "entries": entries, "properties": list(PROPERTIES), "variants": variants, "rows": rows,
                     "meta": run_meta(seed=0)})
    print(f"shrink_properties: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
