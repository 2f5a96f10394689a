"""The one training loop every experiment uses (GPT on text, ResNets on images).

From the shell::

    python -m geomopt train experiments/presets/cpu/gpt.toml optim.lr=3e-3 seed=1 [--resume]
    .venv/bin/torchrun --nproc_per_node=2 -m geomopt train CONFIG.toml     # DDP (gloo / nccl)

From Python (experiment runners)::

    from geomopt.train import TrainConfig, load_config, run
    cfg = load_config("experiments/presets/cpu/gpt.toml", ["optimizer=muon", "optim.lr=0.02",
                      "name=p1_muon_s0", "out=results/paper1/runs/{name}.jsonl"])
    path = run(cfg)                      # -> Path of the metrics file (JSONL, geomopt.results format)
    meta, rows = geomopt.results.read_run(path)   # meta["status"]: completed | incomplete | nonfinite
    # or build it directly: run(TrainConfig(name="x", optimizer="adamw", optim={"lr": 1e-3}, steps=100))
    # or from a dict: run(geomopt.train.config.from_dict({...}))

Metrics rows: ``{"step", "tokens", "train_loss", "lr", ["lr_adamw"], "step_time"}`` every
``log_every`` steps and ``{"step", "tokens", "val_loss", ["val_acc"]}`` at step 0, every
``eval_every`` tokens and at the end (``tokens`` counts images for image runs). The meta
header carries the full config, seed, commit, ``total_steps``, ``world_size``, ``status``.

Errors: :class:`ConfigError` and :class:`geomopt.data.DataMissing` (exit 2 in the CLI) are
raised before anything is written; :class:`NonFiniteLoss` (exit 3) after the metrics file
records status "nonfinite". ``max_steps_per_call`` stops early with a checkpoint (status
"incomplete"); ``run(cfg, resume=True)`` continues it bit for bit.

Gradient transformations (paper 1's clipping / noise injection) run after backward and
the DDP all-reduce, before ``grad_clip`` and the optimizer step::

    from geomopt.train import register_grad_transform

    @register_grad_transform("my_noise")
    def my_noise(model, *, eps: float, scale: float, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)          # its own stream: same on every rank
        mats = geomopt.optim.route_params(model).matrix     # the hidden matrices
        def apply(step: int) -> None:
            for p in mats: p.grad.add_(...)                 # edit p.grad in place
        apply.state_dict = lambda: {"gen": gen.get_state()}        # optional: checkpointed
        apply.load_state_dict = lambda d: gen.set_state(d["gen"])
        return apply

and in the TOML: ``grad_transform = "my_noise"`` with a ``[grad_transform_args]`` table
(``eps = 0.01``...). For the CLI, the registering module must be imported: add a
``"name": "module:factory"`` line to ``geomopt.train.transforms.GRAD_TRANSFORMS`` or write
``grad_transform = "module:factory"``. Built in: ``cauchy_noise`` (geomopt.noise.inject),
``shrink``, ``clip_norm``, ``spectral_soft_clip`` (geomopt.optim.grad_transforms; a
``params = "matrix" | "all"`` argument picks the parameters). Chain them left to right with
``grad_transform = "cauchy_noise+shrink"`` and one sub-table each
(``[grad_transform_args.cauchy_noise]``, ``[grad_transform_args.shrink]``).
"""

from __future__ import annotations

from pathlib import Path

from geomopt.train.config import ConfigError, TrainConfig, from_dict, load_config
from geomopt.train.dist import DistInfo, init_distributed
from geomopt.train.loop import NonFiniteLoss, Trainer
from geomopt.train.transforms import GRAD_TRANSFORMS, register_grad_transform


def run(config: TrainConfig | dict | str | Path, resume: bool = False, command: str | None = None,
        info: DistInfo | None = None) -> Path:
    """Train one run; returns the metrics file's path. ``config`` is a TrainConfig, a dict
    (as from TOML) or a TOML path. Under torchrun it joins the process group itself."""
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = from_dict(config)
    else:  # re-read through the dict path: type-checks fields set in Python too
        import dataclasses

        config = from_dict(dataclasses.asdict(config))
    info = info if info is not None else init_distributed()
    return Trainer(config, info, resume=resume, command=command).fit()


__all__ = ["ConfigError", "GRAD_TRANSFORMS", "NonFiniteLoss", "TrainConfig", "Trainer", "from_dict",
           "load_config", "register_grad_transform", "run"]
