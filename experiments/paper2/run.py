"""Paper 2 experiments: DeVA-S∞ against AdamW, Muon and SOAP on a GPT (tokens to reach Muon's
final loss, the paper's 6.6% claim) and on image classification (final test accuracy).

    python experiments/paper2/run.py                 # CPU: GPT on Shakespeare chars + ResNet on Fashion-MNIST
    python experiments/paper2/run.py --quick         # one seed, short runs (minutes) -> results/quick/paper2
    # GPU presets: GPT-2 124M on FineWeb shards, ResNet-18 on CIFAR-10
    python experiments/paper2/run.py --preset gpu --data-dir /path/to/fineweb10B --image-data-dir /path/to/cifar
    python experiments/paper2/run.py --dry-run       # print the planned runs

GPT runs come in two settings (spec §4): ``shared`` — one lr 1e-3 for every optimizer, as
the paper's Figure 1 — and ``tune`` — a per-method lr grid swept on seed 0, then the best
lr (lowest final val loss) on every seed. Run names are ``<setting>__<method>__s<seed>``
(``tune__<method>-lr<lr>__s<seed>`` for the sweep), which is what report.py groups by.

Runs go through the one trainer (geomopt.train) as a resumable sweep: a killed sweep
continues from its checkpoints; finished runs are skipped.
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib
from pathlib import Path

from geomopt.results import REPO_ROOT, load_runs
from geomopt.train.config import ConfigError, TrainConfig
from geomopt.train import tune
from geomopt.train.protocol import tune_methods
from geomopt.train.sweep import method_config, run_sweep, sweep_main, sweep_session

HERE = Path(__file__).resolve().parent
PRESETS = {
    "cpu": {"gpt": REPO_ROOT / "experiments/presets/cpu/gpt.toml",
            "image": REPO_ROOT / "experiments/presets/cpu/fashion_resnet.toml"},
    "gpu": {"gpt": REPO_ROOT / "experiments/presets/gpu/gpt2_124m_fineweb.toml",
            "image": REPO_ROOT / "experiments/presets/gpu/cifar10_resnet18.toml"},
}
SEEDS = {"full": [0, 1, 2], "quick": [0]}

# Scale of each mode at the CPU presets, sized to ~40 minutes of 2-core compute for the full
# plan. Measured at full scale (1 thread, machine shared with other jobs): a GPT run of 204,800
# tokens (100 steps of 16 × 128, 25 evaluations on the same 8,192 validation tokens) takes 28 s
# with Muon and 38 s with DeVA-S∞ (0.21 vs 0.27 s/step: at d = 128 the eigenbasis is cheap); a
# Fashion-MNIST run of 0.6 epoch (140 steps of 256) takes 76 s with DeVA-S∞. Full plan: GPT
# 12 shared + 12 sweep + 8 tuned = 32 runs ≈ 17 min, 12 image runs ≈ 14 min, update-RMS
# probe ≈ 1 min: ≈ 32 minutes.
CPU_SCALE = {
    "full": {"gpt": {"total_tokens": 204_800, "batch_size": 16, "eval_every": 8_192, "eval_tokens": 8_192,
                     "warmup_steps": 10, "checkpoint_every": 50, "log_every": 5},
             "image": {"epochs": 0.6, "eval_every": 0, "warmup_steps": 10, "checkpoint_every": 50}},
    "quick": {"gpt": {"total_tokens": 40_960, "batch_size": 16, "eval_every": 4_096, "eval_tokens": 4_096,
                      "warmup_steps": 4, "checkpoint_every": 0, "log_every": 5},
              "image": {"epochs": 0.1, "eval_every": 0, "eval_batches": 8, "warmup_steps": 4,
                        "checkpoint_every": 0}},
}
# GPU presets: the preset's own length; GPT evaluated every 25 steps (13.1M tokens) on 2M
# validation tokens, dense enough to resolve the paper's 6.6% (and SOAP's 2.3%).
GPU_SCALE = {"gpt": {"eval_every": 13_107_200, "eval_tokens": 2_097_152}, "image": {}}
# The paper's one learning rate (Figure 1); methods.toml's [gpt.shared.*] tables realise it.
SHARED_LR = 1e-3
# Steps over which the update RMS per unit lr is measured (shared-lr configs, seed 0).
RMS_STEPS = {"full": 30, "quick": 8}
# Quick mode sweeps two grid points per method (the lowest two), full mode the whole grid.
QUICK_GRID = 2
# The tuning protocol (--tune): trials per method, all on seed 0 and the selection split; the
# verdict runs at the chosen values then use seeds disjoint from the tuning seed.
TUNE_BUDGET = {"full": 16, "quick": 3}
VERDICT_SEEDS = {"full": [1, 2, 3], "quick": [1]}


def load_methods() -> dict[str, dict]:
    return tomllib.loads((HERE / "methods.toml").read_text())


def make_config(preset: Path, method: dict, overrides: list[str], name: str, out_dir: Path) -> TrainConfig:
    return method_config(preset, method, overrides, name, out_dir, "paper2")  # drops the search table


def _scale(mode: str, preset: str, task: str) -> list[str]:
    table = CPU_SCALE[mode][task] if preset == "cpu" else GPU_SCALE[task]
    if preset == "cpu" and task == "gpt":
        table = {**table, "steps": 0}  # the preset may set a length of its own; ours is total_tokens
    return [f"{k}={v}" for k, v in table.items()]


def lr_tag(lr: float) -> str:
    return f"lr{lr:g}"


def grid(method: dict, mode: str) -> list[float]:
    """The optim.lr grid of the method's search space (geomopt.train.tune, methods.toml ``search``)."""
    g = tune.planned_grid(method, "optim.lr")
    return g[:QUICK_GRID] if mode == "quick" else g


