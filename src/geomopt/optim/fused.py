"""Fused optimizer steps: one ``torch.compile``d elementwise function per parameter group.

An elementwise optimizer step (Lion, signSGD, DeVA-ℓ∞, Stacey, ...) run eagerly reads and writes
every state tensor once per torch op; compiled over the whole parameter list, Inductor fuses each
tensor's ops into one loop (C++/OpenMP on CPU, Triton on GPU), so the step costs about what
torch's fused AdamW costs. This module is the one place that decides when to compile, keeps the
compiled functions, and falls back to eager.

How an optimizer opts in
------------------------
1. Write the step as a pure function over tensor lists that updates them in place, e.g.::

       def lion_kernel(params, grads, ms, *, lr, beta1, beta2, weight_decay, decay):
           for p, g, m in zip(params, grads, ms):
               ...

   - *Hyperparameters that may change between steps* (lr, betas, eps, bias corrections) are
     keyword arguments the function uses only in tensor arithmetic (``p.add_(c, alpha=-lr)``,
     ``1 - lr * wd``), never in Python ``if``s: eagerly they are floats, compiled they arrive as
     0-d float64 tensors on the parameters' device, so a scheduler changing lr never recompiles.
     A per-tensor value (e.g. a bias correction from each tensor's step count) is a list of floats.
   - *Structural options* (flags, names, an exponent whose value selects a kernel, e.g. Stacey's
     p) are keyword arguments the function may branch on; each distinct value compiles once.
   - It may return a value (e.g. DeVA-ℓ∞'s gains); returning tensors costs an extra write each.
2. In ``step``, per parameter group (tensors of one device and dtype)::

       fused_step(lion_kernel, [params, grads, ms], hyper=dict(lr=..., beta1=...),
                  static=dict(decay=wd != 0), fused=group["fused"])

   and give the optimizer a ``fused: bool | None = None`` option stored in its param groups.
3. Test the compiled path against eager: ``fused=True`` vs ``fused=False`` within 1e-6 relative
   (tests/test_fused.py shows how).

When the compiled path runs (``use_fused``)
-------------------------------------------
- ``GEOMOPT_FUSED=0`` in the environment forces eager everywhere; ``GEOMOPT_FUSED=1`` compiles
  every group that has a compiler (even small ones, e.g. in tests).
- ``fused=False``: eager. ``fused=True``: compiled when a compiler exists (a warning once if not).
- ``fused=None`` (default): compiled when a compiler exists and the group holds at least
  ``AUTO_MIN_NUMEL`` (16.8M) elements. The compile costs 5–20 s per group on CPU (more on a
  loaded machine); on this repo's 2-core CPU the compiled step saves ≈ 3–4 ms per million
  parameters per step, so a 16M-parameter group pays the compile back within a few hundred
  steps, while the CPU-scale models here (≤ ~1M parameters per group) would not in a whole run
  and keep their eager, bit-reproducible steps. A run sets ``optim.fused=true`` (or false) in its
  config to decide explicitly: the trainer passes it to the optimizer.
- A compiler exists when ``torch.compile`` can emit code for the device: a C++ compiler on CPU,
  Triton on CUDA. If compiling still fails, the error is reported once and that kernel runs
  eagerly from then on.

Compile once, no recompiles
---------------------------
Shapes are static (``dynamic=False``): a group's shapes never change during a run, and static
shapes give the best kernels. Each (kernel, structural options, device, dtypes, shapes) key gets
its own compiled copy of the function, so parameter groups of different sizes never trigger each
other's recompiles nor share torch's per-function recompile limit. ``compile_seconds()`` lists
what each first call (trace + compile + run) cost; the benches report it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
import types
import warnings
from typing import Any, Callable

import torch

from geomopt.optim.torch_private import group_tensors_by_device_and_dtype

FUSED_ENV = "GEOMOPT_FUSED"
AUTO_MIN_NUMEL = 1 << 24  # elements in a group below which fused=None stays eager (see use_fused)

_compiled: dict[tuple, Callable] = {}
_failed: set[Callable] = set()
_compile_seconds: dict[str, float] = {}
_available: dict[str, bool] = {}


def compiler_available(device_type: str = "cpu") -> bool:
    """Can ``torch.compile`` (Inductor) generate code for this device type here?"""
    if device_type not in _available:
        if device_type == "cpu":
            ok = any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)
        elif device_type == "cuda":
            ok = importlib.util.find_spec("triton") is not None
        else:
            ok = False
        _available[device_type] = ok and hasattr(torch, "compile")
    return _available[device_type]


def use_fused(fused: bool | None, tensors: list[torch.Tensor]) -> bool:
    """The rule in the module docstring: compile this group's step or run it eagerly?"""
    env = os.environ.get(FUSED_ENV, "")
    if env not in ("", "0", "1"):
        raise ValueError(f"{FUSED_ENV}={env!r}: use 0 (always eager), 1 (compile whenever possible) or leave it unset")
    if env == "0" or fused is False or not tensors:
        return False
    if not compiler_available(tensors[0].device.type):
        if fused:
            warnings.warn(f"fused=True but torch.compile has no compiler for {tensors[0].device.type} here; "
                          "running the eager step", stacklevel=3)
        return False
    return bool(fused) or env == "1" or sum(t.numel() for t in tensors) >= AUTO_MIN_NUMEL


