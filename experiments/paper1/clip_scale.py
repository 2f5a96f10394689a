"""Which scale should clip-then-Muon clip against? Share of entries beyond t·scale on clean gradients
(a Gaussian puts 0.27% beyond 3σ) and, on a Cauchy-contaminated copy, how many clean entries are
clipped (false positives) and how many large outliers are caught, for every scale of
``geomopt.optim.grad_transforms.SCALES`` and a per-entry running scale.

    python experiments/paper1/clip_scale.py            # -> results/paper1/clip_scale.json (~3 min, one thread)
    python experiments/paper1/clip_scale.py --quick    # smoke preset, 30 steps -> results/quick/paper1/

Two sources: (1) synthetic Gaussian matrices whose rows (and columns) have log-normal scales
(σ_log = 1), the structure real gradient matrices have; (2) the hidden-matrix gradients of the
paper-1 char GPT trained with Muon (CPU preset at batch 16, ``steps`` steps), read just before each
Muon step. The contamination is the paper-1 control's (``geomopt.noise.inject``): with probability
ε = 0.02 an entry gets an extra Cauchy(0, γ·RMS(G)) draw, γ = 1; "large" outliers are the draws
with |draw| > 10·(the entry's clean scale), whose clipping matters most.

Per-entry running scale ("entry_ema"): √(EMA of g², β = 0.95, Winsorised at 3× itself) from the
previous steps, the kind of state ShrinkAdamW keeps; on synthetic matrices it is run on 50 draws.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from geomopt.noise.samplers import cauchy
from geomopt.optim.grad_transforms import SCALES, matrix_scale
from geomopt.results import REPO_ROOT, run_meta, write_json
from geomopt.train import protocol

T = 3.0
EPS, GAMMA = 0.02, 1.0
EMA_BETA, EMA_CLIP = 0.95, 3.0
KINDS = (*SCALES, "entry_ema")


def contaminate(g: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(g + draws, draws): the paper-1 control's contamination of one matrix."""
    hit = torch.rand(g.shape, generator=gen) < EPS
    draws = torch.where(hit, cauchy(g.shape, 1.0, gen), 0.0) * (GAMMA * g.square().mean().sqrt())
    return g + draws, draws


class EntryEMA:
    """√(EMA of Winsorised g²) per entry (bias-corrected), updated after each read."""

    def __init__(self):
        self.v, self.k = None, 0

    def scale(self, g: torch.Tensor) -> torch.Tensor | None:
        return None if self.v is None else (self.v / (1 - EMA_BETA**self.k)).sqrt().clamp_min(1e-30)

    def update(self, g: torch.Tensor) -> None:
        s = self.scale(g)
        sq = g.square() if s is None else torch.minimum(g.square(), (EMA_CLIP * s) ** 2)
        self.v = sq * (1 - EMA_BETA) if self.v is None else self.v.mul_(EMA_BETA).add_(sq, alpha=1 - EMA_BETA)
        self.k += 1


def rates(g: torch.Tensor, scale: torch.Tensor, draws: torch.Tensor | None = None,
          true_scale: torch.Tensor | None = None) -> dict:
    """Share of entries beyond T·scale; with ``draws``: false-positive rate on clean entries and the share of
    large draws (> 10× the entry's clean scale ``true_scale``) caught."""
    beyond = g.abs() > T * scale
    out = {"clip_rate": beyond.float().mean().item()}
    if draws is not None:
        clean = draws == 0
        big = draws.abs() > 10 * true_scale
        out["false_positive"] = beyond[clean].float().mean().item()
        out["large_caught"] = beyond[big].float().mean().item() if big.any() else None
    return out


def _mean(rows: list[dict]) -> dict:
    keys = {k for r in rows for k, v in r.items() if v is not None}
    return {k: sum(r[k] for r in rows if r.get(k) is not None) / max(1, sum(r.get(k) is not None for r in rows))
            for k in sorted(keys)}


def synthetic(seed: int = 0, shape: tuple[int, int] = (256, 512), draws_n: int = 50) -> dict:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, col_scales in (("row_scales", False), ("row_and_column_scales", True)):
        rows = torch.exp(torch.randn(shape[0], 1, generator=gen))
        cols = torch.exp(torch.randn(1, shape[1], generator=gen)) if col_scales else torch.ones(1, shape[1])
        sigma = rows * cols
        ema, per = EntryEMA(), {k: [] for k in KINDS}
        for _ in range(draws_n):
            g = torch.randn(shape, generator=gen) * sigma
            dirty, draws = contaminate(g, gen)
            for k in KINDS:
                s = ema.scale(g) if k == "entry_ema" else matrix_scale(g, k)
                sd = ema.scale(g) if k == "entry_ema" else matrix_scale(dirty, k)
                if s is None:
                    continue
                per[k].append({**rates(g, s), **{f"cauchy_{a}": b for a, b in rates(dirty, sd, draws, sigma).items()
                                                 if a != "clip_rate"}})
            ema.update(g)
        out[name] = {k: _mean(v) for k, v in per.items()}
    return out