def tune_gpt(mode: str, preset: str, out: Path, extra: list[str]) -> dict:
    """The tuning protocol for the tuned setting: each method's search space, the same budget of seed-0
    trials on the selection split (runs under <out>/tuning/), the record in <out>/tuning.json."""
    methods, path = load_methods()["gpt"]["tuned"], PRESETS[preset]["gpt"]
    scale = _scale(mode, preset, "gpt") + extra

    def make(m: str, rest: dict, over: list[str], trial: str) -> TrainConfig:
        return make_config(path, rest, scale + over, f"select__{m}__{trial}", out / "tuning")
    return tune_methods(methods, make, TUNE_BUDGET[mode], out / "tuning.json")


def plan_protocol(mode: str, preset: str, out: Path, extra: list[str]) -> list[TrainConfig]:
    """Verdict runs at the values chosen by ``tune_gpt`` (all keys), on seeds disjoint from the tuning seed."""
    methods, path = load_methods()["gpt"]["tuned"], PRESETS[preset]["gpt"]
    scale = _scale(mode, preset, "gpt") + extra
    return [make_config(path, methods[m], scale + tune.overrides(values) + [f"seed={seed}"], f"protocol__{m}__s{seed}",
                        out) for m, values in tune.chosen(out / "tuning.json").items() for seed in VERDICT_SEEDS[mode]]


def best_lrs(out_dir: Path) -> dict[str, float]:
    """Each method's lr with the lowest final val loss among the seed-0 sweep runs present."""
    try:
        df = load_runs(str(out_dir / "runs" / "tune__*__s0.jsonl"))
    except (FileNotFoundError, ValueError):
        return {}
    if df.empty:
        return {}
    final = df.dropna(subset=["val_loss"]).sort_values("tokens").groupby("name")["val_loss"].last()
    best: dict[str, tuple[float, float]] = {}
    for name, loss in final.items():
        method, lr = name.split("__")[1].rsplit("-lr", 1)
        if math.isfinite(loss) and (method not in best or loss < best[method][1]):
            best[method] = (float(lr), float(loss))
    return {m: lr for m, (lr, _) in best.items()}


