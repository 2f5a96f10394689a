"""Verdicts at several budgets, every run annealed at its own budget (issue 12).

``budget_configs(cfg, fractions=(0.25, 0.5, 1.0))`` is the one place that turns a run into
its per-budget runs: the length scaled to a whole number of steps, every schedule field
unchanged (so ``warmdown_frac`` is relative to each run's own budget and each run decays to
``final_lr_frac`` at its own end), the name suffixed ``_b25``, ``_b50``, ``_b100``. This is
not ``geomopt.report.budget``, which reads one run's metrics at fractions of *its* budget
(no annealing there).

``run_budgets`` trains them. Under ``schedule = "warmdown"`` (warm-up, stable, decay) a
shorter run's lr equals the longest run's, bit for bit, up to the start of its own decay
(``geomopt.train.schedule.shared_steps``); init, data order and RNG streams are the same,
so up to that step the short run *is* the long run. So the long run is trained in segments
(``max_steps_per_call``) that stop at each branch step, its checkpoint there is rewritten
into the short run's (``branch_checkpoint``: config, lr, log header) and the short run
resumes from it: only its decay is trained. A test proves a branched run equal to a
separate one. With other schedules (cosine: shared only through warm-up) or ``branch=False``
the budgets are separate runs. ``run_budgets`` starts every run afresh (a killed call is
rerun whole); wiring it into the resumable sweep (geomopt.train.sweep) is left to its callers.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from geomopt.train.checkpoint import load_checkpoint, save_checkpoint
from geomopt.train.config import RUN_CONTROL_FIELDS, ConfigError, TrainConfig, from_dict, to_dict
from geomopt.train.schedule import lr_multiplier, shared_steps

LENGTH_FIELDS = ("total_tokens", "steps", "epochs")
NAMING_FIELDS = ("name", "out", "checkpoint_dir")


def budget_tag(fraction: float) -> str:
    return f"_b{round(100 * fraction)}"


def _tokens_per_step(cfg: TrainConfig) -> int:
    return cfg.batch_size * (cfg.seq_len if cfg.task == "gpt" else 1)


def planned_steps(cfg: TrainConfig) -> int:
    """Optimizer steps of a run given by ``steps`` or ``total_tokens`` (as the task counts them)."""
    if cfg.steps:
        return cfg.steps
    if cfg.total_tokens:
        return cfg.total_tokens // _tokens_per_step(cfg)
    raise ConfigError("an epochs-long run's steps depend on the dataset size; give steps or total_tokens "
                      "to branch budgets, or run them separately (branch=False)")


def budget_configs(cfg: TrainConfig, fractions=(0.25, 0.5, 1.0)) -> list[TrainConfig]:
    """One config per budget fraction (ascending), each a whole number of steps, annealed at its own end."""
    fr = sorted(set(float(f) for f in fractions))
    if not fr or not all(0 < f <= 1 for f in fr):
        raise ConfigError(f"budget fractions {list(fractions)} must lie in (0, 1]; e.g. (0.25, 0.5, 1.0)")
    if len({budget_tag(f) for f in fr}) < len(fr):
        raise ConfigError(f"budget fractions {fr} must differ by at least 1%")
    for key in ("out", "checkpoint_dir"):
        if "{name}" not in getattr(cfg, key):
            raise ConfigError(f"{key}={getattr(cfg, key)!r} lacks {{name}}: the budgets would share one file; "
                              "put {name} in it")
    out = []
    for f in fr:
        length = {}
        if cfg.epochs and not (cfg.steps or cfg.total_tokens):
            length["epochs"] = cfg.epochs * f
        else:
            steps = max(1, round(f * planned_steps(cfg)))
            length = {"steps": steps, "total_tokens": 0} if cfg.steps else {"total_tokens": steps * _tokens_per_step(cfg)}
        out.append(from_dict(to_dict(dataclasses.replace(cfg, name=cfg.name + budget_tag(f), **length))))
    return out


def branch_step(long: TrainConfig, short: TrainConfig) -> int:
    """The step at which ``short`` can start from ``long``'s checkpoint (0: it cannot): the last
    step of equal lr, at most ``short``'s last step (so that it trains and evaluates its own end)."""
    ignore = set(LENGTH_FIELDS + NAMING_FIELDS + RUN_CONTROL_FIELDS)
    a, b = to_dict(long), to_dict(short)
    differ = [k for k in a if k not in ignore and a[k] != b[k]]
    if differ:
        raise ConfigError(f"runs differ in {', '.join(differ)}, not only in length: a branch would not equal "
                          "a separate run; branch only the configs of budget_configs()")
    c = short
    shared = shared_steps(planned_steps(long), planned_steps(short), c.warmup_steps, c.schedule, c.warmdown_frac,
                          c.final_lr_frac)
    return min(shared, planned_steps(short) - 1)


def branch_checkpoint(ckpt: dict, short: TrainConfig) -> dict:
    """The long run's checkpoint at the branch step, rewritten as the short run's: its config and
    log header, and every param group's lr set to the short schedule's value for the next step
    (LambdaLR's ``initial_lr × multiplier(step)``; the long run's value there is 1 × lr)."""
    out = copy.deepcopy(ckpt)
    step, total, c = ckpt["step"], planned_steps(short), short
    mult = lr_multiplier(step, total, c.warmup_steps, c.schedule, c.warmdown_frac, c.final_lr_frac)
    for opt, sched in zip(out["optimizers"], out["schedulers"]):
        for group in opt["param_groups"]:
            group["lr"] = group["initial_lr"] * mult
        sched["_last_lr"] = [g["lr"] for g in opt["param_groups"]]
    out["config"] = to_dict(short)
    out["log_meta"] = {**ckpt["log_meta"], "config": to_dict(short), "total_steps": total,
                       "branched_from": {"name": ckpt["config"]["name"], "step": step}}
    return out


def run_budgets(cfg: TrainConfig, fractions=(0.25, 0.5, 1.0), branch: bool | None = None,
                command: str | None = None) -> list[Path]:
    """Train every budget of ``cfg``; returns the metrics paths in budget order. ``branch``
    (default: when the schedule is warmdown and the length is in steps or tokens) trains each shorter budget as a branch of the
    longest run at its decay start; otherwise as a separate run."""
    from geomopt.train import run

    configs = budget_configs(cfg, fractions)
    long, shorter = configs[-1], configs[:-1]
    if branch is None:
        branch = cfg.schedule == "warmdown" and bool(cfg.steps or cfg.total_tokens)
    if not branch:
        return [run(c, command=command) for c in configs]
    points = sorted(((branch_step(long, c), i) for i, c in enumerate(shorter)))
    paths: dict[int, Path] = {}
    done = 0
    for step, i in points:
        short = shorter[i]
        if step == 0:  # nothing shared: a separate run
            paths[i] = run(short, command=command)
            continue
        if step > done:
            run(dataclasses.replace(long, max_steps_per_call=step - done), resume=done > 0, command=command)
            done = step
        save_checkpoint(short.checkpoint_path, branch_checkpoint(load_checkpoint(long.checkpoint_path), short))
        paths[i] = run(short, resume=True, command=command)
    paths[len(shorter)] = run(dataclasses.replace(long, max_steps_per_call=0), resume=done > 0, command=command)
    return [paths[i] for i in range(len(configs))]
