"""The four parameter classes of the noise diagnostic, read off the optimizer routing.

``geomopt.optim.routing`` is the one place that decides which parameters are hidden
matrices; this splits its other two routes once more, because paper 1's noise differs
there: the rows of an embedding belong to tokens (rare tokens make rare, large rows)
and the output layer's rows too, while gains and biases are vectors.

    embeddings  nn.Embedding weights (token and position tables; a tied head counts here)
    head        the output layer (lm_head / classifier), as routing names it
    hidden      the hidden matrices (Muon's parameters), conv filters included
    gains       norm gains, biases and scalars
"""

from __future__ import annotations

from torch import nn

from geomopt.optim.routing import route_params

PARAM_CLASSES = ("embeddings", "head", "hidden", "gains")


def parameter_classes(model: nn.Module) -> dict[str, str]:
    """Parameter name (as ``model.named_parameters()`` gives it) -> its class, in model order."""
    routes = route_params(model).names
    out = {}
    for name, route in routes.items():
        if route == "matrix":
            out[name] = "hidden"
        elif route == "no_decay":
            out[name] = "gains"
        else:  # embed_head: embedding tables vs the output layer
            module = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            out[name] = "embeddings" if isinstance(module, nn.Embedding) else "head"
    return out