def plan_gpt(mode: str, preset: str, out: Path, extra: list[str], chosen: dict[str, float] | None) -> list[TrainConfig]:
    """Shared-lr runs, the seed-0 lr sweep and (once ``chosen`` is known) the best lr on all seeds.
    Without ``chosen`` the last phase is planned at each grid's first lr (dry runs only)."""
    methods, path = load_methods()["gpt"], PRESETS[preset]["gpt"]
    scale = _scale(mode, preset, "gpt") + extra
    configs = []
    for seed in SEEDS[mode]:
        for m, spec in methods["shared"].items():
            configs.append(make_config(path, spec, scale + [f"seed={seed}"], f"shared__{m}__s{seed}", out))
    for m, spec in methods["tuned"].items():
        if chosen is None or m not in chosen:
            lrs, seeds = grid(spec, mode), [0]
        else:
            lrs, seeds = [chosen[m]], SEEDS[mode]
        for lr in lrs:
            for seed in seeds:
                configs.append(make_config(path, spec, scale + [f"optim.lr={lr!r}", f"seed={seed}"],
                                           f"tune__{m}-{lr_tag(lr)}__s{seed}", out))
    return configs


def measure_update_rms(configs: list[TrainConfig], steps: int, out_file: Path) -> dict:
    """RMS of each matrix update per unit of the paper's shared lr, ‖ΔW‖_RMS / η, on the hidden matrices of
    the shared-lr GPT runs (seed 0, real batches, ``steps`` steps; median over steps 2…).
    The spec's pitfall: DeVA-S∞ is built for RMS ≈ 0.2·mean(Γ), the code's Muon for RMS 1."""
    import dataclasses
    import tempfile

    import numpy as np
    import torch

    from geomopt.optim.routing import route_params
    from geomopt.results import run_meta, write_json
    from geomopt.train.loop import Trainer

    rms: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in configs:
            cfg = dataclasses.replace(cfg, out=f"{tmp}/{{name}}.jsonl", checkpoint_dir=f"{tmp}/ck", checkpoint_every=0)
            trainer = Trainer(cfg)
            opt = trainer.optimizers[0]
            mats = route_params(trainer.model).matrix  # optimizers[0] holds them for every method here
            per_step = []
            for _ in range(steps):
                before = [p.detach().clone() for p in mats]
                lr = opt.param_groups[0]["lr"]
                trainer.train_step(check=False)
                with torch.no_grad():
                    sq = sum(float((p - b).pow(2).sum()) for p, b in zip(mats, before))
                    n = sum(p.numel() for p in mats)
                # per unit of the paper's lr at this point of the schedule (Muon runs at 5× with 0.2 scaling)
                per_step.append(math.sqrt(sq / n) / (lr * SHARED_LR / cfg.optim["lr"]))
            tail = [r for r in per_step[1:] if r > 0]  # DeVA-S∞ / SOAP: the first call only builds the basis
            rms[cfg.name.split("__")[1]] = {"optimizer": cfg.optimizer, "optim": cfg.optim,
                                           "rms_per_paper_lr_median": float(np.median(tail)) if tail else math.nan,
                                           "rms_per_paper_lr_by_step": per_step}
    record = {"what": "RMS(ΔW)/η over the hidden matrices (η: the paper's shared lr on the schedule), "
                      "shared-lr GPT configs, seed 0", "steps": steps,
              "methods": rms, "meta": run_meta(0, {"runs": [c.name for c in configs]})}
    write_json(out_file, record)
    return record


def plan_image(mode: str, preset: str, out: Path, extra: list[str]) -> list[TrainConfig]:
    methods, path = load_methods()["image"], PRESETS[preset]["image"]
    scale = _scale(mode, preset, "image") + extra
    return [make_config(path, spec, scale + [f"seed={seed}"], f"image__{m}__s{seed}", out)
            for seed in SEEDS[mode] for m, spec in methods.items()]


