"""AdamW with entry-wise shrinkage of the gradient (paper 1, "smooth shrinkage + Adam").

**Reconstructed (paper text not available)**, spec §2.6. Pre-clipping (default):
the per-entry scale is Adam's own previous second moment,

    s = √v̂_{k−1} + δ,   g̃ = s ⊙ ψ(g ⊘ s; t)     (no shrinkage for k ≤ k_warm)
    m ← β₁m + (1−β₁)g̃,   v ← β₂v + (1−β₂)g̃²    (the *shrunk* g̃ feeds v: Cauchy² has
                                                  infinite mean and would poison it)
    θ ← θ − lr·(m̂ ⊘ (√v̂ + eps) + wd·θ)

so the threshold t is in RMS units of the (shrunk) gradient. δ = eps. The moment
update and the parameter step are torch's own functional AdamW (fused kernel where
the device has one, else torch's foreach/for-loop), fed g̃ instead of g; with
``psi=None`` (or ``"none"``) this class *is* ``torch.optim.AdamW``. Post-clipping
(``position="post"``, an ablation) keeps Adam's moments of the raw g and applies ψ
to the Adam direction m̂ ⊘ (√v̂ + eps) instead.

ψ ∈ {hard, soft, redescend, smooth} (``geomopt.optim.shrink``), threshold ``t``,
linear slope (1 or κ) and the Cauchy width ``gamma`` of ``smooth`` are
hyperparameters of each param group.

Non-finite gradient entries (NaN, ±inf) are zeroed before they reach m and v
(documented policy: they carry no information); the step never syncs with the
host to look for them. Note: with a redescending ψ (``redescend``, ``smooth``) an
entry whose gradient jumps far above t·√v̂ and stays there is treated as an outlier
and v̂ does not grow to follow it; ``hard``/``soft`` let v̂ grow by ≤ (1−β₂)t² per step.

Two paths for the shrink: single-tensor (default on CPU: the shrunk gradient lives
in a per-parameter buffer and ψ's temporaries in scratch buffers sized to the largest
parameter, so nothing is allocated per step; these caches are not optimizer state)
and ``torch._foreach_*`` (``foreach=True``, default on CUDA). The moment update is
torch's fused kernel (default) or its foreach / for-loop one (``fused=False``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.optim.adamw import adamw as _adamw_step

from geomopt.optim.closure import closure_loss
from geomopt.optim.shrink import (apply_psi_, apply_psi_foreach_, check_psi, check_threshold, psi_work_buffers,
                                  zero_nonfinite_)

POSITIONS = ("pre", "post")


def _fused_ok(params: list[Tensor]) -> bool:
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def pre_shrink_(shrunk: Tensor, grad: Tensor, exp_avg_sq: Tensor, bias_correction2: float, delta: float,
                psi: str, t: float, slope: float, gamma: float, scale: Tensor, work: list[Tensor]) -> Tensor:
    """``shrunk ← s ⊙ ψ(grad ⊘ s)`` with s = √(v/bc₂) + δ, into preallocated buffers (``scale``, ``work``)."""
    torch.sqrt(exp_avg_sq, out=scale)
    delta = torch.full((), delta, dtype=scale.dtype, device=scale.device)
    torch.add(delta, scale, alpha=1.0 / math.sqrt(bias_correction2), out=scale)  # one pass: √v/√bc₂ + δ
    torch.div(grad, scale, out=shrunk)
    zero_nonfinite_(shrunk)
    apply_psi_(shrunk, psi, t, slope, gamma, work)
    return shrunk.mul_(scale)


class ShrinkAdamW(torch.optim.Optimizer):
    """AdamW with an entry-wise shrink ψ of the gradient, scaled per entry by √v̂ (see module doc).

    Args: lr, betas, eps, weight_decay — as ``torch.optim.AdamW`` (same defaults);
    psi: "smooth" | "hard" | "soft" | "redescend" | None; t: threshold in RMS units;
    slope: linear slope of ψ (1 or κ); gamma: Cauchy width of "smooth" in RMS units;
    warmup_steps: k_warm, steps without shrinkage (≥ 1: v̂ is empty before the first);
    position: "pre" (shrink g) or "post" (shrink m̂/√v̂); fused / foreach: torch's AdamW
    kernels (default: fused on CPU and CUDA).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, *, psi: str | None = "smooth", t: float = 3.0, slope: float = 1.0,
                 gamma: float = 1.0, warmup_steps: int = 10, position: str = "pre",
                 foreach: bool | None = None, fused: bool | None = None):
        if isinstance(lr, Tensor) or not 0.0 <= lr:
            raise ValueError(f"lr must be a float >= 0, got {lr!r}")
        if not 0.0 <= eps:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, psi=check_psi(psi), t=t, slope=slope,
                        gamma=gamma, warmup_steps=warmup_steps, position=position, foreach=foreach, fused=fused)
        super().__init__(params, defaults)
        self._shrunk: dict[Tensor, Tensor] = {}
        self._scratch: dict[tuple, list[Tensor]] = {}

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group["psi"] = check_psi(group["psi"])
        check_threshold(group["t"], group["slope"], group["gamma"])
        if not (isinstance(group["warmup_steps"], int) and group["warmup_steps"] >= 1):
            raise ValueError(f"warmup_steps must be an int >= 1 (v̂ is empty before the first step), "
                             f"got {group['warmup_steps']!r}")
        if group["position"] not in POSITIONS:
            raise ValueError(f"position={group['position']!r} unknown; choose one of: {', '.join(POSITIONS)}")
        if group["fused"] is None:
            group["fused"] = not group["foreach"] and _fused_ok(group["params"])
        if group["fused"] and group["foreach"]:
            raise ValueError("fused and foreach cannot both be True")

    def _scratch_views(self, n: int, like: Tensor, k: int) -> list[Tensor]:
        """k flat scratch tensors with ≥ n entries, shared by all parameters of one dtype and device."""
        bufs = self._scratch.setdefault((like.dtype, like.device), [])
        while len(bufs) < k:
            bufs.append(like.new_empty(0))
        for i in range(k):
            if bufs[i].numel() < n:
                bufs[i] = like.new_empty(n)
        return [b[:n].view_as(like) for b in bufs[:k]]

    def _init_state(self, p: Tensor, fused: bool) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = (torch.zeros((), dtype=torch.float32, device=p.device) if fused
                             else torch.tensor(0.0, dtype=torch.get_default_dtype()))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["shrink_step"] = 0  # host-side copy of "step": decides warm-up without a device sync
        return state

    def _shrunk_grad(self, group: dict, p: Tensor, state: dict) -> Tensor:
        """g̃ for this step (pre-clipping, single-tensor path), in this parameter's cached buffer."""
        g = p.grad
        buf = self._shrunk.get(p)
        if buf is None or buf.shape != g.shape or buf.dtype != g.dtype:
            self._shrunk[p] = buf = torch.empty_like(g)
        k_prev = state["shrink_step"]  # steps already taken: v̂_prev = v/(1 − β₂^k_prev)
        if not self._shrinks(group, state):
            return zero_nonfinite_(buf.copy_(g))
        n_work = psi_work_buffers(group["psi"])
        scale, *work = self._scratch_views(g.numel(), g, 1 + n_work)
        return pre_shrink_(buf, g, state["exp_avg_sq"], 1.0 - group["betas"][1] ** k_prev, group["eps"],
                           group["psi"], group["t"], group["slope"], group["gamma"], scale, work)

    @torch.no_grad()
    def psi_inputs(self) -> dict[Tensor, tuple[Tensor, float]]:
        """``y = g ⊘ s`` and ``t`` of every parameter whose next step shrinks its gradient (pre-clipping,
        past warm-up): what ψ will see. A diagnostic that allocates; ``step`` never calls it."""
        out = {}
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if p.grad is None or not state or group["position"] != "pre" or not self._shrinks(group, state):
                    continue
                bc2 = 1.0 - group["betas"][1] ** state["shrink_step"]
                scale = state["exp_avg_sq"].sqrt().mul_(bc2 ** -0.5).add_(group["eps"])
                out[p] = (zero_nonfinite_(p.grad / scale), group["t"])
        return out

    @staticmethod
    def _shrinks(group: dict, state: dict) -> bool:
        return group["psi"] is not None and state["shrink_step"] >= group["warmup_steps"]

    def _shrunk_grads_foreach(self, group: dict, params: list[Tensor]) -> list[Tensor]:
        """g̃ = s ⊙ ψ(g ⊘ s) for parameters past warm-up, with ``torch._foreach_*`` ops."""
        states = [self.state[p] for p in params]
        beta2 = group["betas"][1]
        scale = torch._foreach_sqrt([st["exp_avg_sq"] for st in states])
        torch._foreach_mul_(scale, [(1.0 - beta2 ** st["shrink_step"]) ** -0.5 for st in states])
        torch._foreach_add_(scale, group["eps"])
        ys = torch._foreach_div([p.grad for p in params], scale)
        for y in ys:
            zero_nonfinite_(y)
        apply_psi_foreach_(ys, group["psi"], group["t"], group["slope"], group["gamma"])
        torch._foreach_mul_(ys, scale)
        return ys

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
            foreach_shrink = []  # indices shrunk by the foreach path
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse or torch.is_complex(p):
                    raise RuntimeError("ShrinkAdamW does not support sparse gradients or complex parameters")
                state = self._init_state(p, group["fused"])
                use_foreach = group["foreach"] if group["foreach"] is not None else p.device.type == "cuda"
                if group["position"] == "post":
                    grads.append(p.grad)
                elif use_foreach and self._shrinks(group, state):
                    foreach_shrink.append(len(grads))
                    grads.append(None)
                elif use_foreach:
                    grads.append(zero_nonfinite_(p.grad.clone()))
                else:
                    grads.append(self._shrunk_grad(group, p, state))
                params.append(p)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if not params:
                continue
            if foreach_shrink:
                shrunk = self._shrunk_grads_foreach(group, [params[i] for i in foreach_shrink])
                for i, g in zip(foreach_shrink, shrunk):
                    grads[i] = g
            for p in params:
                self.state[p]["shrink_step"] += 1
            if group["position"] == "post":
                self._post_step(group, params, grads, exp_avgs, exp_avg_sqs, steps)
                continue
            beta1, beta2 = group["betas"]
            _adamw_step(params, grads, exp_avgs, exp_avg_sqs, [], steps, foreach=group["foreach"],
                        fused=group["fused"] or None, amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
                        weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
        return loss

    def _post_step(self, group, params, grads, exp_avgs, exp_avg_sqs, steps) -> None:
        """Post-clipping ablation: Adam on the raw (finite) g, ψ on the direction m̂ ⊘ (√v̂ + eps)."""
        beta1, beta2 = group["betas"]
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        shrink = group["psi"] is not None
        for p, g, m, v, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
            step.add_(1)
            k = self.state[p]["shrink_step"]  # already incremented: this step's index
            shrink_now = shrink and k > group["warmup_steps"]
            n_work = psi_work_buffers(group["psi"]) if shrink_now else 0
            clean, direction, *work = self._scratch_views(g.numel(), g, 2 + n_work)
            zero_nonfinite_(clean.copy_(g))
            m.lerp_(clean, 1 - beta1)
            v.mul_(beta2).addcmul_(clean, clean, value=1 - beta2)
            torch.sqrt(v, out=direction)
            direction.mul_((1 - beta2**k) ** -0.5).add_(eps)
            torch.div(m, direction, out=direction).mul_(1.0 / (1 - beta1**k))  # m̂ ⊘ (√v̂ + eps)
            if shrink_now:
                apply_psi_(direction, group["psi"], group["t"], group["slope"], group["gamma"], work)
            p.mul_(1 - lr * wd).add_(direction, alpha=-lr)
