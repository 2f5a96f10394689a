"""Run a list of training runs one after another, resumably: the sweep behind every
paper's ``experiments/paperN/run.py``.

A sweep is a *session* (``sweep_session(out_dir)``): a marker file records when it began
and is removed when it ends. Within a session, a run whose metrics file is complete with
the same config is skipped and a run with a checkpoint resumes from it — so a killed
``make reproduce-paperN`` continues where it stopped, bit for bit. Files older than the
session (e.g. the committed results of a fresh clone) are retrained, never reused: a
reproduction reproduces. A run that diverges (non-finite loss) is recorded as such and
the sweep goes on — divergence is a result, not a crash.

Before a session opens, every run's config has been validated (``from_dict``) and its data
found on disk (``check_data``): a bad input stops the sweep with one line before anything
is written. Progress is one display (``geomopt.progress``): runs done / total, the current
run, the overall ETA. A paper's ``main`` wrapped in ``@sweep_main("paperN")`` turns a bad
input into one line and exit 2, and Ctrl-C into one line and exit 130 (the session stays
open, so the same command resumes).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from geomopt.data import DataMissing
from geomopt.optim import get_spec
from geomopt.progress import Progress
from geomopt.results import REPO_ROOT, _jsonable, read_run
from geomopt.train.config import ConfigError, TrainConfig, apply_overrides, check_data, from_dict
from geomopt.train.loop import NonFiniteLoss
from geomopt.train.tune import split_search


@dataclass
class SweepOutcome:
    name: str
    path: Path
    status: str  # completed | nonfinite | skipped (already complete)
    seconds: float


def _same_config(meta_config: dict | None, cfg: TrainConfig) -> bool:
    if not isinstance(meta_config, dict):
        return False
    ours = json.loads(json.dumps(_jsonable(dataclasses.asdict(cfg))))
    # a key added to TrainConfig after the run was written takes its default (e.g. ``classes``)
    meta_config = {**json.loads(json.dumps(_jsonable(dataclasses.asdict(TrainConfig())))), **meta_config}
    # run control, not science; ``out`` too: a run file is found by its path, and the committed results of a
    # clone at another path (every fresh clone) must be read back, not trained again
    ignore = ("progress", "device", "max_steps_per_call", "data_dir", "checkpoint_dir", "checkpoint_every", "out")
    return {k: v for k, v in meta_config.items() if k not in ignore} == {k: v for k, v in ours.items()
                                                                        if k not in ignore}


def as_overrides(table: dict, prefix: str = "") -> list[str]:
    """A TOML table of a method as dotted ``key=value`` overrides (sub-tables become ``optim.lr=...``)."""
    out = []
    for k, v in table.items():
        if isinstance(v, dict) and not prefix:
            out += as_overrides(v, f"{k}.")
        else:
            out.append(f"{prefix}{k}={toml_value(v)}")
    return out


def toml_value(v) -> str:
    """A Python value as the TOML text an override takes."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def method_config(preset: Path, method: dict, overrides: list[str], name: str, out_dir: Path,
                  paper: str) -> TrainConfig:
    """One run of a method table on a preset.

    The optimizer tables follow one rule: a method that keeps the preset's optimizer keeps its
    ``[optim]``; another whole-model method starts from the preset's AdamW settings
    (``[adamw]``); a matrix method (Muon, DeVA-S∞, ...) takes only its own ``[optim]`` and keeps
    ``[adamw]`` for its AdamW half. Runs write ``out_dir/runs/<name>.jsonl``; checkpoints go to
    ``checkpoints/<paper>/<out_dir name>-<hash of out_dir>/<name>`` so that a test's tiny run never
    resumes into a real one.
    """
    method, _ = split_search(method)  # the search table is the tuner's, not a config key
    raw = tomllib.loads(Path(preset).read_text())
    preset_optim = raw.pop("optim", {})
    if method.get("optimizer", raw.get("optimizer")) == raw.get("optimizer"):
        raw["optim"] = dict(preset_optim)
    elif not get_spec(method["optimizer"]).matrix:
        raw["optim"] = dict(raw.get("adamw", {}))
    tag = hashlib.sha1(str(Path(out_dir).resolve()).encode()).hexdigest()[:8]
    ckpt = REPO_ROOT / "checkpoints" / paper / f"{Path(out_dir).name}-{tag}"
    over = as_overrides(method) + list(overrides) + [
        f"name={json.dumps(name)}", f"out={json.dumps(f'{out_dir}/runs/{{name}}.jsonl')}",
        f"checkpoint_dir={json.dumps(f'{ckpt}/{{name}}')}", "progress=false"]
    return from_dict(apply_overrides(raw, over))


