"""Gradient transformations: applied after backward (and the DDP all-reduce), before clipping
and the optimizer step (the optax idea: a transformation in front of any optimizer).

A transform is built by a *factory* ``factory(model, **kwargs) -> transform`` where
``transform(step: int) -> None`` (``step`` = 0-based index of the optimizer step about to
be taken) edits ``p.grad`` in place for the parameters it wants
(use ``geomopt.optim.route_params(model)`` to pick the hidden matrices). A transform
with random draws keeps its own ``torch.Generator`` seeded from its kwargs (never the
global RNG: then every DDP rank draws the same numbers) and exposes ``state_dict()`` /
``load_state_dict(d)`` so that checkpoints restore it.

Register a factory with ``@register_grad_transform("name")`` (or put a
``"name": "module:attr"`` line in ``GRAD_TRANSFORMS``, imported on first use), and select
it in a config with ``grad_transform = "name"`` and a ``[grad_transform_args]`` table.
A config may also name any factory directly as ``grad_transform = "package.module:attr"``.

Chains: ``grad_transform = "cauchy_noise+shrink"`` applies the transforms left to right;
``[grad_transform_args]`` then holds one sub-table per name
(``[grad_transform_args.cauchy_noise]`` ``eps = 0.01`` ...; override as
``grad_transform_args.shrink.t=3``).

Built in (imported on first use): ``cauchy_noise`` (geomopt.noise.inject), and paper 1's
``shrink``, ``clip_norm``, ``spectral_soft_clip`` (geomopt.optim.grad_transforms, which
take a parameter list) wrapped with a ``params`` argument: ``"matrix"`` (the hidden
matrices of geomopt.optim.route_params; default for shrink and spectral_soft_clip) or
``"all"`` (every trainable parameter; default for clip_norm).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

from torch import nn


class GradTransform(Protocol):
    def __call__(self, step: int) -> None: ...


Factory = Callable[..., GradTransform]

def _param_list_transform(name: str, default_params: str) -> Factory:
    """Adapter: a ``fn(params, **kw)`` of geomopt.optim.grad_transforms as a trainer factory."""
    def factory(model: nn.Module, *, params: str = default_params, **kwargs) -> GradTransform:
        from geomopt.optim import route_params
        from geomopt.optim.grad_transforms import build_grad_transform as build_param_transform

        if params not in ("matrix", "all"):
            raise ValueError(f"{name}: params={params!r} unknown; choose matrix or all")
        chosen = (route_params(model).matrix if params == "matrix"
                  else [p for p in model.parameters() if p.requires_grad])
        fn = build_param_transform(name, **kwargs)
        return lambda step: fn(chosen)

    factory.__name__ = f"{name}_factory"
    return factory


# name -> factory, or "module:attr" of a factory (imported when first built).
GRAD_TRANSFORMS: dict[str, Factory | str] = {
    "cauchy_noise": "geomopt.noise.inject:cauchy_gradient_noise",
    "shrink": _param_list_transform("shrink", "matrix"),
    "clip_norm": _param_list_transform("clip_norm", "all"),
    "spectral_soft_clip": _param_list_transform("spectral_soft_clip", "matrix"),
    # Further transforms: add a "name": "module:factory" line here.
}


def register_grad_transform(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        GRAD_TRANSFORMS[name] = factory
        return factory

    return deco


def resolve_factory(name: str) -> Factory:
    """The factory registered as ``name`` (or at ``"module:attr"``); ValueError naming the choices."""
    target = GRAD_TRANSFORMS.get(name, name if ":" in name else None)
    if target is None:
        raise ValueError(f"grad_transform {name!r} unknown; choose one of: {', '.join(GRAD_TRANSFORMS) or '(none registered)'}"
                         " or give 'package.module:factory'")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            target = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"grad_transform {name!r}: cannot import {module}:{attr} ({e})") from None
    return target


class Chain:
    """Transforms applied left to right; checkpoints hold each one's state."""

    def __init__(self, parts: list[GradTransform]):
        self.parts = parts

    def __call__(self, step: int) -> None:
        for part in self.parts:
            part(step)

    def state_dict(self) -> list:
        return [part.state_dict() if hasattr(part, "state_dict") else None for part in self.parts]

    def load_state_dict(self, states: list) -> None:
        for part, state in zip(self.parts, states):
            if state is not None:
                part.load_state_dict(state)


def build_grad_transform(name: str, model: nn.Module, kwargs: dict[str, Any]) -> GradTransform | None:
    """Build the configured transform ("" = none; "a+b" = a chain with one kwargs table per
    name); unknown names and bad kwargs raise ValueError/TypeError."""
    if not name:
        return None
    names = name.split("+")
    if len(names) == 1:
        return resolve_factory(name)(model, **kwargs)
    extra = set(kwargs) - set(names)
    if extra or not all(isinstance(kwargs.get(n, {}), dict) for n in names):
        raise ValueError(f"grad_transform {name!r} is a chain: grad_transform_args takes one table per "
                         f"transform ([grad_transform_args.{names[0]}] ...), got keys {sorted(kwargs)}")
    return Chain([resolve_factory(n)(model, **kwargs.get(n, {})) for n in names])
