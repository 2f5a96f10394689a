"""Paper 3 experiments: Stacey(p,2) and Stacey(p,p) against SGD-Nesterov, AdamW and Lion on
image classification (the Table 1 analogue) and on a character-level GPT, with a p sweep.

    python experiments/paper3/run.py                 # CPU preset: small ResNet on Fashion-MNIST + GPT on Shakespeare
    python experiments/paper3/run.py --jobs 1        # the same, one run at a time (default: 2 at a time, one thread each)
    python experiments/paper3/run.py --quick         # one seed, fixed lrs, short runs (minutes) -> results/quick/paper3
    python experiments/paper3/run.py --preset gpu --cifar-dir DIR --fineweb-dir DIR   # ResNet-18, GPT-2 124M

Full mode, per task (the plan is data: ``--dry-run`` prints it):
  1. images, lr sweep: every method of methods.toml [image.*] at each lr of its search grid, seed 0;
  2. images, seeds 1 and 2 at each method's winning lr (lowest final train NLL on seed 0: the choice
     never looks at the test set); the winners are read from the results files of step 1;
  3. images, p sweep: both Stacey variants at p ∈ {2, 2.5, 4} (p = 3 is step 1), each p with its own
     lr grid ([image_p_sweep.*]), seed 0;
  4. GPT: AdamW, Lion, Stacey(p,2), Stacey(p,p) at fixed lrs, seed 0, and the Stacey p sweep.
Quick mode: steps 1 and 4 at each method's ``lr`` only, the image p sweep at p ∈ {2, 4} (middle of
each grid), short budgets.

Runs go through the one trainer (geomopt.train) as a resumable sweep: a killed sweep continues
from its checkpoints; finished runs are skipped.
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib
from pathlib import Path

from geomopt.report.budget import train_nll_at
from geomopt.results import REPO_ROOT, read_run
from geomopt.train import tune
from geomopt.train.config import ConfigError, TrainConfig, apply_overrides, from_dict
from geomopt.train.sweep import add_jobs_argument, as_overrides, run_sweep, sweep_session, toml_value

HERE = Path(__file__).resolve().parent
PRESETS = {
    "cpu": {"image": REPO_ROOT / "experiments/presets/cpu/fashion_resnet.toml",
            "gpt": REPO_ROOT / "experiments/presets/cpu/gpt.toml"},
    "gpu": {"image": REPO_ROOT / "experiments/presets/gpu/cifar10_resnet18.toml",
            "gpt": REPO_ROOT / "experiments/presets/gpu/gpt2_124m_fineweb.toml"},
}
FRACTIONS = (0.25, 0.5, 1.0)  # Table 1 reports epochs 50/100/200 of 200

# Budgets at the CPU preset, sized for ~40 minutes of 2 cores. Measured with one thread while other
# jobs shared the machine (load ~3): 0.13 s per ResNet step at batch 128 and 0.17 s per GPT step at
# 16 × 128 tokens in quick mode; one full image run 68 s, one full GPT run 59 s. Full plan: 43 image
# runs + 10 GPT runs ≈ 43 × 68 s + 10 × 59 s ≈ 59 min on one core, ≈ 30 min with --jobs 2.
# The image budget is one epoch of Fashion-MNIST (468 steps of 128 images); the test set is
# evaluated every quarter of the budget, so 25/50/100% are evaluation points, on its first 5,120
# images (a full 10,000-image pass costs 6-11 s, a sixth of the training).
IMAGE_STEPS = {"full": 468, "quick": 60}
IMAGE_SCALE = {
    "full": {"epochs": 0, "batch_size": 128, "warmup_steps": 20, "log_every": 5, "checkpoint_every": 117,
             "eval_batches": 40},
    "quick": {"epochs": 0, "batch_size": 128, "warmup_steps": 5, "log_every": 3, "checkpoint_every": 30,
              "eval_batches": 20},
}
GPT_STEPS = {"full": 300, "quick": 48}
GPT_SCALE = {
    "full": {"batch_size": 16, "warmup_steps": 20, "eval_tokens": 16_384, "log_every": 5, "checkpoint_every": 100},
    "quick": {"batch_size": 16, "warmup_steps": 5, "eval_tokens": 8_192, "log_every": 3, "checkpoint_every": 24},
}
# GPU presets: their own length (CIFAR-10: 200 epochs; FineWeb: 5,100 steps), evaluated densely
# enough that the 25/50/100% points are within one evaluation of their nominal place.
GPU_SCALE = {"image": {"eval_every": 250_000}, "gpt": {"steps": 5100, "eval_every": 65_536_000}}
SEEDS = {"full": [0, 1, 2], "quick": [0]}
QUICK_P = (2.0, 4.0)


def load_methods() -> dict:
    return tomllib.loads((HERE / "methods.toml").read_text())


def arm_name(method: str, spec: dict, p: float | None = None) -> str:
    """``sgd``, ``stacey_p2-p3``: a Stacey arm carries its p in the run name."""
    if "stacey" not in spec["optimizer"]:
        return method
    p = spec["optim"]["p"] if p is None else p
    return f"{method}-p{p:g}"


def run_name(task: str, arm: str, lr: float, seed: int) -> str:
    return f"{task}__{arm}__lr{lr:g}__s{seed}"


class Planner:
    """Builds the TrainConfigs of one mode × preset into one results directory."""

    def __init__(self, mode: str, preset: str, out_dir: Path, checkpoints: Path, extra: dict[str, list[str]]):
        self.mode, self.preset, self.out_dir, self.checkpoints, self.extra = mode, preset, out_dir, checkpoints, extra
        self.methods = load_methods()

    def scale(self, task: str) -> list[str]:
        if self.preset == "gpu":
            return [f"{k}={v}" for k, v in GPU_SCALE[task].items()]
        if task == "image":
            steps = IMAGE_STEPS[self.mode]
            batch = IMAGE_SCALE[self.mode]["batch_size"]
            scale = {**IMAGE_SCALE[self.mode], "steps": steps, "eval_every": steps // 4 * batch}
        else:
            steps, batch = GPT_STEPS[self.mode], GPT_SCALE[self.mode]["batch_size"]
            seq = tomllib.loads(PRESETS["cpu"]["gpt"].read_text())["seq_len"]
            scale = {**GPT_SCALE[self.mode], "total_tokens": steps * batch * seq,
                     "eval_every": steps // 4 * batch * seq}
        return [f"{k}={toml_value(v)}" for k, v in scale.items()]

    def config(self, task: str, method: str, lr: float, seed: int, p: float | None = None) -> TrainConfig:
        spec = self.methods[task][method]
        raw = tomllib.loads(PRESETS[self.preset][task].read_text())
        raw.pop("optim", None)  # each method brings its own [optim]; nothing of the preset's SGD leaks in
        optim = {**spec.get("optim", {}), "lr": lr}
        if p is not None:
            optim["p"] = p
        name = run_name(task, arm_name(method, spec, p), lr, seed)
        over = (self.scale(task) + [f"optimizer={toml_value(spec['optimizer'])}"]
                + as_overrides({"optim": optim}) + self.extra.get(task, []) + self.extra.get("all", [])
                + [f"seed={seed}", f'name="{name}"', f'out="{self.out_dir}/runs/{{name}}.jsonl"',
                   f'checkpoint_dir="{self.checkpoints}/{{name}}"', "progress=false"])
        return from_dict(apply_overrides(raw, over))

    # ------------------------------------------------------------ the phases
    def lr_sweep(self) -> list[TrainConfig]:
        """Images: every method at every lr of its grid (full) or at its ``lr`` (quick), seed 0."""
        out = []
        for method, spec in self.methods["image"].items():
            grid = tune.planned_grid(spec) if self.mode == "full" else [spec["lr"]]
            out += [self.config("image", method, lr, 0) for lr in grid]
        return out

    def chosen_lr(self, method: str) -> tuple[float, bool]:
        """(the lr of seeds 1, 2, whether it was chosen from finished runs): the lowest final
        train NLL among the seed-0 sweep runs; the method's ``lr`` until they all exist."""
        spec = self.methods["image"][method]
        if self.mode == "quick":
            return spec["lr"], False
        scores = {}
        for lr in tune.planned_grid(spec):
            cfg = self.config("image", method, lr, 0)
            try:
                meta, rows = read_run(cfg.out_path)
            except (OSError, ValueError):
                return spec["lr"], False
            if meta.get("status") == "nonfinite":
                scores[lr] = math.inf
            elif meta.get("status") == "completed":
                scores[lr] = train_nll_at(rows, 1.0, meta["total_steps"])
            else:
                return spec["lr"], False
        return min(scores, key=lambda lr: (scores[lr], lr)), True

    def more_seeds(self) -> list[TrainConfig]:
        out = []
        for method in self.methods["image"]:
            lr, _ = self.chosen_lr(method)
            out += [self.config("image", method, lr, seed) for seed in SEEDS[self.mode][1:]]
        return out

    def p_sweep(self) -> list[TrainConfig]:
        out = []
        for method, grids in self.methods["image_p_sweep"].items():
            for p_text, grid in grids.items():
                p = float(p_text)
                if self.mode == "quick":
                    if p in QUICK_P:
                        out.append(self.config("image", method, grid[len(grid) // 2], 0, p))
                else:
                    out += [self.config("image", method, lr, 0, p) for lr in grid]
        return out

    def gpt(self) -> list[TrainConfig]:
        out = [self.config("gpt", m, spec["lr"], 0) for m, spec in self.methods["gpt"].items()]
        if self.mode == "full":
            for method, lrs in self.methods["gpt_p_sweep"].items():
                out += [self.config("gpt", method, lr, 0, float(p)) for p, lr in lrs.items()]
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, fixed lrs, short runs")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--out", type=Path, help="results directory (default results/paper3, quick: results/quick/paper3)")
    ap.add_argument("--checkpoints", type=Path, help="checkpoint directory (default checkpoints/paper3/<mode>)")
    ap.add_argument("--cifar-dir", default="", help="CIFAR-10 python batches for --preset gpu (or $GEOMOPT_CIFAR10)")
    ap.add_argument("--fineweb-dir", default="", help="FineWeb shards for --preset gpu (or $GEOMOPT_FINEWEB)")
    ap.add_argument("--tasks", nargs="+", choices=("image", "gpt"), default=["image", "gpt"])
    add_jobs_argument(ap)
    ap.add_argument("--dry-run", action="store_true", help="print the planned runs and exit")
    ap.add_argument("--image-override", action="append", default=[], metavar="KEY=VALUE",
                    help="override applied to every image run (repeatable)")
    ap.add_argument("--gpt-override", action="append", default=[], metavar="KEY=VALUE",
                    help="override applied to every GPT run (repeatable)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    default = "quick/paper3" if args.quick else "paper3" if args.preset == "cpu" else "paper3/gpu"
    out = (args.out or REPO_ROOT / "results" / default).resolve()
    ckpt = (args.checkpoints or REPO_ROOT / "checkpoints" / "paper3" / f"{mode}-{args.preset}").resolve()
    extra = {"all": list(args.overrides), "image": list(args.image_override), "gpt": list(args.gpt_override)}
    if args.cifar_dir:
        extra["image"].append(f'data_dir="{args.cifar_dir}"')
    if args.fineweb_dir:
        extra["gpt"].append(f'data_dir="{args.fineweb_dir}"')
    planner = Planner(mode, args.preset, out, ckpt, extra)
    try:
        phases = []
        if "image" in args.tasks:
            phases += [("image lr sweep", planner.lr_sweep), ("image seeds", planner.more_seeds),
                       ("image p sweep", planner.p_sweep)]
        if "gpt" in args.tasks:
            phases.append(("gpt", planner.gpt))
        if args.dry_run:
            return dry_run(planner, phases)
        outcomes = []
        with sweep_session(out) as start:
            for title, build in phases:  # built one at a time: "image seeds" reads the lr sweep's results
                configs = build()
                if configs:
                    print(f"paper3: {title}: {len(configs)} runs", flush=True)
                    outcomes += run_sweep(configs, since=start, jobs=args.jobs)
    except (ConfigError, ValueError) as e:
        print(f"paper3: {e}", file=sys.stderr)
        return 2
    bad = [o.name for o in outcomes if o.status == "nonfinite"]
    print(f"paper3: {len(outcomes)} runs under {out}" + (f"; diverged: {', '.join(bad)}" if bad else ""))
    return 0


def dry_run(planner: Planner, phases) -> int:
    total = {}
    for title, build in phases:
        configs = build()
        print(f"# {title}: {len(configs)} runs")
        if title == "image seeds":
            for method in planner.methods["image"]:
                lr, chosen = planner.chosen_lr(method)
                print(f"#   {method}: lr {lr:g} ({'sweep winner' if chosen else 'default until the sweep has run'})")
        for c in configs:
            if c.epochs:  # the steps per epoch depend on the data set: count epochs
                key, amount = f"{c.task} epochs", c.epochs
            else:
                key, amount = f"{c.task} steps", c.steps or c.total_tokens // (c.batch_size * c.seq_len)
            total[key] = total.get(key, 0) + amount
            length = (f"steps={c.steps}" if c.steps else f"tokens={c.total_tokens}" if c.total_tokens
                      else f"epochs={c.epochs:g}")
            print(f"{c.name}: optimizer={c.optimizer} optim={c.optim} {length} -> {c.out_path}")
    print("# total: " + ", ".join(f"{k} {v:g}" for k, v in total.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
