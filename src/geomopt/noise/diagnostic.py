"""``python -m geomopt noise CONFIG.toml [key=value ...] [options]``: is this model's gradient
noise in paper 1's regime, and where?

Builds the model and data the trainer builds from the config (``Trainer``: the same Task,
model, optimizer and schedule), trains a short run and, at a few points of it, measures the
minibatch gradient noise per parameter class against a Gaussian surrogate of the same
per-entry scales (``geomopt.noise.per_class``). Prints the table and a one-line reading,
writes ``noise.json`` (the results format, with provenance) and ``noise.png`` / ``.pdf``.

Options:
  --steps N       length of the measured run in optimizer steps (default 50; the config's own
                  length when shorter; 0 = the config's length). Sets steps=N: the config's
                  schedule compressed to N steps, its warm-up scaled by the same factor.
  --init-only     measure at initialization only (no training)
  --points LIST   percentages of the run to measure at (default 0,25,50,100)
  --samples n     minibatches whose noise is measured (default 8, >= 4)
  --large K       minibatches of the large-batch mean gradient ḡ (default 8)
  --seed S        seed of the shuffles and surrogates (the run's seed is the config's)
  --out DIR       where to write (default results/noise/<config stem>/ with the default
                  options and no overrides, else results/quick/noise/<config stem>/)

Exit codes: 0 done, 2 bad arguments, config or missing data (one line on stderr, nothing
written or trained).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

DEFAULTS = {"steps": 50, "points": "0,25,50,100", "samples": 8, "large": 8, "seed": 0}
USAGE = "usage: python -m geomopt noise CONFIG.toml [key=value ...] [--steps N] [--init-only] [--points 0,25,50,100] " \
        "[--samples n] [--large K] [--seed S] [--out DIR]"


def measure_over_run(trainer, fractions: list[float], large: int, samples: int, seed: int = 0,
                     say=lambda msg: None) -> dict[str, dict]:
    """Train ``trainer`` (a ``geomopt.train.Trainer``) to each fraction of its run and measure there.
    The measurement's minibatches are drawn and then the sampler is rewound, so that the run
    trains on exactly the batches a plain run would."""
    from geomopt.noise.per_class import measure

    task = trainer.task

    def draw():
        return task.next_batch()  # one optimizer step's micro-batches

    def loss_fn(model, batch):
        return sum(task.loss(model, x, y) for x, y in batch) / len(batch)

    points = {}
    for frac in fractions:
        target = int(round(frac * trainer.total_steps))
        while trainer.step < target:
            trainer.train_step(check=False)
        sampler = task.state_dict()
        table = measure(trainer.model, loss_fn, draw, large=large, samples=samples, seed=seed + trainer.step)
        task.load_state_dict(sampler)
        points[f"{100 * frac:g}%"] = {"step": trainer.step, **table}
        say(f"noise: measured at step {trainer.step} of {trainer.total_steps}")
    return points


def _fmt(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "—" if math.isnan(x) else str(x)


def format_table(points: dict[str, dict]) -> str:
    """The per-class table of every point: each statistic with its Gaussian surrogate in brackets."""
    head = ("point", "step", "class", "params", "α̂ (surr)", "α̂ of N/s (surr)", "Hill (surr)", "L/L_G (surr)",
            "cut 3·MAD (surr)", "cut 3·s (surr)", "reading")
    rows = [head]
    pair = lambda r, k, x="": f"{_fmt(r[k])}{x} ({_fmt(r[k + '_surrogate'])}{x})"  # noqa: E731
    for label, p in points.items():
        for cls, r in p["classes"].items():
            verdict = ("heavy+localized" if r["clipping_helps"] else "heavy" if r["heavy_tailed"]
                       else "localized" if r["localized"] else "scales only" if r["heavy_by_scales_only"]
                       else "Gaussian-like")
            rows.append((label, str(p["step"]), cls, str(r["params"]), pair(r, "alpha"), pair(r, "alpha_std"),
                         pair(r, "hill"), pair(r, "L_over_LG"), pair(r, "clip_cut", "×"),
                         pair(r, "clip_cut_entry", "×"), verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"noise: {message}; {USAGE}", file=sys.stderr)
        sys.exit(2)


def _parse(argv: list[str]) -> argparse.Namespace:
    ap = _Parser(prog="python -m geomopt noise", add_help=False)
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    ap.add_argument("--init-only", action="store_true")
    ap.add_argument("--points", default=DEFAULTS["points"])
    ap.add_argument("--samples", type=int, default=DEFAULTS["samples"])
    ap.add_argument("--large", type=int, default=DEFAULTS["large"])
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    try:
        args.fractions = [float(p) / 100 for p in args.points.split(",")]
    except ValueError:
        ap.error(f"--points {args.points!r} is not a comma-separated list of percentages")
    if args.init_only:
        args.fractions = [0.0]
    if not all(0 <= f <= 1 for f in args.fractions) or args.fractions != sorted(set(args.fractions)):
        ap.error(f"--points {args.points!r}: give increasing percentages in [0, 100]")
    if args.samples < 4 or args.large < 1 or args.steps < 0:
        ap.error(f"need --samples >= 4, --large >= 1, --steps >= 0 (got {args.samples}, {args.large}, {args.steps})")
    return args


def _is_standard(args: argparse.Namespace) -> bool:
    """Default options and no overrides: the run whose record may live under results/noise/."""
    return not args.overrides and not args.init_only and all(getattr(args, k) == v for k, v in DEFAULTS.items())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    args = _parse(argv)
    from geomopt.data import DataMissing
    from geomopt.results import REPO_ROOT, run_meta, write_json
    from geomopt.train.config import ConfigError, load_config, to_dict
    from geomopt.train.loop import Trainer

    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    command = "python -m geomopt noise " + shlex.join(argv)
    base = [*args.overrides, "progress=false", "checkpoint_every=0", "max_steps_per_call=0"]
    try:
        cfg = load_config(args.config, base)
        trainer = Trainer(cfg, command=command)
        own = trainer.total_steps
        if args.steps and own > args.steps:  # the short run: the config's schedule compressed to N steps
            warmup = round(cfg.warmup_steps * args.steps / own)
            cfg = load_config(args.config, [*base, f"steps={args.steps}", "total_tokens=0", "epochs=0",
                                            f"warmup_steps={warmup}"])
            trainer = Trainer(cfg, command=command)
    except (ConfigError, DataMissing) as e:
        print(f"noise: {e}", file=sys.stderr)
        return 2
    stem = Path(args.config).stem
    out_dir = args.out or (REPO_ROOT / "results" / ("noise" if _is_standard(args) else "quick/noise") / stem)
    say(f"noise: {stem}: {sum(p.numel() for p in trainer.model.parameters()):,} parameters, "
        f"{trainer.total_steps} steps; measuring at {args.points if not args.init_only else '0'}% "
        f"({args.samples} minibatches against a mean of {args.large})")
    meta = {**run_meta(cfg.seed, to_dict(cfg), command),
            "settings": {k: getattr(args, k) for k in ("steps", "samples", "large", "seed", "points", "init_only")}}
    t0 = time.perf_counter()
    points = measure_over_run(trainer, args.fractions, args.large, args.samples, args.seed, say)
    meta["seconds"] = round(time.perf_counter() - t0, 1)  # training and measuring, after the data is loaded
    from geomopt.noise.per_class import RULE, reading

    last = points[list(points)[-1]]
    line = reading(last["classes"])
    write_json(out_dir / "noise.json", {"config": str(args.config), "total_steps": trainer.total_steps,
                                        "rule": RULE, "reading": line, "points": points, "meta": meta})
    from geomopt.report.fig_noise import draw_noise_classes

    draw_noise_classes(points, out_dir / "noise", title=f"{stem}: gradient noise per parameter class")
    print(format_table(points))
    print(f"\nreading at {list(points)[-1]} (step {last['step']}): {line}")
    print(f"rule: {RULE}")
    say(f"noise: wrote {out_dir / 'noise.json'} and {out_dir / 'noise.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