def plan(mode: str, preset: str, out: Path, gpt_extra: list[str], image_extra: list[str],
         chosen: dict[str, float] | None = None, parts: tuple[str, ...] = ("gpt", "image")) -> list[TrainConfig]:
    configs = plan_gpt(mode, preset, out, gpt_extra, chosen) if "gpt" in parts else []
    return configs + (plan_image(mode, preset, out, image_extra) if "image" in parts else [])


@sweep_main("paper2")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, short runs")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--out", type=Path, help="results directory (default results/paper2, quick: results/quick/paper2)")
    ap.add_argument("--only", nargs="+", choices=["gpt", "image"], default=["gpt", "image"])
    ap.add_argument("--data-dir", default="", help="FineWeb shards for --preset gpu (or $GEOMOPT_FINEWEB)")
    ap.add_argument("--image-data-dir", default="", help="CIFAR-10 batches for --preset gpu (or $GEOMOPT_CIFAR10)")
    ap.add_argument("--dry-run", action="store_true", help="print the planned runs and exit")
    ap.add_argument("--tune", action="store_true", help="run the tuning protocol (geomopt.train.tune) for the "
                    "tuned GPT methods -> <out>/tuning.json, then their verdict runs on seeds disjoint from it")
    ap.add_argument("--gpt", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every GPT run")
    ap.add_argument("--image", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every image run")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    default = "quick/paper2" if args.quick else "paper2" if args.preset == "cpu" else "paper2/gpu"
    out = args.out or REPO_ROOT / "results" / default
    gpt_extra = list(args.gpt) + ([f'data_dir="{args.data_dir}"'] if args.data_dir else [])
    image_extra = list(args.image) + ([f'data_dir="{args.image_data_dir}"'] if args.image_data_dir else [])
    parts = tuple(args.only)
    try:
        configs = plan(mode, args.preset, out, gpt_extra, image_extra, best_lrs(out) or None, parts)
    except (ConfigError, ValueError) as e:
        print(f"paper2: {e}", file=sys.stderr)
        return 2
    if args.tune and not args.dry_run:
        with sweep_session(out) as start:
            searches = tune_gpt(mode, args.preset, out, gpt_extra)
            print("paper2: tuned " + "; ".join(f"{m}: {s.chosen}" for m, s in searches.items()))
            run_sweep(plan_protocol(mode, args.preset, out, gpt_extra), since=start)
        return 0
    if args.dry_run:
        for c in configs:
            print(f"{c.name}: optimizer={c.optimizer} optim={c.optim} adamw={c.adamw} "
                  f"length={c.total_tokens or c.steps or c.epochs} -> {c.out_path}")
        return 0
    with sweep_session(out, configs) as start:
        outcomes = run_sweep(configs, since=start)
        if "gpt" in parts:
            shared0 = [c for c in configs if c.name.startswith("shared__") and c.name.endswith("__s0")]
            rec = measure_update_rms(shared0, RMS_STEPS[mode], out / "update_rms.json")
            print("paper2: update RMS / lr: " + ", ".join(f"{m} {r['rms_per_paper_lr_median']:.3g}"
                                                           for m, r in rec["methods"].items()))
            # phase 2: the best lr of each method's seed-0 sweep on every seed
            chosen = best_lrs(out)
            print("paper2: tuned lr per method: " + ", ".join(f"{m} {lr:g}" for m, lr in sorted(chosen.items())))
            if len(SEEDS[mode]) > 1:
                tuned = [c for c in plan_gpt(mode, args.preset, out, gpt_extra, chosen) if c.name.startswith("tune__")]
                outcomes += run_sweep(tuned, since=start)
    bad = sorted({o.name for o in outcomes if o.status == "nonfinite"})
    print(f"paper2: {len(outcomes)} runs under {out}" + (f"; diverged: {', '.join(bad)}" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
