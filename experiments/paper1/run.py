"""Paper 1 experiments: tokens saved by smooth shrinkage in front of Adam and by entry-wise
clipping in front of Muon, against the remedies the paper positions itself against (global-norm
clipping, spectral clipping, SPECTRA soft clipping), on the BPE language model under the protocol
(issue 12): every method tuned with the same trial budget on the selection split, then three
paired seeds at three budgets; and the Cauchy control (synthetic entry-wise Cauchy contamination,
the regime where the theory predicts gains).

    python experiments/paper1/run.py                 # CPU preset: 2-layer GPT on Shakespeare BPE (~45 min, 2 cores)
    python experiments/paper1/run.py --quick         # one seed, tiny runs (minutes) -> results/quick/paper1
    python experiments/paper1/run.py --ablate        # ψ variant × t × clip position, seed 0 (make ablate-paper1)
    python experiments/paper1/run.py --trace         # only the ShrinkAdamW trace (also part of the default run)
    python experiments/paper1/run.py --preset gpu --data-dir /path/to/fineweb10B   # GPT-2 124M on FineWeb shards

Runs go through the one trainer (geomopt.train) as resumable sweeps (geomopt.train.protocol): a
killed run continues from its checkpoints and finished runs and trials are read back.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from geomopt.report.ablation import BASELINE
from geomopt.results import REPO_ROOT
from geomopt.train.config import ConfigError, TrainConfig
from geomopt.train import protocol
from geomopt.train.protocol import tune_methods, verdict_configs, verdict_runs
from geomopt.train.sweep import add_jobs_argument, run_sweep, sweep_main, sweep_session
from geomopt.train.tune import split_search

HERE = Path(__file__).resolve().parent
SEEDS = {"full": [1, 2, 3], "quick": [1]}  # verdict seeds: disjoint from the tuning seed 0
FRACTIONS = {"full": (0.25, 0.5, 1.0), "quick": (0.5, 1.0)}  # the protocol's budgets, each annealed at its end
TUNE_BUDGET = {"full": 4, "quick": 2}  # trials per method, the same for every method

# The controlled heavy-tail experiment: each gradient entry, with probability ε, gets an extra
# Cauchy(0, γ·RMS(G)) draw (geomopt.noise.inject), before any clipping or shrinkage.
CAUCHY = {"eps": 0.02, "gamma": 1.0}

MAIN_METHODS = ["adamw", "shrink_adamw", "shrink_adamw_heavy", "muon", "clip_muon", "clipnorm_adamw",
                "spectral_clip_adamw", "spectra_cal_adamw"]
CONTROL_METHODS = ["adamw", "shrink_adamw", "muon", "clip_muon"]
QUICK_METHODS = ["adamw", "shrink_adamw", "muon", "clip_muon"]
# The ablation (make ablate-paper1), seed 0, same budget as the main runs, at each base method's
# tuned values. "clean" asks which ψ/t makes Adam + shrinkage lose on clean gradients; "cauchy" is
# the full grid under contamination. Post-clipping acts on m̂/√v̂, which stays below ≈ 2.35 for
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
    return protocol.load_methods(HERE / "methods.toml")


def scale(mode: str, preset: str) -> list[str]:
    """The GPT task's scale (geomopt.train.protocol); quick runs checkpoint (a test kills and resumes one)."""
    quick_resume = ["checkpoint_every=16"] if (mode, preset) == ("quick", "cpu") else []
    return protocol.scale(mode, preset, "gpt", {"gpt": protocol.GPU_EVAL}) + quick_resume


def maker(preset: str, out_dir: Path, extra: list[str]):
    """``make(method, table, overrides, name)`` for geomopt.train.protocol: a run of the method table on the preset."""
    return protocol.maker(protocol.PRESETS[preset]["gpt"], out_dir, "paper1", extra)


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


def specs(mode: str) -> dict[str, dict]:
    methods = load_methods()
    names = QUICK_METHODS if mode == "quick" else MAIN_METHODS
    missing = [m for m in names if m not in methods]
    if missing:
        raise ConfigError(f"experiments/paper1/methods.toml has no [{missing[0]}] table; add it or drop it from "
                          "MAIN_METHODS in experiments/paper1/run.py")
    return {m: methods[m] for m in names}


def control_configs(mode: str, preset: str, out: Path, extra: list[str]) -> list[TrainConfig]:
    """The Cauchy control: each control method at its clean-tuned values (tuning.json), on the verdict seeds."""
    from geomopt.train.tune import chosen, overrides

    picked = chosen(out / "tuning.json")
    make = maker(preset, out, scale(mode, preset) + extra)
    methods = load_methods()
    return [make(m, with_cauchy(split_search(methods[m])[0], s), overrides(picked[m]) + [f"seed={s}"],
                 f"cauchy__{m}__s{s}") for m in (QUICK_METHODS if mode == "quick" else CONTROL_METHODS)
            for s in SEEDS[mode]]


