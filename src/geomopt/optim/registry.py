"""Optimizers by name: the trainer and every experiment build from here.

A *matrix* optimizer (Muon, clip-then-Muon, DeVA-S∞) gets the hidden matrices
only; the rest of the model goes to AdamW with ``adamw_*`` hyperparameters. A
*whole-model* optimizer (AdamW, SGD, ShrinkAdamW, Lion, Stacey, ...) gets every
parameter, with weight decay off for norms, biases and scalars.

``shrink_classes`` (a routing key, not a constructor argument) restricts a whole-model shrink
optimizer (one with a ``psi`` hyper-parameter: ShrinkAdamW) to some parameter classes
(``routing.PARAM_CLASSES``: embeddings, head, hidden, gains): the other classes go to param
groups with ``psi=None``, which is plain AdamW (``[optim] shrink_classes = ["embeddings", "head"]``).

One source of defaults: an optimizer's class is where its default hyper-parameters
live. An entry here only *overrides* a few of them, and only for a reason:
- a variant switch that makes the entry an ablation (``second_moment="gradient"``, ...);
- for classes whose signature is torch's (AdamW, SGD, Muon and its subclasses), the house
  settings that differ from torch's; ShrinkAdamW takes AdamW's, so the pair differs only in ψ.
An override never restates a class default, and never sets lr, betas, weight_decay or momentum
of a class whose signature is ours (change the class instead); tests/test_registry.py checks it.
``spec.defaults`` is what a build with no hyper-parameters gives: the class's own defaults
with the overrides on top.

Entries name their class as ``"module:attr"`` and are imported on first use, so
this file depends on nothing but torch.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from geomopt.optim.routing import PARAM_CLASSES, ParamRoutes, route_params

SCALE_KEYS = ("lr", "betas", "weight_decay", "momentum")  # set by the class, not by an entry (see above)
ROUTING_KEYS = ("shrink_classes",)  # read by build_optimizers (module doc), never passed to the class


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    target: str  # "module:attr" of the torch.optim.Optimizer subclass
    matrix: bool  # True: hidden matrices only, AdamW for the rest
    overrides: dict[str, Any] = field(default_factory=dict)  # the only settings the entry adds to the class's
    description: str = ""

    def cls(self):
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def defaults(self) -> dict[str, Any]:
        """The hyper-parameters a build with none given uses: the class's defaults, then the overrides."""
        return {**class_defaults(self.cls()), **self.overrides}


def class_defaults(cls) -> dict[str, Any]:
    """The defaults the class itself records (its ``defaults`` on a stand-in 2×2 parameter)."""
    return dict(cls([torch.zeros(2, 2, requires_grad=True)]).defaults)


ADAMW_HOUSE = {"betas": (0.9, 0.95), "weight_decay": 0.1}  # torch's AdamW: lr 1e-3, eps 1e-8 kept
MUON_HOUSE = {"lr": 0.02, "weight_decay": 0.0}  # torch's Muon: momentum 0.95, Nesterov kept

