"""The protocol's runs for one comparison, in one place: every method tuned with the same trial
budget, then trained at its chosen values on the verdict seeds at the protocol's budgets.

    searches = tune_methods(specs, make, budget, out / "tuning.json", jobs=2, since=start)
    outcomes = verdict_runs(specs, make, out / "tuning.json", seeds=(1, 2, 3), fractions=(0.25, 0.5, 1.0),
                            jobs=2, since=start)

``specs``: ``{method: methods.toml table}`` (its ``search`` table is the search space);
``make(method, table, overrides, name) -> TrainConfig`` builds one run of a method.

**Tuning** (``geomopt.train.tune`` holds the rules): each method's coordinate search runs with the
same ``budget`` of seed-0 trials on the selection split. The searches of all methods advance in
lockstep: each round, every method's next grid of untried values is collected and the whole batch
is trained as one resumable sweep (``jobs`` runs at a time, one thread each), then every search is
replayed from the start on the scores known so far (the search is deterministic, so a replay takes
exactly the same path) until no search asks for more. A trial is named by its values
(``tune__<method>__<hash>``), so a killed tuning resumes: finished trials are read back, not
retrained.

**Verdict runs** train each method at its chosen values on ``seeds`` (disjoint from the tuning seed
0, so the trial that won the selection is never a verdict run). With ``fractions`` each run is a
budget group (``geomopt.train.budget``): the shorter budgets branch off the long run at the start
of their own warmdown, bit for bit, and every budget is annealed at its own end. Runs are named
``protocol__<method>__s<seed>_b<percent>``; the report's reader is
``geomopt.report.protocol.budget_verdicts``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable

from geomopt.results import REPO_ROOT
from geomopt.train.tune import (TUNING_SEED, Search, chosen, overrides, selection_score, split_search, tune,
                                write_tuning)

Make = Callable[[str, dict, list[str], str], object]
VERDICT_PREFIX = "protocol"

# What the paper runners share: the two tasks' presets, their CPU scale per mode (quick: a pipeline
# check in about a minute, not science), and where each task's results go.
PRESET_DIR = REPO_ROOT / "experiments" / "presets"
PRESETS = {"cpu": {"gpt": PRESET_DIR / "cpu/gpt_bpe_small.toml", "image": PRESET_DIR / "cpu/fashion_resnet.toml"},
           "gpu": {"gpt": PRESET_DIR / "gpu/gpt2_124m_fineweb.toml", "image": PRESET_DIR / "gpu/cifar10_resnet18.toml"}}
TASKS = ("gpt", "image")
IMAGE_STEPS = {"full": 156, "quick": 16}  # full: a third of an epoch of Fashion-MNIST
IMAGE_BATCH = 128
CPU_SCALE = {
    "full": {"gpt": {},
             "image": {"epochs": 0, "steps": IMAGE_STEPS["full"], "batch_size": IMAGE_BATCH, "schedule": "warmdown",
                       "warmdown_frac": 0.2, "warmup_steps": 12, "eval_every": IMAGE_STEPS["full"] // 4 * IMAGE_BATCH,
                       "eval_batches": 40, "log_every": 2, "checkpoint_every": 78}},
    "quick": {"gpt": {"total_tokens": 16_384, "batch_size": 8, "seq_len": 64, "n_layer": 1, "n_embd": 32,
                      "n_head": 2, "eval_every": 4_096, "eval_tokens": 2_048, "warmup_steps": 4,
                      "checkpoint_every": 0},
              "image": {"epochs": 0, "steps": IMAGE_STEPS["quick"], "batch_size": 64, "width": 4,
                        "schedule": "warmdown", "warmdown_frac": 0.2, "warmup_steps": 2, "eval_every": 512,
                        "eval_batches": 2, "log_every": 1, "checkpoint_every": 0}},
}
# GPU GPT preset: evaluated every 25 steps (13.1M tokens, ~0.5% of the run) on 2M validation tokens,
# dense enough to resolve a 2% token saving (the preset's own 125-step grid gives ~2.5%).
GPU_EVAL = {"eval_every": 13_107_200, "eval_tokens": 2_097_152}


class _Pending(Exception):
    """A search needs these trials trained before it can go on."""

    def __init__(self, batch: list[dict]):
        super().__init__(f"{len(batch)} trial(s) to train")
        self.batch = batch


def _key(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


def trial_name(method: str, values: dict) -> str:
    """A trial's run name, fixed by its values (so a resumed tuning finds its finished trials)."""
    return f"tune__{method}__{hashlib.sha1(_key(values).encode()).hexdigest()[:10]}"


