"""Paper 1 experiments: tokens saved by smooth shrinkage in front of Adam and by entry-wise
clipping in front of Muon, against the remedies the paper positions itself against
(global-norm clipping, SPECTRA-style spectral soft clipping), on clean gradients and with
synthetic entry-wise Cauchy contamination (the regime where the theory predicts gains).

    python experiments/paper1/run.py                 # CPU preset: GPT on Shakespeare characters, 3 seeds
    python experiments/paper1/run.py --quick         # one seed, short runs (minutes) -> results/quick/paper1
    python experiments/paper1/run.py --ablate        # ψ variant × t ∈ {2,3,4} × clip position (make ablate-paper1)
    python experiments/paper1/run.py --trace         # only the ShrinkAdamW trace (also part of the default run)
    python experiments/paper1/run.py --preset gpu --data-dir /path/to/fineweb10B   # GPT-2 124M on FineWeb shards

Runs go through the one trainer (geomopt.train) as a resumable sweep: a killed sweep
continues from its checkpoints; finished runs are skipped.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tomllib
from pathlib import Path

from geomopt.results import REPO_ROOT
from geomopt.train.config import ConfigError, TrainConfig
from geomopt.train.sweep import add_jobs_argument, method_config, run_sweep, sweep_main, sweep_session

HERE = Path(__file__).resolve().parent
PRESETS = {"cpu": REPO_ROOT / "experiments/presets/cpu/gpt.toml",
           "gpu": REPO_ROOT / "experiments/presets/gpu/gpt2_124m_fineweb.toml"}

# Scale of each mode at the CPU preset. Batch 16 × 128 tokens keeps enough optimizer steps
# inside the budget that fits 2 cores (~6k tokens/s for this 0.8M-parameter GPT).
CPU_SCALE = {
    "full": {"total_tokens": 800_000, "batch_size": 16, "eval_every": 32_000, "eval_tokens": 16_384,
             "warmup_steps": 30, "checkpoint_every": 100},
    # quick: a pipeline check in ~2 minutes, not science (a 2-layer d=64 GPT, 40k tokens)
    "quick": {"total_tokens": 40_000, "batch_size": 16, "seq_len": 64, "n_layer": 2, "n_embd": 64, "n_head": 2,
              "eval_every": 8_000, "eval_tokens": 4_096, "warmup_steps": 5, "checkpoint_every": 20},
}
SEEDS = {"full": [0, 1, 2], "quick": [0]}
# GPU preset: evaluate every 25 steps (13.1M tokens, ~0.5% of the run) on 2M validation tokens,
# dense enough to resolve a 2% token saving (the preset's 125-step grid gives ~2.5%).
GPU_SCALE = {"eval_every": 13_107_200, "eval_tokens": 2_097_152}

# The controlled heavy-tail experiment: each gradient entry, with probability ε, gets an extra
# Cauchy(0, γ·RMS(G)) draw (geomopt.noise.inject), before any clipping or shrinkage.
CAUCHY = {"eps": 0.02, "gamma": 1.0}

MAIN_METHODS = ["adamw", "shrink_adamw", "muon", "clip_muon", "clipnorm_adamw", "spectra_adamw"]
CONTROL_METHODS = ["adamw", "shrink_adamw", "muon", "clip_muon"]
QUICK_METHODS = ["adamw", "shrink_adamw", "muon", "clip_muon"]
# The ablation (make ablate-paper1), seed 0, same budget as the main runs. "clean" comes first: it asks
# which ψ/t makes Adam + shrinkage lose on clean gradients; "cauchy" is the full grid under contamination.
# Thresholds per position where they differ: post-clipping acts on m̂/√v̂, which stays below ≈ 2.35 for
# β = (0.9, 0.99) (≈ 0.3 RMS on noise), so its t must be < 1 to act (t ≥ 2 there was a no-op).
POST_T = [0.25, 0.5, 0.75]
ABLATE = {
    "clean": {"shrink_adamw": {"psi": ["hard", "soft", "redescend", "smooth"], "t": [2.0, 3.0, 4.0],
                               "position": ["pre"]}},
    "cauchy": {
        "shrink_adamw": {"psi": ["hard", "soft", "redescend", "smooth"], "t": {"pre": [2.0, 3.0, 4.0], "post": POST_T},
                         "position": ["pre", "post"]},
        "clip_muon": {"psi": ["hard", "soft", "redescend", "smooth"], "t": [2.0, 3.0, 4.0],
                      "position": ["grad", "momentum"]}},
}


def load_methods() -> dict[str, dict]:
    return tomllib.loads((HERE / "methods.toml").read_text())


def make_config(preset: str, method: dict, overrides: list[str], name: str, out_dir: Path) -> TrainConfig:
    return method_config(PRESETS[preset], method, overrides, name, out_dir, "paper1")


def with_cauchy(method: dict, seed: int) -> dict:
    """The method with Cauchy contamination chained in front of its own transform (if any)."""
    m = {k: (dict(v) if isinstance(v, dict) else v) for k, v in method.items()}
    own = m.pop("grad_transform", "")
    own_args = m.pop("grad_transform_args", {})
    noise = {**CAUCHY, "seed": 1000 + seed}
    if own:
        m["grad_transform"] = f"cauchy_noise+{own}"
        m["grad_transform_args"] = {"cauchy_noise": noise, own: own_args}
    else:
        m["grad_transform"] = "cauchy_noise"
        m["grad_transform_args"] = noise
    return m


def plan(mode: str, preset: str, out_dir: Path, extra: list[str], ablate: bool) -> list[TrainConfig]:
    methods = load_methods()
    scale = [f"{k}={v}" for k, v in (CPU_SCALE[mode] if preset == "cpu" else GPU_SCALE).items()]
    configs = []
    if ablate:
        for group, grids in ABLATE.items():
            for base, grid in grids.items():
                ts = grid["t"] if isinstance(grid["t"], dict) else {pos: grid["t"] for pos in grid["position"]}
                for psi, pos, t in ((psi, pos, t) for psi, pos in itertools.product(grid["psi"], grid["position"])
                                    for t in ts[pos]):
                    m = dict(methods[base])
                    m["optim"] = {**m.get("optim", {}), "psi": psi, "t": t, "position": pos}
                    configs.append(make_config(preset, with_cauchy(m, 0) if group == "cauchy" else m,
                                               scale + extra + ["seed=0"], f"{group}__{base}-{psi}-t{t:g}-{pos}__s0",
                                               out_dir / "ablation"))
        return configs
    main = QUICK_METHODS if mode == "quick" else MAIN_METHODS
    control = QUICK_METHODS if mode == "quick" else CONTROL_METHODS
    for seed in SEEDS[mode]:
        for m in main:
            configs.append(make_config(preset, methods[m], scale + extra + [f"seed={seed}"],
                                       f"clean__{m}__s{seed}", out_dir))
        for m in control:
            configs.append(make_config(preset, with_cauchy(methods[m], seed), scale + extra + [f"seed={seed}"],
                                       f"cauchy__{m}__s{seed}", out_dir))
    return configs


def measure_step_cost(configs: list[TrainConfig], out: Path, reps: int) -> None:
    """Full training-step time (forward, backward, transforms, optimizer) of each clean method,
    timed round-robin in one process so that machine load hits every method alike (the
    run files' own step times are sequential and carry whatever else the machine did)."""
    import dataclasses

    from geomopt.benchmark import time_interleaved
    from geomopt.results import run_meta, write_json
    from geomopt.train.loop import Trainer

    trainers = {}
    for c in configs:
        method = c.name.split("__")[1]
        if c.name.startswith("clean__") and method not in trainers:
            tmp = dataclasses.replace(c, out=str(out / "step_cost_scratch.jsonl"), checkpoint_every=0)
            trainers[method] = Trainer(tmp)
    times = time_interleaved({m: (lambda t=t: t.train_step(check=False)) for m, t in trainers.items()}, reps=reps)
    (out / "step_cost_scratch.jsonl").unlink(missing_ok=True)
    base = {"shrink_adamw": "adamw", "clip_muon": "muon", "clipnorm_adamw": "adamw", "spectra_adamw": "adamw"}
    write_json(out / "step_cost.json", {
        "seconds": times, "reps": reps,
        "ratio": {m: times[m] / times[b] for m, b in base.items() if m in times and b in times},
        "meta": run_meta(seed=configs[0].seed)})


def trace_shrink(configs: list[TrainConfig], out: Path, every: int = 10) -> None:
    """What ShrinkAdamW's ψ does in the clean seed-0 run, measured: every ``every`` steps, the share of
    gradient entries beyond t·s, s the entry's scale (the ψ input |g|/s > t, ``ShrinkAdamW.psi_inputs`` in a
    step pre-hook), the share of those that were beyond t ``every`` steps earlier too (persistence), and RMS(√v̂) of each
    parameter against the AdamW run with the same seed and data order, trained in lockstep."""
    import dataclasses

    from geomopt.results import run_meta, write_json
    from geomopt.train.loop import Trainer

    pick = {c.name.split("__")[1]: c for c in configs if c.name.startswith("clean__") and c.seed == configs[0].seed}
    if "shrink_adamw" not in pick or "adamw" not in pick:
        return
    trainers = {m: Trainer(dataclasses.replace(pick[m], out=str(out / f"trace_scratch_{m}.jsonl"), checkpoint_every=0))
                for m in ("shrink_adamw", "adamw")}
    (opt,) = trainers["shrink_adamw"].optimizers
    rows, before = [], {}

    def beyond_t(optimizer, args, kwargs):
        k = trainers["shrink_adamw"].step
        if k % every or k == 0:
            return
        n_beyond = n_kept = n_all = 0
        for p, (y, t) in optimizer.psi_inputs().items():
            mask = y.abs_() > t
            n_beyond += int(mask.sum())
            n_kept += int((mask & before[p]).sum()) if p in before else 0
            n_all += mask.numel()
            before[p] = mask
        rows.append({"step": k, "frac_beyond_t": n_beyond / max(n_all, 1),
                     "persistent_frac": n_kept / max(n_beyond, 1) if k > every else None})

    opt.register_step_pre_hook(beyond_t)
    for _ in range(trainers["shrink_adamw"].total_steps):
        for t in trainers.values():
            t.train_step(check=False)
    rms = {m: rms_sqrt_vhat(t) for m, t in trainers.items()}
    matrices = [n for n, p in trainers["adamw"].model.named_parameters() if p.ndim >= 2]
    for m in trainers:
        (out / f"trace_scratch_{m}.jsonl").unlink(missing_ok=True)
    write_json(out / "shrink_trace.json", {
        "what": " ".join(trace_shrink.__doc__.split()), "every": every, "rows": rows,
        "t": opt.param_groups[0]["t"], "psi": opt.param_groups[0]["psi"], "steps": trainers["adamw"].step,
        "rms_sqrt_vhat_ratio": {n: rms["shrink_adamw"][n] / rms["adamw"][n] for n in rms["adamw"]},
        "matrices": matrices, "meta": run_meta(seed=pick["adamw"].seed)})


def rms_sqrt_vhat(trainer) -> dict[str, float]:
    """RMS of √v̂ (Adam's bias-corrected second moment) of each parameter of a one-optimizer run."""
    (opt,) = trainer.optimizers
    beta2 = opt.param_groups[0]["betas"][1]
    return {n: float((opt.state[p]["exp_avg_sq"] / (1 - beta2 ** float(opt.state[p]["step"]))).mean().sqrt())
            for n, p in trainer.model.named_parameters() if opt.state.get(p)}


@sweep_main("paper1")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, short runs")
    ap.add_argument("--ablate", action="store_true", help="ψ × t (× position) ablation, seed 0: clean shrinkage, then the Cauchy control")
    ap.add_argument("--trace", action="store_true", help="only the ShrinkAdamW trace (shrink_trace.json; ~2 min), no sweep")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--out", type=Path, help="results directory (default results/paper1, quick: results/quick/paper1)")
    ap.add_argument("--data-dir", default="", help="FineWeb shards for --preset gpu (or $GEOMOPT_FINEWEB)")
    add_jobs_argument(ap)
    ap.add_argument("--dry-run", action="store_true", help="print the planned runs and exit")
    ap.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    default = "quick/paper1" if args.quick else "paper1" if args.preset == "cpu" else "paper1/gpu"
    out = args.out or REPO_ROOT / "results" / default
    extra = list(args.overrides) + ([f'data_dir="{args.data_dir}"'] if args.data_dir else [])
    try:
        configs = plan(mode, args.preset, out, extra, args.ablate)
    except (ConfigError, ValueError) as e:
        print(f"paper1: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for c in configs:
            print(f"{c.name}: optimizer={c.optimizer} optim={c.optim} transform={c.grad_transform or '-'} "
                  f"clip={c.grad_clip} tokens={c.total_tokens or c.steps} -> {c.out_path}")
        return 0
    if args.trace:
        trace_shrink(configs, out)
        print(f"paper1: {out / 'shrink_trace.json'}")
        return 0
    with sweep_session(out / ("ablation" if args.ablate else ""), configs) as start:
        outcomes = run_sweep(configs, since=start, jobs=args.jobs)
        if not args.ablate:
            measure_step_cost(configs, out, reps=5 if args.quick else 30)
            trace_shrink(configs, out)
    bad = [o.name for o in outcomes if o.status == "nonfinite"]
    print(f"paper1: {len(outcomes)} runs under {out}" + (f"; diverged: {', '.join(bad)}" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