def completed(cfg: TrainConfig) -> bool:
    """True if ``cfg``'s metrics file holds a finished run (completed or diverged) of this exact config."""
    try:
        meta, _ = read_run(cfg.out_path)
    except (OSError, ValueError):
        return False
    return meta.get("status") in ("completed", "nonfinite") and _same_config(meta.get("config"), cfg)


@contextmanager
def sweep_session(out_dir: Path, configs: list[TrainConfig] = ()):
    """Yields the session's start time: that of an interrupted session into ``out_dir`` (its
    marker is still there), else now. The marker is removed only when the body succeeds.
    The data of every one of ``configs`` is checked first: a missing dataset opens no session."""
    for cfg in configs:
        check_data(cfg)
    marker = Path(out_dir) / ".sweep-in-progress"
    marker.parent.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.touch()
    yield marker.stat().st_mtime
    marker.unlink(missing_ok=True)


def _since(path: Path, start: float) -> bool:
    return path.exists() and os.path.getmtime(path) >= start


def add_jobs_argument(ap) -> None:
    """The ``--jobs`` option of every paper's run.py (see ``run_sweep``)."""
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="runs at a time, each with one thread when > 1 (default: 2 on a machine with 2+ cores)")


def sweep_main(prog: str):
    """Decorator for a paper's ``main(argv) -> int``: ConfigError / DataMissing -> one line on
    stderr and exit 2; Ctrl-C -> one line and exit 130 (the sweep resumes on the next call)."""
    def wrap(main):
        @functools.wraps(main)
        def guarded(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except (ConfigError, DataMissing) as e:
                print(f"{prog}: {e}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print(f"{prog}: interrupted; run the same command again to resume", file=sys.stderr)
                return 130
        return guarded
    return wrap


def run_sweep(configs: list[TrainConfig], since: float = 0.0, log=print, jobs: int = 1,
              budgets: tuple[float, ...] | None = None) -> list[SweepOutcome]:
    """Train ``configs`` in order. Results and checkpoints written before ``since`` (the session
    start from ``sweep_session``) are not reused: those runs train from scratch. ``jobs`` > 1
    trains that many runs at a time, each in its own process with one thread (on a small model
    two one-thread runs beat one two-thread run). Every config and its data are checked before
    the first run starts; ``log`` gets one line per finished run when stderr is not a terminal.
    ``budgets`` (fractions, e.g. (0.25, 0.5, 1.0)): each config is a budget group
    (``geomopt.train.budget``) and yields one outcome per budget, shortest first."""
    configs = [from_dict(dataclasses.asdict(c)) for c in configs]  # validate every field set in Python
    for cfg in configs:
        check_data(cfg)
    outcomes = []
    with Progress(len(configs), "sweep", log) as progress:
        for group in _outcomes(configs, since, jobs, progress, budgets):
            outcomes += group
            what = _describe(group[0]) if len({(o.status, o.seconds) for o in group}) == 1 else \
                "; ".join(f"{o.name}: {_describe(o)}" for o in group)
            progress.finish(group[-1].name, (f"{len(group)} budgets " if len(group) > 1 else "") + what,
                            notable=any(o.status == "nonfinite" for o in group))
    return outcomes


def _outcomes(configs: list[TrainConfig], since: float, jobs: int, progress: Progress, budgets=None):
    """Each config's outcomes (a list) in order, trained here or ``jobs`` at a time in worker processes."""
    if jobs <= 1 or len(configs) <= 1:
        for cfg in configs:
            progress.start(cfg.name)
            yield _train_group(cfg, since, budgets)
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init)
    try:
        results = pool.map(_train_group, configs, repeat(since), repeat(budgets))
        for cfg in configs:
            progress.start(cfg.name)
            yield next(results)
    except BaseException:  # Ctrl-C or a failed run: stop the other runs now (their checkpoints stay)
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_init() -> None:
    """A sweep worker: one thread, and Ctrl-C is the parent's to handle (it stops the workers).
    tqdm gets a thread lock: its default multiprocessing lock is a named semaphore that a
    stopped worker would leave behind (a "leaked semaphore" warning at exit)."""
    import threading

    import torch
    from tqdm import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    tqdm.set_lock(threading.RLock())


def _describe(o: SweepOutcome) -> str:
    if o.status == "skipped":
        return f"up to date ({o.path})"
    return f"{'diverged' if o.status == 'nonfinite' else o.status} in {o.seconds:.0f} s"


def _train_group(cfg: TrainConfig, since: float, budgets=None) -> list[SweepOutcome]:
    """One run, or with ``budgets`` its budget group: skipped when every budget finished in this
    session, else trained whole (``run_budgets``: shorter budgets branch off the long run). If the
    long run diverges, each budget not yet finished is trained as a separate run: before the branch
    point it diverges the same way, after it a shorter run may well finish."""
    if not budgets:
        return [_train(cfg, since)]
    from geomopt.train.budget import budget_configs, run_budgets

    group = budget_configs(cfg, budgets)
    if all(_since(c.out_path, since) and completed(c) for c in group):
        return [SweepOutcome(c.name, c.out_path, "skipped", 0.0) for c in group]
    t0 = time.perf_counter()
    try:
        run_budgets(cfg, budgets, command=" ".join(sys.argv))
    except NonFiniteLoss:  # finished budgets keep their status (completed / nonfinite); the rest train alone
        return [SweepOutcome(c.name, c.out_path, _status(c), 0.0) if completed(c) else _train(c, math.inf)
                for c in group]
    dt = time.perf_counter() - t0
    return [SweepOutcome(c.name, c.out_path, "completed", dt) for c in group]


def _status(cfg: TrainConfig) -> str | None:
    try:
        return read_run(cfg.out_path)[0].get("status")
    except (OSError, ValueError):
        return None


def _train(cfg: TrainConfig, since: float) -> SweepOutcome:
    from geomopt.train import run

    if _since(cfg.out_path, since) and completed(cfg):
        return SweepOutcome(cfg.name, cfg.out_path, "skipped", 0.0)
    resume = _since(cfg.checkpoint_path, since)
    t0 = time.perf_counter()
    try:
        path = run(cfg, resume=resume, command=" ".join(sys.argv))
        status = "completed"
    except NonFiniteLoss:
        path, status = cfg.out_path, "nonfinite"
    return SweepOutcome(cfg.name, Path(path), status, time.perf_counter() - t0)


def prune_runs(run_dir: Path, keep: set[str], log=print) -> list[Path]:
    """Remove the run files under ``run_dir`` whose name is not in ``keep`` (runs of an older plan: a
    reproduction's results are exactly its own runs); returns what was removed."""
    stale = sorted(p for p in Path(run_dir).glob("*.jsonl") if p.stem not in keep)
    for p in stale:
        p.unlink()
    if stale:
        log(f"removed {len(stale)} run file(s) of an older plan from {run_dir}")
    return stale
