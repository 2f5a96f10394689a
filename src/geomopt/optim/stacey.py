"""Stacey (Luo, Bai, Li, Drineas, Zhang, Bullins, ICML 2025; arXiv 2506.06606): stochastic ℓp
steepest descent with a primal–dual coupling.

Taken from the earlier arXiv version's Algorithms 2/3 (= ICML Algorithms 1/2) and checked against
the authors' public code (spec §2.2). Per parameter, with state z (initialised to a copy of θ₀)
and m (zeros):

    c ← β1·m + (1−β1)·g                      # Lion-style interpolated momentum
    z ← z − α·c                               # dual step, Stacey(p,2): Euclidean
      (or  z ← ∇φ*(∇φ(z) − α·c),  φ = (1/p)‖·‖_p^p,  Stacey(p,p))
    θ ← τ·z + (1−τ)·(θ − η·s_ε(c)) − η·λ·θ     # primal ℓp step, coupling τ, decoupled WD on the old θ
    m ← β2·m + (1−β2)·g

s_ε(c) = c / (|c|^{(p−2)/(p−1)} + ε) is the unscaled ℓp steepest-descent direction (the paper's ε
placement; the public code's c·(|c|+ε)^{(2−p)/(p−1)} agrees only as ε → 0). p = 2 gives
c/(1+ε), p → ∞ gives sign(c). ∇φ(z) = sign(z)|z|^{p−1}, ∇φ*(w) = sign(w)|w|^{1/(p−1)}.

Step sizes. ``lr`` is the primal step η; the dual step α and the coupling τ are hyper-parameters
of their own (defaults 1e-3 each, the public code's τ = η = α = 1e-3), so that lr, tau and alpha
are tuned apart. A scheduler that scales ``lr`` scales η only (torch's convention: ``lr`` is the
one key a scheduler touches; which of η, α, τ the paper's unreleased schedules scaled is unknown,
spec §5). τ must lie in [0, 1]: at τ = 1 the ℓp step is multiplied by 1 − τ = 0.

Unlike the public code: z and m live in ``self.state`` (state_dict round-trips), param groups and
``lr`` work, ``step`` returns the loss, no per-step host sync, z is updated in place. ``fused``
(None: on for large groups where a compiler exists, ``geomopt.optim.fused``) runs ``stacey_kernel``
compiled; otherwise ``foreach`` (None: on for accelerators, off on CPU, as torch.optim decides)
picks the ``_foreach_`` path or the per-tensor path, which reuses one scratch buffer and so
allocates nothing per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from geomopt.optim.closure import closure_loss
from geomopt.optim.fused import by_device_and_dtype, fused_step, use_fused

DUAL_GEOMETRIES = ("l2", "lp")


def lp_direction(c: Tensor, p: float, eps: float) -> Tensor:
    """s_ε(c) = c / (|c|^{(p−2)/(p−1)} + ε); ε = 0 gives sign(c)|c|^{1/(p−1)} = −argmin ⟨c,Δ⟩ + ‖Δ‖_p^p/p."""
    if eps == 0.0:
        return c.sign() * c.abs().pow(1.0 / (p - 1.0))
    return c / (c.abs().pow((p - 2.0) / (p - 1.0)) + eps)


def mirror_map(z: Tensor, p: float) -> Tensor:
    """∇φ(z) = sign(z)|z|^{p−1} for φ(z) = (1/p)‖z‖_p^p."""
    return z.sign() * z.abs().pow(p - 1.0)


def inverse_mirror_map(w: Tensor, p: float) -> Tensor:
    """∇φ*(w) = sign(w)|w|^{1/(p−1)}, the inverse of ``mirror_map``."""
    return w.sign() * w.abs().pow(1.0 / (p - 1.0))


def stacey_update_(params: list[Tensor], grads: list[Tensor], zs: list[Tensor], ms: list[Tensor], *,
                   lr: float, alpha: float, tau: float, beta1: float, beta2: float, p: float, eps: float,
                   weight_decay: float, dual: str) -> None:
    """One Stacey step on lists of same-device, same-dtype tensors, in place (θ, z, m).

    Memory: c is formed in m's buffer (m ← c = lerp(g, m, β1)), and m's update is then rewritten
    in terms of c: β2·m + (1−β2)·g = lerp(c, g, (β1−β2)/β1) (exact algebra). The only temporary is
    the denominator |c|^{(p−2)/(p−1)} + ε (plus one for the (p,p) dual step).
    """
    if beta1 > 0.0:
        torch._foreach_lerp_(ms, grads, 1.0 - beta1)  # m now holds c = β1·m + (1−β1)·g
        cs = ms
    else:
        cs = grads  # c = g, only read below
    # Dual step on z (in place: z keeps its storage).
    if dual == "l2":
        torch._foreach_add_(zs, cs, alpha=-alpha)
    else:  # z ← ∇φ*(∇φ(z) − α·c)
        tmp = torch._foreach_abs(zs)
        torch._foreach_pow_(tmp, p - 2.0)
        torch._foreach_mul_(zs, tmp)  # z now holds ∇φ(z) = z·|z|^{p−2}
        torch._foreach_add_(zs, cs, alpha=-alpha)  # w
        torch._foreach_copy_(tmp, zs)
        torch._foreach_abs_(tmp)
        torch._foreach_pow_(tmp, 1.0 / (p - 1.0))
        torch._foreach_sign_(zs)
        torch._foreach_mul_(zs, tmp)  # sign(w)|w|^{1/(p−1)}
        del tmp
    # θ ← (1 − τ − ηλ)·θ − (1−τ)·η·c/(|c|^{(p−2)/(p−1)} + ε) + τ·z  (WD on the old θ)
    if tau + lr * weight_decay != 0.0:
        torch._foreach_mul_(params, 1.0 - tau - lr * weight_decay)
    if p == 2.0:  # |c|^0 = 1: s_ε(c) = c/(1+ε)
        torch._foreach_add_(params, cs, alpha=-(1.0 - tau) * lr / (1.0 + eps))
    else:
        denom = torch._foreach_abs(cs)
        torch._foreach_pow_(denom, (p - 2.0) / (p - 1.0))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, cs, denom, value=-(1.0 - tau) * lr)
        del denom
    if tau != 0.0:
        torch._foreach_add_(params, zs, alpha=tau)
    if beta1 > 0.0:
        torch._foreach_lerp_(ms, grads, (beta1 - beta2) / beta1)  # β2·m_old + (1−β2)·g, from c
    else:
        torch._foreach_lerp_(ms, grads, 1.0 - beta2)


def stacey_update_single_(param: Tensor, grad: Tensor, z: Tensor, m: Tensor, scratch: Tensor, *, lr: float,
                          alpha: float, tau: float, beta1: float, beta2: float, p: float, eps: float,
                          weight_decay: float, dual: str) -> None:
    """The same step for one tensor, in place, with ``scratch`` (≥ param.numel() elements, same device
    and dtype) as the only temporary: the per-tensor path allocates nothing per step, which is what
    makes it the faster path on CPU (torch's own CPU default is the for-loop, too)."""
    buf = scratch[: param.numel()].view_as(param)
    if beta1 > 0.0:
        c = m.lerp_(grad, 1.0 - beta1)  # m holds c = β1·m + (1−β1)·g
    else:
        c = grad
    if dual == "l2":
        z.add_(c, alpha=-alpha)
    else:  # z ← ∇φ*(∇φ(z) − α·c)
        torch.abs(z, out=buf).pow_(p - 2.0)
        z.mul_(buf).add_(c, alpha=-alpha)  # w = ∇φ(z) − α·c
        torch.abs(z, out=buf).pow_(1.0 / (p - 1.0))
        z.sign_().mul_(buf)
    if tau + lr * weight_decay != 0.0:
        param.mul_(1.0 - tau - lr * weight_decay)
    if p == 2.0:
        param.add_(c, alpha=-(1.0 - tau) * lr / (1.0 + eps))
    else:
        torch.abs(c, out=buf).pow_((p - 2.0) / (p - 1.0)).add_(eps)
        param.addcdiv_(c, buf, value=-(1.0 - tau) * lr)
    if tau != 0.0:
        param.add_(z, alpha=tau)
    if beta1 > 0.0:
        m.lerp_(grad, (beta1 - beta2) / beta1)  # β2·m_old + (1−β2)·g, from c
    else:
        m.lerp_(grad, 1.0 - beta2)


def stacey_kernel(params: list[Tensor], grads: list[Tensor], zs: list[Tensor], ms: list[Tensor], *, lr, alpha, tau,
                  beta1, beta2, eps, weight_decay, p: float, dual: str, momentum: bool) -> None:
    """The same step as a pure per-tensor kernel for ``fused_step`` (compiled: every temporary
    lives in registers; the scalars are 0-d tensors, p and the flags select the code)."""
    for x, g, z, m in zip(params, grads, zs, ms):
        c = m.lerp_(g, 1.0 - beta1) if momentum else g  # m holds c
        if dual == "l2":
            z.add_(c, alpha=-alpha)
        else:  # z ← ∇φ*(∇φ(z) − α·c)
            w = (z * z.abs().pow(p - 2.0)).add_(c, alpha=-alpha)
            z.copy_(w.sign() * w.abs().pow(1.0 / (p - 1.0)))
        x.mul_(1.0 - tau - lr * weight_decay)
        if p == 2.0:
            x.add_(c, alpha=-(1.0 - tau) * lr / (1.0 + eps))
        else:
            x.addcdiv_(c, c.abs().pow((p - 2.0) / (p - 1.0)).add_(eps), value=-(1.0 - tau) * lr)
        x.add_(z, alpha=tau)
        m.lerp_(g, (beta1 - beta2) / beta1 if momentum else 1.0 - beta2)


class Stacey(torch.optim.Optimizer):
    """Stacey(p,2) (``dual="l2"``) or Stacey(p,p) (``dual="lp"``); see the module docstring."""

    def __init__(self, params, lr: float = 1e-3, p: float = 3.0, betas: tuple[float, float] = (0.9, 0.999),
                 alpha: float = 1e-3, tau: float = 1e-3, eps: float | None = None,
                 weight_decay: float = 5e-4, dual: str = "l2", foreach: bool | None = None,
                 fused: bool | None = None):
        if dual not in DUAL_GEOMETRIES:
            raise ValueError(f"dual geometry {dual!r} unknown; choose one of: {', '.join(DUAL_GEOMETRIES)}")
        if eps is None:  # the public code's defaults
            eps = 1e-4 if dual == "l2" else 1e-8
        checks = [
            (isinstance(lr, (int, float)) and lr >= 0, f"lr must be >= 0, got {lr!r}"),
            (p >= 2 and p != float("inf"), f"p must be finite and >= 2 (Stacey's ℓp geometry), got {p}"),
            (0.0 <= betas[0] <= 1.0, f"beta1 must be in [0, 1], got {betas[0]}"),
            (0.0 <= betas[1] < 1.0, f"beta2 must be in [0, 1), got {betas[1]}"),
            (alpha >= 0, f"alpha (the dual step α) must be >= 0, got {alpha}"),
            (0.0 <= tau <= 1.0, f"tau (the coupling τ) must be in [0, 1], got {tau}"),
            (eps >= 0, f"eps must be >= 0, got {eps}"),
            (weight_decay >= 0, f"weight_decay must be >= 0, got {weight_decay}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"Stacey: {msg}")
        defaults = dict(lr=lr, p=float(p), betas=tuple(betas), alpha=alpha, tau=tau,
                        eps=eps, weight_decay=weight_decay, dual=dual, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def _scratch_for(self, param: Tensor) -> Tensor:
        """One flat buffer per (device, dtype), as large as the largest parameter; kept outside
        ``self.state`` (it carries no information between steps) and rebuilt on demand."""
        key = (param.device, param.dtype)
        if not hasattr(self, "_scratch"):
            self._scratch = {}
        buf = self._scratch.get(key)
        if buf is None or buf.numel() < param.numel():
            largest = max(q.numel() for g in self.param_groups for q in g["params"]
                          if q.device == param.device and q.dtype == param.dtype)
            buf = self._scratch[key] = torch.empty(largest, device=param.device, dtype=param.dtype)
        return buf

    def _init_group(self, group: dict) -> tuple[list[Tensor], ...]:
        params, grads, zs, ms = [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Stacey does not support sparse gradients")
            state = self.state[p]
            if not state:
                state["z"] = p.detach().clone(memory_format=torch.preserve_format)  # z₀ = θ₀
                state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            zs.append(state["z"])
            ms.append(state["m"])
        return params, grads, zs, ms

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, zs, ms = self._init_group(group)
            if not params:
                continue
            if not 0.0 <= group["tau"] <= 1.0:
                raise ValueError(f"Stacey: tau (the coupling τ) must be in [0, 1], got {group['tau']}")
            hyper = dict(lr=group["lr"], alpha=group["alpha"], tau=group["tau"], beta1=group["betas"][0],
                         beta2=group["betas"][1], p=group["p"], eps=group["eps"],
                         weight_decay=group["weight_decay"], dual=group["dual"])
            if use_fused(group.get("fused"), params):
                static = dict(p=hyper.pop("p"), dual=hyper.pop("dual"), momentum=hyper["beta1"] > 0.0)
                for lists in by_device_and_dtype([params, grads, zs, ms]):
                    fused_step(stacey_kernel, lists, hyper, static, fused=True)
                continue
            foreach = group["foreach"]
            if foreach is None:  # torch's rule: foreach on accelerators, the for-loop on CPU
                foreach = all(t.device.type != "cpu" for t in params)
            if not foreach:
                for tensors in zip(params, grads, zs, ms):
                    stacey_update_single_(*tensors, self._scratch_for(tensors[0]), **hyper)
                continue
            for lists in by_device_and_dtype([params, grads, zs, ms]):
                stacey_update_(*lists, **hyper)
        return loss


class StaceyP2(Stacey):
    """Stacey(p,2): ℓp primal step, Euclidean dual step (ICML Alg. 1)."""

    def __init__(self, params, **hyper):
        super().__init__(params, dual="l2", **hyper)


class StaceyPP(Stacey):
    """Stacey(p,p): ℓp primal step, ℓp mirror-descent dual step (ICML Alg. 2)."""

    def __init__(self, params, **hyper):
        super().__init__(params, dual="lp", **hyper)
