"""The trainer's gradient transformations: the one registry lives in ``geomopt.optim.grad_transforms``
(imports flow optim → train); this module re-exports it under the names the trainer has always used."""

from geomopt.optim.grad_transforms import (GRAD_TRANSFORMS, Chain, Factory, GradTransform, build_grad_transform,
                                           register_grad_transform, resolve_factory)

__all__ = ["GRAD_TRANSFORMS", "Chain", "Factory", "GradTransform", "build_grad_transform", "register_grad_transform",
           "resolve_factory"]
