"""Optimizers by name: the trainer and every experiment build from here.

A *matrix* optimizer (Muon, clip-then-Muon, DeVA-S∞) gets the hidden matrices
only; the rest of the model goes to AdamW with ``adamw_*`` hyperparameters. A
*whole-model* optimizer (AdamW, SGD, ShrinkAdamW, Lion, Stacey, ...) gets every
parameter, with weight decay off for norms, biases and scalars.

Entries name their class as ``"module:attr"`` and are imported on first use, so
this file depends on nothing but torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from geomopt.optim.routing import route_params


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    target: str  # "module:attr" of the torch.optim.Optimizer subclass
    matrix: bool  # True: hidden matrices only, AdamW for the rest
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def cls(self):
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


ADAMW_DEFAULTS = {"lr": 1e-3, "betas": (0.9, 0.95), "weight_decay": 0.1, "eps": 1e-8}

OPTIMIZERS: dict[str, OptimizerSpec] = {
    s.name: s
    for s in [
        OptimizerSpec("adamw", "torch.optim:AdamW", False, ADAMW_DEFAULTS, "torch.optim.AdamW"),
        OptimizerSpec("sgd", "torch.optim:SGD", False,
                      {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
                      "torch.optim.SGD with Nesterov momentum"),
        OptimizerSpec("muon", "geomopt.optim.muon:Muon", True,
                      {"lr": 0.02, "momentum": 0.95, "nesterov": True, "weight_decay": 0.0},
                      "torch.optim.Muon (conv filters as matrices) on hidden matrices, AdamW elsewhere"),
        # Each paper's optimizers are added here as they land.
    ]
}


def get_spec(name: str) -> OptimizerSpec:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} unknown; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def _check_hparams(spec: OptimizerSpec, hparams: dict[str, Any]) -> dict[str, Any]:
    merged = {**spec.defaults, **hparams}
    lr = merged.get("lr", 0.0)
    if not isinstance(lr, (int, float)) or lr < 0:
        raise ValueError(f"optimizer {spec.name}: lr must be a number >= 0, got {lr!r}")
    return merged


def build_optimizers(name: str, model: nn.Module, hparams: dict[str, Any] | None = None,
                     adamw_hparams: dict[str, Any] | None = None) -> list[torch.optim.Optimizer]:
    """Optimizers for ``model``: ``[opt]`` for a whole-model optimizer, ``[matrix_opt, adamw]``
    for a matrix optimizer. Weight decay is never applied to norms, biases and scalars."""
    spec = get_spec(name)
    hp = _check_hparams(spec, hparams or {})
    routes = route_params(model)
    if spec.matrix:
        adam_spec = OPTIMIZERS["adamw"]
        ahp = _check_hparams(adam_spec, adamw_hparams or {})
        opts = []
        if routes.matrix:
            opts.append(spec.cls()(routes.matrix, **hp))
        rest = [{"params": routes.embed_head}, {"params": routes.no_decay, "weight_decay": 0.0}]
        rest = [g for g in rest if g["params"]]
        if rest:
            opts.append(adam_spec.cls()(rest, **ahp))
        return opts
    groups = [{"params": routes.matrix + routes.embed_head}, {"params": routes.no_decay, "weight_decay": 0.0}]
    return [spec.cls()([g for g in groups if g["params"]], **hp)]
