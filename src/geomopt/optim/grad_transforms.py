"""Gradient transformations in front of any optimizer (the optax idea), and their one registry.

A transformation edits ``p.grad`` in place after backward (and the DDP all-reduce), before
``grad_clip`` and the optimizer step, the way ``torch.nn.utils.clip_grad_norm_`` does. Two layers:

* functions over a parameter list, usable on their own: ``shrink_grads_`` (paper 1's entry-wise
  shrink, **Reconstructed**, spec §2.4/§2.6: ``G ← s · ψ(G/s; t)``), ``clip_grad_norm_``,
  ``spectral_soft_clip_grads_`` (SPECTRA pre-clip);
* the registry the trainer and clip-then-Muon build from: ``GRAD_TRANSFORMS`` maps a name to a
  *factory* ``factory(model, **kwargs) -> transform`` with ``transform(step: int) -> None``
  (``step`` = 0-based index of the optimizer step about to be taken), or to ``"module:attr"`` of
  one (imported on first use). A transform with random draws keeps its own ``torch.Generator``
  (never the global RNG, so every DDP rank draws the same numbers); one with draws or running
  statistics (the spectral clips' EMA of σ₁) exposes ``state_dict()`` / ``load_state_dict(d)`` so
  that checkpoints restore it.

====================== ==========================================================================
name                   transform (``params``: which parameters; route_params(model) classes)
====================== ==========================================================================
``shrink``             ``shrink_grads_(psi="smooth", t=3.0, scale="rowcol_geo")``, params="matrix"
``clip_norm``          ``clip_grad_norm_(max_norm=1.0)`` (torch's global-norm clip), params="all"
``spectral_soft_clip`` ``SpectralSoftClip(c=0.1)`` or ``(c_rel=...)``: c = c_rel·EMA σ₁ (SPECTRA), "matrix"
``spectral_clip``      ``SpectralClip(kappa=2.0, beta=0.99)``: σ ≤ κ·EMA σ₁ (arXiv 2605.11838), "matrix"
``cauchy_noise``       ``geomopt.noise.inject:cauchy_gradient_noise`` (synthetic contamination)
====================== ==========================================================================

``params`` is ``"matrix"`` (hidden matrices), ``"embed_head"``, ``"no_decay"`` or ``"all"``.
Register more with ``@register_grad_transform("name")`` or a ``"name": "module:factory"`` line;
a config may also name a factory as ``"package.module:attr"``. ``"a+b"`` chains transforms left
to right, with one kwargs table per name. Clip-then-Muon (``ClipMuon(position="grad")``) is the
``shrink`` transform in front of Muon: it calls ``shrink_grads_`` on its gradient matrices.

Every clipping transform has ``stats()``: ``{"clip_frac": share of the units it clipped since the
last call}`` (entries for ``shrink``, matrices for the spectral clips, all-or-none for ``clip_norm``;
see ``clip_rate``); a chain prefixes each part's keys with its name. The trainer logs them.

Shrink scales (per tensor G, viewed as a matrix (rows, ·)): ``"rms"`` ‖G‖_F/√numel, ``"mad"``
1.4826·median|G|, ``"row_mad"`` the same per row, ``"col_mad"`` per column, ``"rowcol_mad"``
r_i·c_j/m (row and column MADs over the matrix MAD, refined once: a rank-1 scale for unequal
row *and* column scales), ``"rowcol_geo"`` the same rank-1 model fitted to log|G| by row and
column means (default: as accurate, ~30× cheaper), a number, or per-entry scale tensors (e.g. √v̂).
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable, Iterable, Protocol, Sequence

import torch
from torch import Tensor, nn

from geomopt.optim.clip_rate import ClipCount, count_beyond
from geomopt.optim.routing import route_params
from geomopt.optim.shrink import apply_psi_, check_psi, check_threshold, zero_nonfinite_
from geomopt.optim.spectral_clip import SpectralClip, SpectralSoftClip, spectral_soft_clip

MAD_TO_SIGMA = 1.4826  # 1/Φ⁻¹(3/4): median|x| of N(0, σ²) is σ/1.4826
MAD_SAMPLE = 65536  # entries the median is taken over (a median of 2.4M entries costs ~20% of a Muon step)
SCALES = ("rms", "mad", "row_mad", "col_mad", "rowcol_mad", "rowcol_geo")
LOG_ABS_NORMAL = -(0.5772156649015329 + math.log(2.0)) / 2  # E log|Z|, Z ~ N(0, 1): −(γ_E + log 2)/2
_TINY = 1e-30


def median_sample(g: Tensor, max_entries: int = MAD_SAMPLE) -> Tensor:
    """``g`` flattened, or for a larger tensor every k-th entry (≤ ~max_entries of them) with k
    coprime to the row length, so that every column is visited. The median of such a sample
    estimates the population median to ~1/√max_entries relative error, ample for a noise scale."""
    flat = g.reshape(-1)
    n = flat.numel()
    if n <= max_entries:
        return flat
    stride, row = n // max_entries, g.shape[-1]
    while math.gcd(stride, row) != 1:
        stride += 1
    return flat[::stride]


def _mad(a: Tensor, dim: int | None = None) -> Tensor:
    """1.4826·median of the *nonzero* entries of ``a`` = |G| (along ``dim``, or of all), 1 where there are
    none. An exactly zero gradient entry was not observed (an embedding row of a token absent from the
    batch, a dead unit): counting it would put the median of a mostly-zero row or matrix at 0 and clip
    every entry that was observed."""
    observed = a.masked_fill(a == 0, math.nan)
    med = observed.nanmedian() if dim is None else observed.nanmedian(dim=dim, keepdim=True).values
    return (MAD_TO_SIGMA * med).nan_to_num_(nan=1.0)


def _rank1_mad(a: Tensor) -> Tensor:
    """s_ij = r_i·c_j/m (row MADs × column MADs over the matrix MAD) for |G| = ``a``, then once more on a/s:
    the medians of a row mix columns of unequal scale, which biases the first pass (3·s catches 0.83% of a
    Gaussian with log-normal row and column scales after it, 0.36% after the second; 0.27% is exact)."""
    s = torch.ones((), dtype=a.dtype, device=a.device)
    for _ in range(2):
        r = a / s
        s = s * (_mad(r, 1) * _mad(r, 0) / _mad(median_sample(r))).clamp_min(_TINY)
    return s


def _rank1_geo(a: Tensor, passes: int = 2) -> Tensor:
    """s_ij = exp(ρ_i + κ_j − E log|Z|) with log|G_ij| ≈ ρ_i + κ_j + log|Z_ij|: the two-way additive fit of
    log|G| over its nonzero entries (row mean + column mean − grand mean; exact for a full matrix), a rank-1
    scale like ``rowcol_mad`` at a fraction of the cost (means instead of medians). The second pass refits
    with log|G| capped at log(3·s) of the first (a Winsorised mean in the log domain), so an outlier moves
    its row's and column's fit by at most ~log(3·s₁/s)/n; the cap moves E log|Z| by < 1e-3, ignored.
    The fit is kept as a row and a column vector, so s is the outer product of their exps (no per-entry exp).

    Written for the compiled clip (``clip_muon``): log|G| is the one per-entry transcendental and the one
    matrix-sized temporary besides the capped copy; column sums are products with a row of ones (a
    strided column reduction is several times slower on a CPU), the grand sums come from the row sums."""
    a = a.float()
    seen = a > 0
    logs = torch.where(seen, a.clamp_min(1e-38).log(), 0.0)
    w = seen.float()
    ones = torch.ones(1, a.shape[0], dtype=a.dtype, device=a.device)
    n_rows, n_cols = w.sum(1, keepdim=True), w.sum(0, keepdim=True)
    n = n_rows.sum().clamp_min(1.0)
    n_rows, n_cols = n_rows.clamp_min(1.0), n_cols.clamp_min(1.0)
    for k in range(passes):
        if k:
            logs = torch.minimum(logs, (row + math.log(3.0)) + col).mul_(w)
        # fit_ij = row_i + col_j, split so that each part stays near the log of a gradient entry or near 0
        row_sums = logs.sum(1, keepdim=True)
        row = row_sums / n_rows - LOG_ABS_NORMAL
        col = (ones @ logs) / n_cols - row_sums.sum() / n
    return row.exp() * col.exp()


def matrix_scale(g: Tensor, kind: str) -> Tensor:
    """Inlier scale of ``g`` from its nonzero entries (no host sync), floored at 1e-30, broadcastable to
    ``g``: a 0-d tensor for ``"rms"``/``"mad"``; per row / column / rank-1 (rows = first dim, the rest
    flattened) for ``"row_mad"``/``"col_mad"``/``"rowcol_mad"``/``"rowcol_geo"`` (a tensor with < 2 dims gets the
    per-tensor MAD). A row, column or tensor with no nonzero entry gets scale 1 (its entries are 0)."""
    if kind == "rms":
        s = torch.linalg.vector_norm(g) / g.numel() ** 0.5
    elif kind == "mad" or (kind in SCALES and g.ndim < 2):
        s = _mad(median_sample(g).abs())
    elif kind in ("row_mad", "col_mad", "rowcol_mad", "rowcol_geo"):
        a = g.reshape(g.shape[0], -1).abs()
        if kind == "row_mad":
            s = _mad(a, 1)  # (rows, 1)
        elif kind == "col_mad":
            s = _mad(a, 0)  # (1, cols)
        elif kind == "rowcol_mad":
            s = _rank1_mad(a)
        else:
            s = _rank1_geo(a).to(g.dtype)
        s = s.reshape(s.shape[0], *(g.shape[1:] if s.shape[1] > 1 else [1] * (g.ndim - 1)))
    else:
        raise ValueError(f"scale={kind!r} unknown; choose one of: {', '.join(SCALES)}, a number, or per-entry tensors")
    return s.clamp_min(_TINY)


def _grads(params: Iterable[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    return [p.grad for p in params if p.grad is not None]


@torch.no_grad()
def shrink_tensors_(grads: Sequence[Tensor], psi: str | None = "smooth", t: float = 3.0,
                    scale: str | float | Sequence[Tensor] = "rowcol_geo", slope: float = 1.0, gamma: float = 1.0,
                    rescale: bool = True, count: ClipCount | None = None) -> list[Tensor]:
    """``G ← s · ψ(G/s; t)`` in place on every tensor of ``grads`` (non-finite entries -> 0 first, the
    scale measured after); returns the scales used. ``psi=None``/``"none"`` only zeroes non-finite entries.
    ``count`` (optional) receives the entries beyond ±t·s out of the nonzero ones."""
    psi = check_psi(psi)
    check_threshold(t, slope, gamma)
    for g in grads:
        zero_nonfinite_(g)
    if isinstance(scale, str):
        scales = [matrix_scale(g, scale) for g in grads]
    elif isinstance(scale, (int, float)):
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        scales = [torch.tensor(float(scale), device=g.device, dtype=g.dtype) for g in grads]
    else:
        scales = list(scale)
        if len(scales) != len(grads):
            raise ValueError(f"got {len(scales)} scale tensors for {len(grads)} gradients")
    if psi is None:
        return scales
    for g, s in zip(grads, scales):
        if psi == "hard" and rescale:  # s·clamp(G/s, ±t) as clamp(G, ±t·s): no division, unclipped entries exact
            bound = s * t
            count_beyond(count, g, bound)
            g.clamp_(-bound, bound)
            if slope != 1.0:
                g.mul_(slope)
            continue
        count_beyond(count, g.div_(s), t)
        apply_psi_(g, psi, t, slope, gamma)
        if rescale:  # (Muon's momentum position: NS is scale-invariant, so ψ(G/s) is enough)
            g.mul_(s)
    return scales


def shrink_grads_(params: Iterable[Tensor] | Tensor, psi: str | None = "smooth", t: float = 3.0,
                  scale: str | float | Sequence[Tensor] = "rowcol_geo", slope: float = 1.0,
                  gamma: float = 1.0, count: ClipCount | None = None) -> list[Tensor]:
    """``shrink_tensors_`` on every ``p.grad`` (the ``shrink`` transform)."""
    return shrink_tensors_(_grads(params), psi, t, scale, slope, gamma, count=count)


@torch.no_grad()
def spectral_soft_clip_grads_(params: Iterable[Tensor] | Tensor, c: float = 0.1, iters: int = 10) -> None:
    """SPECTRA soft clip σ ↦ σ/√(1+σ²/c²) of every gradient matrix (vectors: of its norm)."""
    for g in _grads(params):
        g.copy_(spectral_soft_clip(g, c, iters))


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float = 1.0,
                    count: ClipCount | None = None) -> Tensor:
    """torch's global-norm clip (the usual LLM default), under the registry's name. ``count`` (optional)
    receives one unit per call, clipped when the total norm exceeded ``max_norm``."""
    params = [params] if isinstance(params, Tensor) else list(params)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if count is not None and any(p.grad is not None for p in params):
        count.add(total > max_norm, 1)
    return total


# The registry ------------------------------------------------------------------------------------

class GradTransform(Protocol):
    def __call__(self, step: int) -> None: ...


Factory = Callable[..., GradTransform]
PARAM_CLASSES = ("matrix", "embed_head", "no_decay", "all")


def select_params(model: nn.Module, params: str) -> list[nn.Parameter]:
    """The trainable parameters of one class of ``route_params`` (or ``"all"``)."""
    if params not in PARAM_CLASSES:
        raise ValueError(f"params={params!r} unknown; choose one of: {', '.join(PARAM_CLASSES)}")
    if params == "all":
        return [p for p in model.parameters() if p.requires_grad]
    return getattr(route_params(model), params)


class ParamListTransform:
    """``fn(params, **kwargs)`` as a transform; with ``counted``, ``fn`` also takes ``count=`` and
    ``stats()`` reports its clip rate."""

    def __init__(self, fn: Callable, params: list[Tensor], kwargs: dict[str, Any], counted: bool):
        self.fn, self.params, self.kwargs = fn, params, kwargs
        self.count = ClipCount() if counted else None

    def __call__(self, step: int) -> None:
        extra = {} if self.count is None else {"count": self.count}
        self.fn(self.params, **self.kwargs, **extra)

    def stats(self) -> dict[str, float]:
        return {} if self.count is None else self.count.read()

    def state_dict(self) -> dict | None:
        return None if self.count is None else {"count": self.count.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if self.count is not None:
            self.count.load_state_dict(state["count"])


def param_list_factory(fn: Callable, default_params: str, counted: bool = False) -> Factory:
    """A ``fn(params, **kw)`` above as a registry factory with a ``params`` class argument
    (``counted``: ``fn`` takes ``count=`` and the transform has ``stats()``)."""
    def factory(model: nn.Module, *, params: str = default_params, **kwargs) -> GradTransform:
        chosen = select_params(model, params)
        fn([], **kwargs)  # validate kwargs now (an empty list does no work)
        return ParamListTransform(fn, chosen, kwargs, counted)

    factory.__name__ = f"{fn.__name__}_factory"
    return factory


def param_class_factory(cls: type, default_params: str) -> Factory:
    """A transform class ``cls(params, **kw)`` as a registry factory with a ``params`` class argument."""
    def factory(model: nn.Module, *, params: str = default_params, **kwargs) -> GradTransform:
        return cls(select_params(model, params), **kwargs)

    factory.__name__ = f"{cls.__name__}_factory"
    return factory


GRAD_TRANSFORMS: dict[str, Factory | str] = {
    "cauchy_noise": "geomopt.noise.inject:cauchy_gradient_noise",
    "shrink": param_list_factory(shrink_grads_, "matrix", counted=True),
    "clip_norm": param_list_factory(clip_grad_norm_, "all", counted=True),
    "spectral_soft_clip": param_class_factory(SpectralSoftClip, "matrix"),
    "spectral_clip": param_class_factory(SpectralClip, "matrix"),
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
        raise ValueError(f"grad_transform {name!r} unknown; choose one of: {', '.join(GRAD_TRANSFORMS)}"
                         " or give 'package.module:factory'")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            target = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"grad_transform {name!r}: cannot import {module}:{attr} ({e})") from None
    return target


class Chain:
    """Transforms applied left to right; checkpoints hold each one's state; ``stats()`` prefixes each
    part's keys with its name (``shrink_clip_frac``)."""

    def __init__(self, parts: list[GradTransform], names: list[str] | None = None):
        self.parts = parts
        self.names = names or [str(i) for i in range(len(parts))]

    def __call__(self, step: int) -> None:
        for part in self.parts:
            part(step)

    def state_dict(self) -> list:
        return [part.state_dict() if hasattr(part, "state_dict") else None for part in self.parts]

    def load_state_dict(self, states: list) -> None:
        for part, state in zip(self.parts, states):
            if state is not None:
                part.load_state_dict(state)

    def stats(self) -> dict[str, float]:
        return {f"{name}_{k}": v for name, part in zip(self.names, self.parts) if hasattr(part, "stats")
                for k, v in part.stats().items()}


def build_grad_transform(name: str, model: nn.Module, kwargs: dict[str, Any] | None = None) -> GradTransform | None:
    """The configured transform ("" = none; "a+b" = a chain with one kwargs table per name);
    unknown names and bad kwargs raise ValueError/TypeError."""
    kwargs = kwargs or {}
    if not name:
        return None
    names = name.split("+")
    if len(names) == 1:
        return resolve_factory(name)(model, **kwargs)
    extra = set(kwargs) - set(names)
    if extra or not all(isinstance(kwargs.get(n, {}), dict) for n in names):
        raise ValueError(f"grad_transform {name!r} is a chain: grad_transform_args takes one table per "
                         f"transform ([grad_transform_args.{names[0]}] ...), got keys {sorted(kwargs)}")
    return Chain([resolve_factory(n)(model, **kwargs.get(n, {})) for n in names], names)
