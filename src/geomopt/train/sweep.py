"""Run a list of training runs one after another, resumably: the sweep behind every
paper's ``experiments/paperN/run.py``.

A run whose metrics file is complete with the same config is skipped; a run with a
checkpoint resumes from it (so a killed ``make reproduce-paperN`` continues where it
stopped, bit for bit); a run that diverges (non-finite loss) is recorded as such and
the sweep goes on — divergence is a result, not a crash.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from geomopt.results import _jsonable, read_run
from geomopt.train.config import TrainConfig, from_dict
from geomopt.train.loop import NonFiniteLoss


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
    ignore = ("progress", "device", "max_steps_per_call", "data_dir")  # run control, not science
    return {k: v for k, v in meta_config.items() if k not in ignore} == {k: v for k, v in ours.items()
                                                                        if k not in ignore}


def completed(cfg: TrainConfig) -> bool:
    """True if ``cfg``'s metrics file holds a finished run (completed or diverged) of this exact config."""
    try:
        meta, _ = read_run(cfg.out_path)
    except (OSError, ValueError):
        return False
    return meta.get("status") in ("completed", "nonfinite") and _same_config(meta.get("config"), cfg)


def run_sweep(configs: list[TrainConfig], log=print) -> list[SweepOutcome]:
    from geomopt.train import run

    outcomes = []
    for i, cfg in enumerate(configs, 1):
        cfg = from_dict(dataclasses.asdict(cfg))  # validate every field set in Python
        tag = f"[sweep {i}/{len(configs)}] {cfg.name}"
        if completed(cfg):
            log(f"{tag}: up to date ({cfg.out_path})")
            outcomes.append(SweepOutcome(cfg.name, cfg.out_path, "skipped", 0.0))
            continue
        resume = cfg.checkpoint_path.exists()
        log(f"{tag}: {'resuming' if resume else 'training'} -> {cfg.out_path}")
        t0 = time.perf_counter()
        try:
            path = run(cfg, resume=resume, command=" ".join(sys.argv))
            status = "completed"
        except NonFiniteLoss as e:
            log(f"{tag}: diverged ({e})")
            path, status = cfg.out_path, "nonfinite"
        outcomes.append(SweepOutcome(cfg.name, Path(path), status, time.perf_counter() - t0))
        log(f"{tag}: {status} in {outcomes[-1].seconds:.0f} s")
    return outcomes
