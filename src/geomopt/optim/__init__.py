"""The papers' optimizers as torch.optim classes, and the one registry the trainer builds from.

One file per optimizer family: pure math functions, then a thin ``Optimizer`` class.
"""

from geomopt.optim.registry import OPTIMIZERS, OptimizerSpec, build_optimizers, get_spec
from geomopt.optim.routing import ParamRoutes, route_params

__all__ = ["OPTIMIZERS", "OptimizerSpec", "ParamRoutes", "build_optimizers", "get_spec", "route_params"]