def _signature(tensor_lists: list[list[torch.Tensor]]) -> tuple:
    # a list may hold None where a tensor is unused by the kernel's options (e.g. ShrinkAdamW's
    # per-entry state under a global warm-up)
    return tuple(None if t is None else (t.device.type, t.dtype, tuple(t.shape), t.stride())
                 for ts in tensor_lists for t in ts)


def _compiled_for(kernel: Callable, key: tuple) -> Callable:
    """One compiled copy of ``kernel`` per key: a fresh code object has its own torch.compile cache."""
    if key not in _compiled:
        copy = types.FunctionType(kernel.__code__.replace(), kernel.__globals__, kernel.__name__,
                                  kernel.__defaults__, kernel.__closure__)
        copy.__kwdefaults__ = kernel.__kwdefaults__
        _compiled[key] = torch.compile(copy, fullgraph=True, dynamic=False)
    return _compiled[key]


def _as_tensors(hyper: dict[str, Any], device: torch.device) -> dict[str, Any]:
    def one(v):
        return torch.tensor(float(v), dtype=torch.float64, device=device)

    return {k: [one(x) for x in v] if isinstance(v, (list, tuple)) else one(v) for k, v in hyper.items()}


def fused_step(kernel: Callable, tensor_lists: list[list[torch.Tensor]], hyper: dict[str, Any],
               static: dict[str, Any] | None = None, fused: bool | None = None) -> Any:
    """``kernel(*tensor_lists, **hyper, **static)``, compiled or eager as ``use_fused`` decides.
    All tensors must share one device (group them first, as torch.optim does)."""
    static = static or {}
    if kernel in _failed or not use_fused(fused, tensor_lists[0]):
        return kernel(*tensor_lists, **hyper, **static)
    key = (kernel, tuple(sorted(static.items())), _signature(tensor_lists))
    first = key not in _compiled
    compiled = _compiled_for(kernel, key)
    t0 = time.perf_counter()
    try:
        out = compiled(*tensor_lists, **_as_tensors(hyper, tensor_lists[0][0].device), **static)
    except Exception as err:  # no working compiler after all: eager from now on, said once
        if not first:
            raise
        _failed.add(kernel)
        warnings.warn(f"torch.compile failed for {kernel.__name__} ({type(err).__name__}: {str(err)[:200]}); "
                      "running it eagerly", stacklevel=2)
        return kernel(*tensor_lists, **hyper, **static)
    if first:
        options = ", ".join(f"{k}={v}" for k, v in sorted(static.items()))
        name = f"{kernel.__name__}({options})[{len(tensor_lists[0])} tensors]"
        _compile_seconds[name] = _compile_seconds.get(name, 0.0) + time.perf_counter() - t0
    return out


def by_device_and_dtype(tensor_lists: list[list[torch.Tensor]]) -> list[list[list[torch.Tensor]]]:
    """``tensor_lists`` split into sub-lists whose tensors share one device and dtype (as torch.optim groups)."""
    if len({(t.device, t.dtype) for t in tensor_lists[0]}) <= 1:
        return [tensor_lists]
    return [lists for lists, _ in group_tensors_by_device_and_dtype(tensor_lists).values()]


def compile_seconds() -> dict[str, float]:
    """Seconds spent in each compiled kernel's first call (trace, compile, first run), by kernel."""
    return dict(_compile_seconds)


def compiled_count() -> int:
    """How many compiled copies exist (one per kernel × options × group signature)."""
    return len(_compiled)