OPTIMIZERS: dict[str, OptimizerSpec] = {
    s.name: s
    for s in [
        OptimizerSpec("adamw", "torch.optim:AdamW", False, ADAMW_HOUSE, "torch.optim.AdamW"),
        OptimizerSpec("sgd", "torch.optim:SGD", False,
                      {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
                      "torch.optim.SGD with Nesterov momentum"),
        OptimizerSpec("muon", "geomopt.optim.muon:Muon", True, MUON_HOUSE,
                      "torch.optim.Muon (conv filters as matrices) on hidden matrices, AdamW elsewhere"),
        # Paper 1 (Reconstructed): entry-wise shrinkage in front of AdamW / Muon. The remedies as plain
        # gradient transforms (shrink, clip_norm, spectral_soft_clip) are in geomopt.optim.grad_transforms.
        OptimizerSpec("shrink_adamw", "geomopt.optim.shrink_adamw:ShrinkAdamW", False, ADAMW_HOUSE,
                      "AdamW with entry-wise smooth shrinkage of g scaled by sqrt(v_hat) (pre-clipping)"),
        OptimizerSpec("clip_muon", "geomopt.optim.clip_muon:ClipMuon", True, MUON_HOUSE,
                      "entry-wise clip (rank-1 row x column geometric-mean scale) before Muon's momentum + Newton-Schulz"),
        # Paper 3 (Stacey; the class holds the public code's defaults: lr = τ = α = 1e-3, p = 3, WD 5e-4)
        # and the shared Lion baseline.
        OptimizerSpec("stacey_p2", "geomopt.optim.stacey:StaceyP2", False, {},
                      "Stacey(p,2): ℓp primal step, Euclidean dual step, whole model"),
        OptimizerSpec("stacey_pp", "geomopt.optim.stacey:StaceyPP", False, {},
                      "Stacey(p,p): ℓp primal step, ℓp mirror dual step, whole model"),
        OptimizerSpec("lion", "geomopt.optim.lion:Lion", False, {}, "Lion (Chen et al. 2023), whole model"),
        # Paper 2 (DeVA): the classes hold the public code's defaults; variants are the spec §2 ablations.
        OptimizerSpec("deva_linf", "geomopt.optim.deva:DevaLinf", False, {},
                      "DeVA-ℓ∞ (public-code rule: v of m², eps 1e-5 in the √, no bias correction), whole model"),
        OptimizerSpec("deva_linf_gsq", "geomopt.optim.deva:DevaLinf", False, {"second_moment": "gradient"},
                      "DeVA-ℓ∞, v tracks g²"),
        OptimizerSpec("deva_linf_bc", "geomopt.optim.deva:DevaLinf", False, {"bias_correction": True},
                      "DeVA-ℓ∞ with bias correction"),
        OptimizerSpec("deva_linf_eps_out", "geomopt.optim.deva:DevaLinf", False,
                      {"eps": 1e-8, "eps_inside_sqrt": False}, "DeVA-ℓ∞ with eps 1e-8 outside the √"),
        OptimizerSpec("deva_sinf", "geomopt.optim.deva:DevaSinf", True, {},
                      "DeVA-S∞ (Γ in SOAP's eigenbasis ⊙ msign) on hidden matrices, AdamW elsewhere"),
        OptimizerSpec("deva_sinf_noeig", "geomopt.optim.deva:DevaSinf", True, {"basis": "identity"},
                      "DeVA-S∞ with Γ in the original basis (Q = Id)"),
        OptimizerSpec("deva_sinf_gamma1", "geomopt.optim.deva:DevaSinf", True, {"gain": "none"},
                      "DeVA-S∞ with Γ ≡ 1 (Muon at update RMS 0.2)"),
        OptimizerSpec("deva_sinf_inst", "geomopt.optim.deva:DevaSinf", True, {"gain": "instantaneous"},
                      "DeVA-S∞ with r, c from the rotated gradient instead of the momentum"),
        OptimizerSpec("deva_sinf_signstab", "geomopt.optim.deva:DevaSinf", True, {"sign_stabilized": True},
                      "DeVA-S∞ with O = msign(sign(N)) (AdaMuon-style)"),
        OptimizerSpec("soap", "geomopt.optim.soap:SOAP", True, {},
                      "SOAP (Vyas et al. 2024) on hidden matrices, AdamW elsewhere (as Muon and DeVA-S∞)"),
        OptimizerSpec("signsgd", "geomopt.optim.signsgd:SignSGD", False, {}, "signSGD with EMA momentum, whole model"),
        OptimizerSpec("adamuon", "geomopt.optim.adamuon:AdaMuon", True, {},
                      "AdaMuon (msign(sign(m)) with an EMA of O², RMS 0.2) on hidden matrices, AdamW elsewhere"),
    ]
}


def did_you_mean(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (difflib), or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def get_spec(name: str) -> OptimizerSpec:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} unknown{did_you_mean(name, OPTIMIZERS)} "
                         f"(choose one of: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name]


def accepted_hparams(cls) -> list[str] | None:
    """The keyword arguments ``cls(params, **kw)`` takes, following ``**kwargs`` up the MRO
    (ClipMuon -> Muon -> torch.optim.Muon); None when some class takes any keyword."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is torch.optim.Optimizer:
            continue
        params = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[2:]  # self, params
        names += [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def _check_hparams(spec: OptimizerSpec, hparams: dict[str, Any]) -> dict[str, Any]:
    """The spec's overrides updated with ``hparams``; ValueError for a key the optimizer's
    constructor does not take (with the closest one) or a bad lr."""
    accepted = accepted_hparams(spec.cls())
    if "shrink_classes" in hparams:
        _check_shrink_classes(spec, accepted, hparams["shrink_classes"])
    for key in hparams:
        if key in ROUTING_KEYS:
            continue
        if accepted is not None and key not in accepted:
            raise ValueError(f"optimizer {spec.name!r} has no hyper-parameter {key!r}{did_you_mean(key, accepted)} "
                             f"(accepted: {', '.join(accepted)})")
    merged = {**spec.overrides, **hparams}  # the class fills in the rest from its own defaults
    lr = merged.get("lr", 0.0)
    if not isinstance(lr, (int, float)) or lr < 0:
        raise ValueError(f"optimizer {spec.name}: lr must be a number >= 0, got {lr!r}")
    return merged


def _check_shrink_classes(spec: OptimizerSpec, accepted: list[str] | None, classes: Any) -> None:
    if spec.matrix or accepted is None or "psi" not in accepted:
        raise ValueError(f"optimizer {spec.name!r} takes no shrink_classes (only a whole-model optimizer with a psi "
                         f"hyper-parameter does, e.g. shrink_adamw); drop the key")
    if not (isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes)):
        raise ValueError(f"shrink_classes must be a non-empty list of class names ({', '.join(PARAM_CLASSES)}), "
                         f"got {classes!r}")
    for c in classes:
        if c not in PARAM_CLASSES:
            raise ValueError(f"shrink_classes: class {c!r} unknown{did_you_mean(c, PARAM_CLASSES)} "
                             f"(choose from: {', '.join(PARAM_CLASSES)})")


def whole_model_groups(routes: ParamRoutes, shrink_classes: list[str] | None = None) -> list[dict[str, Any]]:
    """Param groups of a whole-model optimizer: decayed and (weight_decay 0) norms/biases/scalars; with
    ``shrink_classes``, each split once more into the chosen classes and the rest (``psi=None``)."""
    decayed = [{"params": routes.matrix + routes.embed_head}, {"params": routes.no_decay, "weight_decay": 0.0}]
    if shrink_classes is None:
        return [g for g in decayed if g["params"]]
    chosen = {id(p) for c in shrink_classes for p in routes.by_class[c]}
    groups = []
    for group in decayed:
        groups.append({**group, "params": [p for p in group["params"] if id(p) in chosen]})
        groups.append({**group, "params": [p for p in group["params"] if id(p) not in chosen], "psi": None})
    return [g for g in groups if g["params"]]


def check_hparams(name: str, hparams: dict[str, Any]) -> None:
    """Raise ValueError (one line) if ``name`` is unknown or ``hparams`` has a key it does not take."""
    _check_hparams(get_spec(name), hparams)


def build_optimizers(name: str, model: nn.Module, hparams: dict[str, Any] | None = None,
                     adamw_hparams: dict[str, Any] | None = None) -> list[torch.optim.Optimizer]:
    """Optimizers for ``model``: ``[opt]`` for a whole-model optimizer, ``[matrix_opt, adamw]``
    for a matrix optimizer. Weight decay is never applied to norms, biases and scalars."""
    spec = get_spec(name)
    hp = _check_hparams(spec, hparams or {})
    shrink_classes = hp.pop("shrink_classes", None)
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
    return [spec.cls()(whole_model_groups(routes, shrink_classes), **hp)]
