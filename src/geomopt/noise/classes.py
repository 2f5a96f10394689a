"""The four parameter classes of the noise diagnostic, read off the optimizer routing.

``geomopt.optim.routing`` is the one place that decides which parameters are hidden
matrices, and it names the classes too, because paper 1's noise differs there: the rows
of an embedding belong to tokens (rare tokens make rare, large rows) and the output
layer's rows too, while gains and biases are vectors.

    embeddings  nn.Embedding weights (token and position tables; a tied head counts here)
    head        the output layer (lm_head / classifier), as routing names it
    hidden      the hidden matrices (Muon's parameters), conv filters included
    gains       norm gains, biases and scalars
"""

from __future__ import annotations

from torch import nn

from geomopt.optim.routing import PARAM_CLASSES, route_params

__all__ = ["PARAM_CLASSES", "parameter_classes"]


def parameter_classes(model: nn.Module) -> dict[str, str]:
    """Parameter name (as ``model.named_parameters()`` gives it) -> its class, in model order."""
    return route_params(model).classes
