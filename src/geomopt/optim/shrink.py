"""Entry-wise shrink functions ψ for paper 1 (Song, Bai, Zhang, Bullins, Gleich, 2026).

**Reconstructed (paper text not available).** The paper's full text is not public;
its abstract says that "smooth shrinkage" is a tractable surrogate of the
Bayes-optimal entry-wise estimator under a Gaussian signal prior and
Cauchy-contaminated noise. Spec §2.3–2.4 rebuilds that estimator from theory
(Tweedie's formula, Voigt profile) and this module holds the surrogate and the
clip functions the spec asks to compare, all with one threshold ``t`` in units of
the inlier scale, and a linear slope (1, or κ = σ_s²/(σ_s² + τ²)) kept selectable:

* ``hard``:       slope · clip(y, −t, t)
* ``soft``:       slope · y / √(1 + (y/t)²)            (scalar analogue of SPECTRA's soft clip)
* ``redescend``:  slope · y / (1 + (y/t)²)
* ``smooth``:     r(y) · κ y + (1 − r(y)) · 2σ_s² y / (y² + γ_e²)   (spec §2.4)

For ``smooth`` the inlier scale is 1 (y is already divided by an RMS-type scale),
σ_s² = slope (so κ = slope), γ_e² = γ² + σ_s², and the contamination rate ε is
implied by putting the gate r = ½ exactly at ``t``; then the log-odds of the gate is
``(t² − y²)/2 + log((y² + γ_e²)/(t² + γ_e²))`` — a difference of log-densities, so
nothing overflows (never exp(y²/2v)). ``bayes_surrogate`` is the same curve in the
physical parameters (σ_s, τ, γ, ε) of spec §2.3; the exact posterior mean it
approximates lives in ``geomopt.noise.bayes`` (numpy/scipy, used by the checks).

Every ``*_`` function works in place on ``y`` (the optimizers call them on scratch
buffers so that nothing is allocated per step); the plain names return new tensors.
Non-finite entries are the caller's business (see ``zero_nonfinite_``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

PSI_NAMES = ("hard", "soft", "redescend", "smooth")


def check_psi(psi: str | None) -> str | None:
    """Canonical ψ name (None for no shrinkage); ValueError naming the choices otherwise."""
    if psi is None or psi == "none":
        return None
    if psi not in PSI_NAMES:
        raise ValueError(f"shrink function psi={psi!r} unknown; choose one of: none, {', '.join(PSI_NAMES)}")
    return psi


def check_threshold(t: float, slope: float, gamma: float = 1.0) -> None:
    if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        raise ValueError(f"shrink threshold t must be a finite number > 0 (inlier-scale units), got {t!r}")
    if not (isinstance(slope, (int, float)) and 0 < slope <= 1):
        raise ValueError(f"linear slope must be in (0, 1] (1, or κ = σ_s²/(σ_s²+τ²)), got {slope!r}")
    if not (isinstance(gamma, (int, float)) and gamma > 0):
        raise ValueError(f"Cauchy width gamma must be > 0, got {gamma!r}")


def zero_nonfinite_(x: Tensor) -> Tensor:
    """NaN/±inf entries -> 0: a non-finite gradient entry carries no information, so it is
    dropped rather than allowed into Adam's moments or Muon's momentum."""
    if torch.compiler.is_compiling():  # the same map as a compare (NaN fails it too): Inductor's CPU isnan is a scalar loop
        return x.copy_(torch.where(x.abs() <= torch.finfo(x.dtype).max, x, 0.0))
    return x.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def _work(y: Tensor, work: list[Tensor] | None, k: int) -> list[Tensor]:
    if work is None:
        return [torch.empty_like(y) for _ in range(k)]
    return [w[: y.numel()].view_as(y) if w.shape != y.shape else w for w in work[:k]]


def hard_clip_(y: Tensor, t: float, slope: float = 1.0) -> Tensor:
    y.clamp_(-t, t)
    return y.mul_(slope) if slope != 1.0 else y


def soft_clip_(y: Tensor, t: float, slope: float = 1.0, work: list[Tensor] | None = None) -> Tensor:
    (w,) = _work(y, work, 1)
    torch.mul(y, y, out=w)
    w.mul_(1.0 / (t * t)).add_(1.0).rsqrt_()  # 1/√(1 + (y/t)²)
    if slope != 1.0:
        w.mul_(slope)
    return y.mul_(w)


def redescend_(y: Tensor, t: float, slope: float = 1.0, work: list[Tensor] | None = None) -> Tensor:
    (w,) = _work(y, work, 1)
    torch.mul(y, y, out=w)
    w.mul_(1.0 / (t * t)).add_(1.0)
    if slope != 1.0:
        w.mul_(1.0 / slope)
    return y.div_(w)


def _smooth_constants(t: float, slope: float, gamma: float) -> tuple[float, float, float]:
    """(σ_s², γ_e², C) for the gate in the variable q = (y² + γ_e²)/(2σ_s²), where the log-odds
    (t² − y²)/2 + log(y² + γ_e²) − log(t² + γ_e²) becomes log q − σ_s² q + C and the
    redescending branch 2σ_s² y/(y² + γ_e²) becomes y/q."""
    sigma2 = slope
    gamma_e2 = gamma * gamma + sigma2
    const = 0.5 * (t * t + gamma_e2) + math.log(2.0 * sigma2) - math.log(t * t + gamma_e2)
    return sigma2, gamma_e2, const


def smooth_shrink_(y: Tensor, t: float, slope: float = 1.0, gamma: float = 1.0,
                   work: list[Tensor] | None = None) -> Tensor:
    """Spec §2.4 in inlier units (v = 1, σ_s² = κ = slope), gate r = ½ at |y| = t."""
    q, r = _work(y, work, 2)
    sigma2, gamma_e2, const = _smooth_constants(t, slope, gamma)
    offset = torch.full((), gamma_e2 / (2.0 * sigma2), dtype=y.dtype, device=y.device)
    torch.addcmul(offset, y, y, value=0.5 / sigma2, out=q)  # q = (y² + γ_e²)/(2σ_s²)
    q.clamp_(max=torch.finfo(q.dtype).max / 4)  # finite even where y² overflows
    # r = sigmoid(log q − σ_s² q + C) = q / (q + e^{−C}·exp(σ_s² q)): one exp instead of a log and a
    # sigmoid. Where exp overflows to inf, r = q/inf = 0 — the limit — never NaN (q is finite).
    torch.mul(q, sigma2, out=r).exp_()
    torch.add(q, r, alpha=math.exp(-const), out=r)
    torch.div(q, r, out=r)
    torch.div(y, q, out=q)  # redescending branch 2σ_s² y/(y² + γ_e²)
    if slope != 1.0:
        y.mul_(slope)
    return torch.lerp(q, y, r, out=y)  # r·κy + (1 − r)·tail


def apply_psi_(y: Tensor, psi: str, t: float, slope: float = 1.0, gamma: float = 1.0,
               work: list[Tensor] | None = None) -> Tensor:
    """ψ applied in place to ``y``; ``work``: up to two scratch tensors with ≥ y.numel() entries."""
    if psi == "hard":
        return hard_clip_(y, t, slope)
    if psi == "soft":
        return soft_clip_(y, t, slope, work)
    if psi == "redescend":
        return redescend_(y, t, slope, work)
    if psi == "smooth":
        return smooth_shrink_(y, t, slope, gamma, work)
    raise ValueError(f"shrink function psi={psi!r} unknown; choose one of: {', '.join(PSI_NAMES)}")


def apply_psi_foreach_(ys: list[Tensor], psi: str, t: float, slope: float = 1.0, gamma: float = 1.0) -> list[Tensor]:
    """``apply_psi_`` on a list of tensors with ``torch._foreach_*`` ops (few kernel launches on a
    GPU; temporaries are allocated, which the CUDA caching allocator makes cheap)."""
    if psi == "hard":
        torch._foreach_clamp_min_(ys, -t)
        torch._foreach_clamp_max_(ys, t)
    elif psi in ("soft", "redescend"):
        w = torch._foreach_mul(ys, ys)
        torch._foreach_mul_(w, 1.0 / (t * t))
        torch._foreach_add_(w, 1.0)
        if psi == "soft":
            torch._foreach_rsqrt_(w)
            torch._foreach_mul_(ys, w)
        else:
            torch._foreach_div_(ys, w)
    elif psi == "smooth":
        sigma2, gamma_e2, const = _smooth_constants(t, slope, gamma)
        q = torch._foreach_mul(ys, ys)  # q = (y² + γ_e²)/(2σ_s²), as in smooth_shrink_
        torch._foreach_add_(q, gamma_e2)
        torch._foreach_mul_(q, 0.5 / sigma2)
        torch._foreach_clamp_max_(q, torch.finfo(ys[0].dtype).max / 4)
        r = torch._foreach_mul(q, sigma2)  # r = q / (q + e^{−C}·exp(σ_s² q)), as in smooth_shrink_
        torch._foreach_exp_(r)
        torch._foreach_mul_(r, math.exp(-const))
        torch._foreach_add_(r, q)
        r = torch._foreach_div(q, r)
        q = torch._foreach_div(ys, q)
        if slope != 1.0:
            torch._foreach_mul_(ys, slope)
        torch._foreach_lerp_(q, ys, r)  # r·κy + (1 − r)·tail
        torch._foreach_copy_(ys, q)
        return ys
    else:
        raise ValueError(f"shrink function psi={psi!r} unknown; choose one of: {', '.join(PSI_NAMES)}")
    if slope != 1.0:
        torch._foreach_mul_(ys, slope)
    return ys


def psi_work_buffers(psi: str | None) -> int:
    """How many scratch tensors ``apply_psi_`` needs for ``psi``."""
    return {"soft": 1, "redescend": 1, "smooth": 2}.get(psi, 0)


# Pure versions (allocate their output) -------------------------------------------------

def hard_clip(y: Tensor, t: float, slope: float = 1.0) -> Tensor:
    return hard_clip_(y.clone(), t, slope)


def soft_clip(y: Tensor, t: float, slope: float = 1.0) -> Tensor:
    return soft_clip_(y.clone(), t, slope)


def redescend(y: Tensor, t: float, slope: float = 1.0) -> Tensor:
    return redescend_(y.clone(), t, slope)


def smooth_shrink(y: Tensor, t: float, slope: float = 1.0, gamma: float = 1.0) -> Tensor:
    return smooth_shrink_(y.clone(), t, slope, gamma)


def psi(y: Tensor, name: str, t: float, slope: float = 1.0, gamma: float = 1.0) -> Tensor:
    """ψ_name(y) as a new tensor (``name`` in PSI_NAMES)."""
    return apply_psi_(y.clone(), name, t, slope, gamma)


def bayes_surrogate(y: Tensor, sigma_s: float, tau: float, gamma: float, eps: float) -> Tensor:
    """Spec §2.4 in the physical parameters: y = s + n, s ~ N(0, σ_s²),
    n ~ (1−ε)N(0, τ²) + ε Cauchy(0, γ). The Voigt density of the Cauchy branch is
    replaced by a Cauchy density of width γ_e = √(γ² + σ_s²); the gate
    r̃ = sigmoid(log((1−ε)N(y; 0, v)) − log(ε Cauchy(y; 0, γ_e))) is evaluated
    from log-densities so that it never overflows. ε = 0 gives the Wiener filter κy."""
    v = sigma_s**2 + tau**2
    kappa = sigma_s**2 / v
    if eps == 0.0:
        return kappa * y
    gamma_e2 = gamma**2 + sigma_s**2
    q = y * y + gamma_e2
    log_gauss = math.log1p(-eps) - 0.5 * math.log(2 * math.pi * v) - y * y / (2 * v)
    log_cauchy = math.log(eps) + 0.5 * math.log(gamma_e2) - math.log(math.pi) - torch.log(q)
    r = torch.sigmoid(log_gauss - log_cauchy)
    return torch.lerp(2 * sigma_s**2 * y / q, kappa * y, r)