def tune_methods(specs: dict[str, dict], make: Make, budget: int, path: str | Path, metric: str = "select_loss",
                 jobs: int = 1, since: float = 0.0, log=print) -> dict[str, Search]:
    """Every method's search (same ``budget``), trials trained ``jobs`` at a time; the record goes to ``path``."""
    from geomopt.train.sweep import run_sweep

    scores: dict[str, dict[str, float]] = {m: {} for m in specs}
    while True:
        searches, need = {}, []
        for m, spec in specs.items():
            _, space = split_search(spec)

            def prefetch(batch: list[dict], m=m) -> None:
                missing = [v for v in batch if _key(v) not in scores[m]]
                if missing:
                    raise _Pending(missing)

            def objective(values: dict, m=m) -> float:
                if _key(values) not in scores[m]:
                    raise _Pending([values])
                return scores[m][_key(values)]
            try:
                searches[m] = tune(space, objective, budget, prefetch=prefetch)
            except _Pending as p:
                need += [(m, v) for v in p.batch]
        if not need:
            break
        configs = [make(m, split_search(specs[m])[0], overrides(v) + ["eval_split=select", f"seed={TUNING_SEED}"],
                        trial_name(m, v)) for m, v in need]
        for (m, v), o in zip(need, run_sweep(configs, since=since, jobs=jobs, log=log)):
            scores[m][_key(v)] = math.inf if o.status == "nonfinite" else selection_score(o.path, metric)
    write_tuning(path, searches, budget, metric)
    return searches


def verdict_configs(specs: dict[str, dict], make: Make, tuning: str | Path, seeds) -> list:
    """Each method at its chosen values (the tuning record at ``tuning``) on every seed."""
    picked = chosen(tuning)
    missing = [m for m in specs if m not in picked]
    if missing:
        raise ValueError(f"{tuning}: no tuned values for {', '.join(missing)}; run the tuning first")
    return [make(m, split_search(specs[m])[0], overrides(picked[m]) + [f"seed={s}"], f"{VERDICT_PREFIX}__{m}__s{s}")
            for m in specs for s in seeds]


def verdict_runs(specs: dict[str, dict], make: Make, tuning: str | Path, seeds, fractions=(0.25, 0.5, 1.0),
                 jobs: int = 1, since: float = 0.0, log=print) -> list:
    """Train :func:`verdict_configs`, each as a budget group at ``fractions`` (``None``: one run)."""
    from geomopt.train.sweep import run_sweep

    return run_sweep(verdict_configs(specs, make, tuning, seeds), since=since, jobs=jobs, log=log,
                     budgets=fractions)


def prune_plan(run_dir: Path, searches: dict, outcomes: list, keep_prefixes: tuple[str, ...] = ()) -> list[Path]:
    """Remove the run files of an older plan from ``run_dir``: a reproduction's results are exactly its own
    tuning trials (``searches``) and verdict runs (``outcomes``), plus the opt-in runs whose names start
    with one of ``keep_prefixes`` (e.g. an earlier ``--shared-lr``). Returns what was removed."""
    from geomopt.train.sweep import prune_runs

    keep = {trial_name(m, t.values) for m, s in searches.items() for t in s.trials} | {o.name for o in outcomes}
    keep |= {p.stem for prefix in keep_prefixes for p in Path(run_dir).glob(f"{prefix}*.jsonl")}
    return prune_runs(run_dir, keep)


def load_methods(path: Path) -> dict[str, dict]:
    """A runner's methods.toml."""
    import tomllib

    return tomllib.loads(Path(path).read_text())


def task_dir(out: Path, task: str) -> Path:
    """GPT results in <out>/ (runs/, tuning.json), images in <out>/image/ (the same layout)."""
    return out if task == "gpt" else out / "image"


def scale(mode: str, preset: str, task: str, gpu: dict[str, dict]) -> list[str]:
    """The task's overrides for ``mode`` at the CPU preset, or the runner's ``gpu[task]`` table at the GPU one."""
    from geomopt.train.sweep import toml_value

    table = CPU_SCALE[mode][task] if preset == "cpu" else gpu[task]
    return [f"{k}={toml_value(v)}" for k, v in table.items()]


def task_maker(preset: str, task: str, out: Path, paper: str, extra: list[str]) -> Make:
    """:func:`maker` for one of the shared tasks at ``preset`` ("cpu" or "gpu"), writing under ``task_dir``."""
    return maker(PRESETS[preset][task], task_dir(out, task), paper, extra)


def maker(preset: str | Path, out_dir: Path, paper: str, extra: list[str] = ()) -> Make:
    """``make(method, table, overrides, name)``: one run of a methods.toml table on ``preset`` with ``extra``
    overrides first (``geomopt.train.sweep.method_config``), writing under ``out_dir``."""
    from geomopt.train.sweep import method_config

    def make(method: str, table: dict, over: list[str], name: str):
        return method_config(Path(preset), table, list(extra) + list(over), name, out_dir, paper)
    return make