def ablation_configs(mode: str, preset: str, out: Path, extra: list[str]) -> list[TrainConfig]:
    from geomopt.train.tune import chosen, overrides

    methods, picked = load_methods(), chosen(out / "tuning.json")
    make = maker(preset, out / "ablation", scale(mode, preset) + extra + ["seed=0"])
    configs = []
    for group, grids in ABLATE.items():
        for baseline in dict.fromkeys(BASELINE[b] for b in grids):  # each variant's same-seed baseline run
            m = split_search(methods[baseline])[0]
            configs.append(make(baseline, with_cauchy(m, 0) if group == "cauchy" else m,
                                overrides(picked.get(baseline, {})), f"{group}__{baseline}__s0"))
        for base, grid in grids.items():
            ts = grid["t"] if isinstance(grid["t"], dict) else {pos: grid["t"] for pos in grid["position"]}
            for psi, pos, t in ((psi, pos, t) for psi, pos in itertools.product(grid["psi"], grid["position"])
                                for t in ts[pos]):
                m = dict(split_search(methods[base])[0])
                m["optim"] = {**m.get("optim", {}), "psi": psi, "t": t, "position": pos}
                configs.append(make(base, with_cauchy(m, 0) if group == "cauchy" else m,
                                    overrides(picked.get(base, {})), f"{group}__{base}-{psi}-t{t:g}-{pos}__s0"))
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
        if method not in trainers:
            tmp = dataclasses.replace(c, out=str(out / "step_cost_scratch.jsonl"), checkpoint_every=0)
            trainers[method] = Trainer(tmp)
    times = time_interleaved({m: (lambda t=t: t.train_step(check=False)) for m, t in trainers.items()}, reps=reps)
    (out / "step_cost_scratch.jsonl").unlink(missing_ok=True)
    base = {m: ("muon" if m == "clip_muon" else "adamw") for m in trainers if m not in ("adamw", "muon")}
    write_json(out / "step_cost.json", {
        "seconds": times, "reps": reps,
        "ratio": {m: times[m] / times[b] for m, b in base.items() if m in times and b in times},
        "meta": run_meta(seed=configs[0].seed)})


def trace_shrink(configs: list[TrainConfig], out: Path, every: int = 10) -> None:
    """What ShrinkAdamW's ψ does in the clean run of the first verdict seed, measured: every ``every`` steps, the share of
    gradient entries beyond t·s, s the entry's scale (the ψ input |g|/s > t, ``ShrinkAdamW.psi_inputs`` in a
    step pre-hook), the share of those that were beyond t ``every`` steps earlier too (persistence), and RMS(√v̂) of each
    parameter against the AdamW run with the same seed and data order, trained in lockstep."""
    import dataclasses

    from geomopt.results import run_meta, write_json
    from geomopt.train.loop import Trainer

    pick = {c.name.split("__")[1]: c for c in configs if c.seed == configs[0].seed}
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
    ap.add_argument("--quick", action="store_true", help="one seed, tiny runs")
    ap.add_argument("--ablate", action="store_true", help="ψ × t (× position) ablation, seed 0: clean shrinkage, then "
                    "the Cauchy control (after the main run: it uses the tuned values)")
    ap.add_argument("--trace", action="store_true", help="only the ShrinkAdamW trace (shrink_trace.json), no sweep")
    ap.add_argument("--preset", choices=sorted(protocol.PRESETS), default="cpu")
    ap.add_argument("--out", type=Path, help="results directory (default results/paper1, quick: results/quick/paper1)")
    ap.add_argument("--data-dir", default="", help="FineWeb shards for --preset gpu (or $GEOMOPT_FINEWEB)")
    add_jobs_argument(ap)
    ap.add_argument("--dry-run", action="store_true", help="print the planned tuning and exit")
    ap.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    default = "quick/paper1" if args.quick else "paper1" if args.preset == "cpu" else "paper1/gpu"
    out = args.out or REPO_ROOT / "results" / default
    extra = scale(mode, args.preset) + list(args.overrides) + ([f'data_dir="{args.data_dir}"'] if args.data_dir else [])
    make = maker(args.preset, out, extra)
    try:
        sp = specs(mode)
        probe = [make(m, split_search(t)[0], [], f"check__{m}") for m, t in sp.items()]  # validates every method
    except (ConfigError, ValueError) as e:
        print(f"paper1: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for c in probe:
            print(f"{c.name}: optimizer={c.optimizer} optim={c.optim} transform={c.grad_transform or '-'} "
                  f"clip={c.grad_clip} tokens={c.total_tokens or c.steps}; search "
                  f"{[p.key for p in split_search(sp[c.name.split('__')[1]])[1]]}")
        return 0
    if args.ablate:
        configs = ablation_configs(mode, args.preset, out, list(args.overrides))
        with sweep_session(out / "ablation", configs) as start:
            outcomes = run_sweep(configs, since=start, jobs=args.jobs)
        print(f"paper1: {len(outcomes)} ablation runs under {out / 'ablation'}")
        return 0
    with sweep_session(out, probe) as start:
        if not args.trace:
            searches = tune_methods(sp, make, TUNE_BUDGET[mode], out / "tuning.json", jobs=args.jobs, since=start)
            print("paper1: tuned " + "; ".join(f"{m}: {s.chosen}" for m, s in searches.items()), flush=True)
            outcomes = verdict_runs(sp, make, out / "tuning.json", SEEDS[mode], FRACTIONS[mode], jobs=args.jobs,
                                    since=start)
            outcomes += run_sweep(control_configs(mode, args.preset, out, list(args.overrides)), since=start,
                                  jobs=args.jobs)
            measure_step_cost(verdict_configs(sp, make, out / "tuning.json", SEEDS[mode][:1]), out,
                              reps=5 if args.quick else 20)
            protocol.prune_plan(out / "runs", searches, outcomes)
        trace_shrink(verdict_configs({m: sp[m] for m in ("shrink_adamw", "adamw")}, make, out / "tuning.json",
                                     SEEDS[mode][:1]), out)
    if args.trace:
        print(f"paper1: {out / 'shrink_trace.json'}")
        return 0
    bad = [o.name for o in outcomes if o.status == "nonfinite"]
    print(f"paper1: {len(outcomes)} runs under {out}" + (f"; diverged: {', '.join(bad)}" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
