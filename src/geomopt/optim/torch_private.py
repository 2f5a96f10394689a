"""Every private torch API the optimizers use, in one place, checked once at import.

torch does not promise to keep underscore names. We rely on a few because they are exactly the
math we want to share with torch (Muon's functional step and Newton–Schulz, AdamW's functional
step) or the machinery torch.optim itself uses (grouping tensors by device and dtype). Each is imported here and checked against the signature we call it
with; if a torch upgrade renames or changes one, importing ``geomopt.optim`` fails with one line
naming the API, the torch version it was written for and the fix, instead of a confusing error
deep inside a step. Import these names from here, never from ``torch`` directly (still direct,
to be moved here by its owner: orthogonalize.py, and two tests).
"""

from __future__ import annotations

import importlib
import inspect

import torch

TESTED_TORCH = "2.13"  # the torch minor version these names and signatures were checked against

# (module, attribute, parameters our calls pass by name; None: a constant, not a function)
_PRIVATE = {
    "muon_step": ("torch.optim._muon", "muon", ("lr", "weight_decay", "momentum", "nesterov", "ns_coefficients",
                                                "eps", "ns_steps", "adjust_lr_fn", "has_complex")),
    "zeropower_via_newtonschulz": ("torch.optim._muon", "_zeropower_via_newtonschulz", ()),
    "adjust_lr": ("torch.optim._muon", "_adjust_lr", ()),
    "NS_A": ("torch.optim._muon", "DEFAULT_A", None),
    "NS_B": ("torch.optim._muon", "DEFAULT_B", None),
    "NS_C": ("torch.optim._muon", "DEFAULT_C", None),
    "adamw_step": ("torch.optim.adamw", "adamw", ("foreach", "fused", "lr", "weight_decay", "eps", "maximize",
                                                  "capturable", "differentiable", "grad_scale", "found_inf",
                                                  "has_complex", "amsgrad", "beta1", "beta2")),
    "group_tensors_by_device_and_dtype": ("torch.utils._foreach_utils", "_group_tensors_by_device_and_dtype", ()),
}


class TorchPrivateAPIError(ImportError):
    pass


def _resolve(name: str):
    module, attr, params = _PRIVATE[name]
    where = f"{module}.{attr}"
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise TorchPrivateAPIError(
            f"torch {torch.__version__} has no private API {where} (geomopt was written for torch {TESTED_TORCH}.x): "
            f"pin torch=={TESTED_TORCH}.0 or update geomopt/optim/torch_private.py") from err
    if params:
        missing = [p for p in params if p not in inspect.signature(obj).parameters]
        if missing:
            raise TorchPrivateAPIError(
                f"torch {torch.__version__} changed {where}: no parameter(s) {missing} (geomopt was written for "
                f"torch {TESTED_TORCH}.x): pin torch=={TESTED_TORCH}.0 or update geomopt/optim/torch_private.py")
    return obj


muon_step = _resolve("muon_step")
zeropower_via_newtonschulz = _resolve("zeropower_via_newtonschulz")
adjust_lr = _resolve("adjust_lr")
NS_COEFFICIENTS = (_resolve("NS_A"), _resolve("NS_B"), _resolve("NS_C"))
adamw_step = _resolve("adamw_step")
group_tensors_by_device_and_dtype = _resolve("group_tensors_by_device_and_dtype")

