"""Paper 3 experiments: Stacey(p,2) and Stacey(p,p) against AdamW and Lion on the BPE language model
and against SGD-Nesterov, AdamW and Lion on image classification (the Table 1 analogue), under the
protocol (geomopt.train.protocol): every method tuned with the same trial budget on the selection
split (Stacey's τ, α and β2 searched apart from lr), then three paired seeds at three budgets.

    python experiments/paper3/run.py                 # CPU: GPT on Shakespeare BPE + ResNet on Fashion-MNIST
    python experiments/paper3/run.py --quick         # one seed, tiny runs (about a minute) -> results/quick/paper3
    python experiments/paper3/run.py --p-sweep       # also tune both Stacey variants at p = 2 and 4 (not in the hour)
    python experiments/paper3/run.py --dry-run       # print the planned searches and exit
    python experiments/paper3/run.py --preset gpu --cifar-dir DIR --fineweb-dir DIR   # ResNet-18, GPT-2 124M

Plan (full mode, CPU presets), per task, each into its own directory (runs/, tuning.json):
  1. GPT (experiments/presets/cpu/gpt_bpe_small.toml: 2 layers, d = 128, 160 steps of 16 × 128 BPE
     tokens) -> results/paper3/: AdamW, Lion, Stacey(p,2), Stacey(p,p) at p = 3, 7 seed-0 trials each
     (methods.toml ``search``), then seeds 1, 2, 3 as budget groups at 25/50/100%.
  2. Images (fashion_resnet.toml, 156 steps of 128 images = a third of an epoch of Fashion-MNIST,
     warmdown schedule) -> results/paper3/image/: SGD-Nesterov, AdamW, Lion and both Stacey variants, 7 trials
     each selected on the held-out 10% of the training set (``select_acc``), then seeds 1, 2, 3 at
     25/50/100% (Table 1 reports epochs 50/100/200 of 200; here each budget is annealed at its end).
  Runs ``protocol__<method>__s<seed>_b<pct>``; trials ``tune__<method>__<hash>``.
  (--p-sweep: the same tuning of Stacey(p,2) and Stacey(p,p) at p = 2 and 4 -> tuning_p.json in each
  task directory; p = 3 is the main tuning. 2 × 2 × 7 = 28 trials per task: GPT ≈ 18 min, images
  ≈ 10 min on 2 cores: a separate target, outside the hour.)

Time of the full plan on 2 cores (``--jobs 2``, one thread per run). Per run: GPT ≈ 75 s (0.40-0.45
s/step for every method: the 8192 × 128 embedding and head dominate; plus 8 evaluations), images
≈ 40 s (0.15-0.20 s/step); measured with one thread while other jobs shared the machine, so noisy
(under load ~3 a run took 90 s and 84 s). The tuning trains each round of the lockstep searches 2 at
a time (an odd round leaves a core idle; slots counted by replaying the searches with random
scores); a budget group costs ~1.15 runs (the 25% and 50% budgets
branch off the long run and train only their own warmdown). GPT: 4 × 7 = 28 trials in ≈ 16 slots
× 75 s ≈ 20 min, 12 groups in 6 slots × 86 s ≈ 9 min. Images: 5 × 7 = 35 trials in ≈ 20 slots × 40 s
≈ 13 min, 15 groups in 8 slots × 46 s ≈ 6 min. With the theory checks (< 1 min) ``make
reproduce-paper3`` ≈ 49 min.

Runs go through the one trainer (geomopt.train) as resumable sweeps: a killed run continues from
its checkpoints, finished runs and trials are read back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geomopt.results import REPO_ROOT
from geomopt.train.config import ConfigError, TrainConfig
from geomopt.train import protocol
from geomopt.train.protocol import (GPU_EVAL, PRESETS, TASKS, load_methods, task_dir, tune_methods,
                                    verdict_runs)
from geomopt.train.sweep import add_jobs_argument, sweep_main, sweep_session
from geomopt.train.tune import split_search

HERE = Path(__file__).resolve().parent
# GPU presets: their own length (CIFAR-10: 200 epochs, cosine: the budgets run separately; FineWeb:
# 5,100 steps), GPT evaluated every 25 steps (13.1M tokens) on 2M validation tokens.
GPU_SCALE = {"gpt": {"steps": 5100, **GPU_EVAL}, "image": {}}
SEEDS = {"full": [1, 2, 3], "quick": [1]}  # verdict seeds: disjoint from the tuning seed 0
FRACTIONS = {"full": (0.25, 0.5, 1.0), "quick": (0.5, 1.0)}
TUNE_BUDGET = {"full": 7, "quick": 2}  # trials per method, the same for every method
SELECT_METRIC = {"gpt": "select_loss", "image": "select_acc"}
QUICK_METHODS = {"gpt": ["adamw", "stacey_pp"], "image": ["sgd", "stacey_p2"]}
P_SWEEP = (2.0, 4.0)  # p = 3 is the main tuning
STACEY = ("stacey_p2", "stacey_pp")


def methods_of(task: str) -> dict[str, dict]:
    return load_methods(HERE / "methods.toml")[task]


def scale(mode: str, preset: str, task: str) -> list[str]:
    return protocol.scale(mode, preset, task, GPU_SCALE)


def maker(preset: str, task: str, out: Path, extra: list[str]):
    """``make(method, table, overrides, name)`` for geomopt.train.protocol: one run on the task's preset."""
    return protocol.task_maker(preset, task, out, "paper3", extra)


