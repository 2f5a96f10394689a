"""Run a list of training runs one after another, resumably: the sweep behind every
paper's ``experiments/paperN/run.py``.

A sweep is a *session* (``sweep_session(out_dir)``): a marker file records when it began
and is removed when it ends. Within a session, a run whose metrics file is complete with
the same config is skipped and a run with a checkpoint resumes from it — so a killed
``make reproduce-paperN`` continues where it stopped, bit for bit. Files older than the
session (e.g. the committed results of a fresh clone) are retrained, never reused: a
reproduction reproduces. A run that diverges (non-finite loss) is recorded as such and
the sweep goes on — divergence is a result, not a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path

from geomopt.optim import get_spec
from geomopt.results import REPO_ROOT, _jsonable, read_run
from geomopt.train.config import TrainConfig, apply_overrides, from_dict
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
    ignore = ("progress", "device", "max_steps_per_call", "data_dir", "checkpoint_dir",
              "checkpoint_every")  # run control, not science
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
def sweep_session(out_dir: Path):
    """Yields the session's start time: that of an interrupted session into ``out_dir`` (its
    marker is still there), else now. The marker is removed only when the body succeeds."""
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


def run_sweep(configs: list[TrainConfig], since: float = 0.0, log=print, jobs: int = 1) -> list[SweepOutcome]:
    """Train ``configs`` in order. Results and checkpoints written before ``since`` (the session
    start from ``sweep_session``) are not reused: those runs train from scratch. ``jobs`` > 1
    trains that many runs at a time, each in its own process with one thread (on a small model
    two one-thread runs beat one two-thread run)."""
    configs = [from_dict(dataclasses.asdict(c)) for c in configs]  # validate every field set in Python
    n = len(configs)
    if jobs > 1 and n > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            return list(pool.map(_train_one_thread, configs, [f"[sweep {i}/{n}]" for i in range(1, n + 1)],
                                 repeat(since)))
    return [_train(cfg, f"[sweep {i}/{n}]", since, log) for i, cfg in enumerate(configs, 1)]


def _train_one_thread(cfg: TrainConfig, tag: str, since: float) -> SweepOutcome:
    import torch

    torch.set_num_threads(1)
    return _train(cfg, tag, since, lambda msg: print(msg, flush=True))


def _train(cfg: TrainConfig, tag: str, since: float, log) -> SweepOutcome:
    from geomopt.train import run

    tag = f"{tag} {cfg.name}"
    if _since(cfg.out_path, since) and completed(cfg):
        log(f"{tag}: up to date ({cfg.out_path})")
        return SweepOutcome(cfg.name, cfg.out_path, "skipped", 0.0)
    resume = _since(cfg.checkpoint_path, since)
    log(f"{tag}: {'resuming' if resume else 'training'} -> {cfg.out_path}")
    t0 = time.perf_counter()
    try:
        path = run(cfg, resume=resume, command=" ".join(sys.argv))
        status = "completed"
    except NonFiniteLoss as e:
        log(f"{tag}: diverged ({e})")
        path, status = cfg.out_path, "nonfinite"
    outcome = SweepOutcome(cfg.name, Path(path), status, time.perf_counter() - t0)
    log(f"{tag}: {status} in {outcome.seconds:.0f} s")
    return outcome