def real(preset: str, steps: int, every: int, seed: int = 0) -> dict:
    from geomopt.train.loop import Trainer
    from geomopt.train.sweep import method_config

    methods = protocol.load_methods(REPO_ROOT / "experiments/paper1/methods.toml")
    scratch = Path("/tmp") / f"clip_scale_{seed}"
    cfg = method_config(preset, methods["muon"], [f"steps={steps}", "total_tokens=0", "batch_size=16",
                                                  "eval_every=0", f"seed={seed}"],
                        "clip_scale", scratch, "paper1_clip_scale")
    trainer = Trainer(dataclasses.replace(cfg, out=str(scratch / "run.jsonl"), checkpoint_every=0))
    muon = trainer.optimizers[0]
    names = {p: n for n, p in trainer.model.named_parameters()}
    emas: dict = {}
    gen = torch.Generator().manual_seed(1000 + seed)
    per_step = []

    def read(optimizer, args, kwargs):
        k = trainer.step + 1
        rows = {kind: [] for kind in KINDS}
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad.detach().reshape(p.shape[0], -1).float()
                ema = emas.setdefault(p, EntryEMA())
                if k % every == 0:
                    dirty, draws = contaminate(g, gen)
                    true = matrix_scale(g, "rowcol_mad")  # the clean entry's scale, to call a draw "large"
                    for kind in KINDS:
                        s = ema.scale(g) if kind == "entry_ema" else matrix_scale(g, kind)
                        sd = ema.scale(g) if kind == "entry_ema" else matrix_scale(dirty, kind)
                        if s is not None:
                            rows[kind].append({**rates(g, s), **{f"cauchy_{a}": b for a, b in
                                                                 rates(dirty, sd, draws, true).items() if a != "clip_rate"},
                                               "matrix": names[p]})
                ema.update(g)
        if k % every == 0:
            per_step.append({"step": k, **{kind: _mean([{a: b for a, b in r.items() if a != "matrix"} for r in v])
                                           for kind, v in rows.items() if v}})

    muon.register_step_pre_hook(read)
    for _ in range(trainer.total_steps):
        trainer.train_step(check=False)
    (scratch / "run.jsonl").unlink(missing_ok=True)
    overall = {kind: _mean([r[kind] for r in per_step if kind in r]) for kind in KINDS}
    return {"preset": str(Path(preset).relative_to(REPO_ROOT)), "steps": steps, "every": every,
            "matrices": sorted(names[p] for g in muon.param_groups for p in g["params"]),
            "mean_over_steps": overall, "per_step": per_step}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke preset, 30 steps")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    preset = REPO_ROOT / "experiments/presets/cpu" / ("smoke.toml" if args.quick else "gpt.toml")
    steps, every = (30, 10) if args.quick else (200, 25)
    out = args.out or REPO_ROOT / "results" / ("quick/paper1" if args.quick else "paper1") / "clip_scale.json"
    syn = synthetic()
    rl = real(str(preset), steps, every)
    print(f"{'scale':12s} {'synthetic rows':>15s} {'rows+cols':>10s} {'real clean':>11s} {'real FP':>8s} {'caught':>7s}")
    for k in KINDS:
        r = rl["mean_over_steps"].get(k, {})
        print(f"{k:12s} {syn['row_scales'][k]['clip_rate']:15.4%} {syn['row_and_column_scales'][k]['clip_rate']:10.4%} "
              f"{r.get('clip_rate', float('nan')):11.4%} {r.get('cauchy_false_positive', float('nan')):8.4%} "
              f"{r.get('cauchy_large_caught', float('nan')):7.1%}")
    write_json(out, {"what": " ".join(__doc__.split("\n\n")[0].split()), "t": T, "gaussian_rate": 0.0027,
                     "cauchy": {"eps": EPS, "gamma": GAMMA}, "entry_ema": {"beta": EMA_BETA, "clip": EMA_CLIP},
                     "synthetic": syn, "real": rl, "meta": run_meta(seed=0)})
    print(f"clip_scale: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