def specs(mode: str, task: str) -> dict[str, dict]:
    methods = methods_of(task)
    return {m: methods[m] for m in QUICK_METHODS[task]} if mode == "quick" else methods


def p_sweep_specs(mode: str, task: str) -> dict[str, dict]:
    """Each Stacey variant of the task at every p of ``P_SWEEP``, named ``<variant>-p<p>``."""
    methods = methods_of(task)
    return {f"{m}-p{p:g}": {**methods[m], "optim": {**methods[m]["optim"], "p": p}}
            for m in STACEY if mode == "full" or m in QUICK_METHODS[task] for p in P_SWEEP}


def describe(configs: list[TrainConfig], sp: dict[str, dict]) -> None:
    for c in configs:
        length = f"tokens={c.total_tokens}" if c.total_tokens else f"steps={c.steps}" if c.steps else f"epochs={c.epochs}"
        keys = [p.key for p in split_search(sp[c.name.split("__")[1]])[1]]
        print(f"{c.name}: task={c.task} optimizer={c.optimizer} optim={c.optim} {length}; search {keys}")


@sweep_main("paper3")
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, tiny runs")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--out", type=Path, help="results directory (default results/paper3, quick: results/quick/paper3)")
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--p-sweep", action="store_true", help=f"also tune both Stacey variants at p ∈ {P_SWEEP}")
    ap.add_argument("--cifar-dir", default="", help="CIFAR-10 python batches for --preset gpu (or $GEOMOPT_CIFAR10)")
    ap.add_argument("--fineweb-dir", default="", help="FineWeb shards for --preset gpu (or $GEOMOPT_FINEWEB)")
    add_jobs_argument(ap)
    ap.add_argument("--dry-run", action="store_true", help="print the planned searches and exit")
    ap.add_argument("--image-override", action="append", default=[], metavar="KEY=VALUE",
                    help="override applied to every image run (repeatable)")
    ap.add_argument("--gpt-override", action="append", default=[], metavar="KEY=VALUE",
                    help="override applied to every GPT run (repeatable)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    default = "quick/paper3" if args.quick else "paper3" if args.preset == "cpu" else "paper3/gpu"
    out = (args.out or REPO_ROOT / "results" / default).resolve()
    extra = {"gpt": scale(mode, args.preset, "gpt") + list(args.overrides) + list(args.gpt_override)
             + ([f'data_dir="{args.fineweb_dir}"'] if args.fineweb_dir else []),
             "image": scale(mode, args.preset, "image") + list(args.overrides) + list(args.image_override)
             + ([f'data_dir="{args.cifar_dir}"'] if args.cifar_dir else [])}
    tasks = [t for t in TASKS if t in args.tasks]
    try:
        plan = {t: (specs(mode, t), p_sweep_specs(mode, t) if args.p_sweep else {},
                    maker(args.preset, t, out, extra[t])) for t in tasks}
        probe = {t: [make(m, split_search(s)[0], [], f"check__{m}") for m, s in {**sp, **ps}.items()]  # validates all
                 for t, (sp, ps, make) in plan.items()}
    except (ConfigError, ValueError) as e:
        print(f"paper3: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        for t, (sp, ps, _) in plan.items():
            print(f"# {t}: {len(sp)} methods × {TUNE_BUDGET[mode]} trials (selected on {SELECT_METRIC[t]}), then seeds "
                  f"{SEEDS[mode]} at budgets {FRACTIONS[mode]} -> {task_dir(out, t)}"
                  + (f"; p sweep: {len(ps)} arms × {TUNE_BUDGET[mode]} trials -> tuning_p.json" if ps else ""))
            describe(probe[t], {**sp, **ps})
        return 0
    outcomes = []
    for t, (sp, ps, make) in plan.items():
        where = task_dir(out, t)
        with sweep_session(where, probe[t]) as start:
            searches = tune_methods(sp, make, TUNE_BUDGET[mode], where / "tuning.json", metric=SELECT_METRIC[t],
                                    jobs=args.jobs, since=start)
            print(f"paper3: {t} tuned " + "; ".join(f"{m}: {s.chosen}" for m, s in searches.items()), flush=True)
            done = verdict_runs(sp, make, where / "tuning.json", SEEDS[mode], FRACTIONS[mode], jobs=args.jobs,
                                since=start)
            swept = tune_methods(ps, make, TUNE_BUDGET[mode], where / "tuning_p.json", metric=SELECT_METRIC[t],
                                 jobs=args.jobs, since=start) if ps else {}
            # the p sweep is opt-in: without --p-sweep its earlier trials stay
            arms = () if ps else tuple(f"tune__{arm}__" for arm in p_sweep_specs(mode, t))
            protocol.prune_plan(where / "runs", {**searches, **swept}, done, keep_prefixes=arms)
            outcomes += done
    bad = sorted({o.name for o in outcomes if o.status == "nonfinite"})
    print(f"paper3: {len(outcomes)} runs under {out}" + (f"; diverged: {', '.join(bad)}" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
