"""The one place that decides which parameters are "hidden matrices".

Hidden matrices (Muon, DeVA-S∞, clip-then-Muon) are the 2-D weights of the
network's body. Everything else goes to AdamW: token/position embeddings, the
output layer (lm_head / classifier), norm gains, biases and scalars. Conv
filters (4-D) are hidden matrices too, viewed as (out, in·k·k); a matrix
optimizer that cannot take them must refuse them with a clear error.

The same pass names each parameter's *class* (paper 1's noise differs between them; the noise
diagnostic and ShrinkAdamW's ``shrink_classes`` use them):

    embeddings  nn.Embedding weights (token and position tables; a tied head counts here)
    head        the output layer (lm_head / classifier)
    hidden      the hidden matrices (Muon's parameters), conv filters included
    gains       norm gains, biases and scalars
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

# Module names (last dotted component) treated as the output layer.
OUTPUT_LAYER_NAMES = ("lm_head", "head", "fc", "classifier", "linear_out")
PARAM_CLASSES = ("embeddings", "head", "hidden", "gains")


@dataclass
class ParamRoutes:
    matrix: list[nn.Parameter] = field(default_factory=list)  # hidden 2-D (and conv) weights
    embed_head: list[nn.Parameter] = field(default_factory=list)  # embeddings and output layer (decayed)
    no_decay: list[nn.Parameter] = field(default_factory=list)  # norms, biases, scalars
    names: dict[str, str] = field(default_factory=dict)  # parameter name -> route
    classes: dict[str, str] = field(default_factory=dict)  # parameter name -> class (PARAM_CLASSES)
    by_class: dict[str, list[nn.Parameter]] = field(default_factory=lambda: {c: [] for c in PARAM_CLASSES})


def route_params(model: nn.Module, output_layers: tuple[str, ...] = OUTPUT_LAYER_NAMES) -> ParamRoutes:
    """Split ``model``'s trainable parameters into the three routes (each parameter once,
    tied weights included)."""
    routes, seen = ParamRoutes(), set()
    for mod_name, module in model.named_modules():
        last = mod_name.rsplit(".", 1)[-1]
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if isinstance(module, nn.Embedding):
                route, cls = "embed_head", "embeddings"
            elif last in output_layers and p.ndim >= 2:
                route, cls = "embed_head", "head"
            elif p.ndim >= 2:
                route, cls = "matrix", "hidden"
            else:
                route, cls = "no_decay", "gains"
            getattr(routes, route).append(p)
            routes.names[full], routes.classes[full] = route, cls
            routes.by_class[cls].append(p)
    return routes


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """View a weight as a matrix: conv filters (out, in, kh, kw) -> (out, in·kh·kw)."""
    if t.ndim < 2:
        raise ValueError(f"a parameter of shape {tuple(t.shape)} is not a matrix; route it to AdamW instead")
    return t.reshape(t.shape[0], -1)
