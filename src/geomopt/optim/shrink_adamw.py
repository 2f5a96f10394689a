"""AdamW with entry-wise shrinkage of the gradient (paper 1, "smooth shrinkage + Adam").

**Reconstructed (paper text not available).** The Bayes surrogate ψ (``geomopt.optim.shrink``)
estimates a signal entry from one observation y = g/s, *given* the inlier noise scale s of that
entry. ψ is the estimator; s is its input, and estimating s is a separate job. The main variant
(``second_moment="winsor"``, ``warmup="entry"``) therefore keeps the two apart:

    ŝ² = v ⊘ f     per-entry scale: the EMA of g² over the steps where the entry was *observed*
                   (g ≠ 0), normalised by f, the EMA of the observation indicator. For a dense
                   entry f = 1 − β₂ᵏ (Adam's bias correction); for a rare one (an embedding row of
                   a rare token) ŝ is its scale when it occurs, not that scale diluted by the zeros.
    s = ŝ + δ,   g̃ = s ⊙ ψ(g ⊘ s; t)   where the entry has ≥ k_warm observations, else g̃ = g
    m ← β₁m + (1−β₁)g̃                  (the shrunk gradient drives the momentum)
    v ← β₂v + (1−β₂)·min(g², c²s²)/κ(c) (Winsorised g², c = ``v_clip``; κ(c) = E min(Z², c²) makes
                                        it unbiased for Gaussian g; before warm-up: g²)
    f ← β₂f + (1−β₂)·1[g ≠ 0],  n ← n + 1[g ≠ 0]
    θ ← θ(1 − lr·wd) − lr·m̂ ⊘ (√v̂ + eps),   m̂ = m/(1−β₁ᵏ), v̂ = v/(1−β₂ᵏ)   (AdamW's step)

Why it deviates from spec §2.6 on purpose (measured by ``experiments/paper1/shrink_properties.py``):
§2.6 feeds v with g̃ itself and warms up for k_warm *global* steps. Under a redescending ψ
(``smooth``, ``redescend``) that is a feedback loop: an entry whose gradient grows beyond t·√v̂ is
shrunk toward 0, v sees the small value, the next input looks larger still, and √v̂ collapses
(≈ 0.1–0.4 of the true scale after a ×10 jump, or even on pure N(0, 1)). And an entry still
unobserved when the global warm-up ends has v = 0, is divided by δ and frozen (rare tokens). The
Winsorised g² is monotone in |g| (a persistent rise is followed: v grows ≥ ×(β₂ + (1−β₂)c²/κ) a
step) and bounded in influence (a Cauchy draw adds ≤ (1−β₂)c²s²/κ): what §2.6 wanted from "v of
the shrunk g", without asking ψ to estimate its own scale. The §2.6 reconstruction stays as the
ablation ``second_moment="shrunk", warmup="global"``; ``second_moment="raw"`` (v of the raw g,
as AdamW) is the other ablation.

A linear slope κ of ψ is not a hyperparameter here: multiplying g̃ by κ multiplies m and so the
step by κ (an lr change), and under §2.6 it cancelled in m̂/√v̂ altogether. With
``position="post"`` (ablation) Adam's moments are of the raw g and ψ acts on the direction
m̂ ⊘ (√v̂ + eps); by Cauchy–Schwarz |m/√v| ≤ (1−β₁)/√((1−β₂)(1−β₁²/β₂)) ≈ 2.35 for
β = (0.9, 0.99) (≈ 0.3 RMS for pure noise), so post thresholds must be < 1 to act.

Non-finite gradient entries (NaN, ±inf) are zeroed before they reach m and v (they carry no
information; a zeroed entry also counts as not observed). With ``psi=None`` this class *is*
``torch.optim.AdamW`` (torch's functional kernel, fused on CPU/CUDA by default). The update is
the pure function ``shrink_adamw_`` over tensor lists (no data-dependent Python branch), so that it
can be compiled; the class only holds state and computes the per-tensor bias corrections from the
step counts (read once per step: one host sync on a GPU).

Speed (compiled, ``geomopt.optim.fused``): the main variant's step is compute-bound on a CPU, not
memory-bound like AdamW's: per entry one exp (the gate of the smooth ψ) and four divisions against
AdamW's one, and 11 tensor reads/writes against 7 (f and n). The kernel is written for that: no
power per entry (β^k per tensor, in float64, outside the loop), the smooth ψ in a one-division form
(``smooth_shrink_one_division``), NaN/inf zeroed by a compare that vectorizes (``zero_nonfinite_``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geomopt.optim.closure import closure_loss
from geomopt.optim.fused import fused_step, use_fused
from geomopt.optim.shrink import _smooth_constants, apply_psi_, check_psi, check_threshold, zero_nonfinite_
from geomopt.optim.torch_private import adamw_step as _adamw_step

POSITIONS = ("pre", "post")
SECOND_MOMENTS = ("winsor", "raw", "shrunk")  # v of: Winsorised g (main), raw g (AdamW), shrunk g̃ (§2.6)
WARMUPS = ("entry", "global")  # k_warm observations per entry (main), or k_warm steps of the tensor (§2.6)
_TINY = 1e-30


def winsor_consistency(c: float) -> float:
    """κ(c) = E[min(Z², c²)], Z ~ N(0, 1): 1 − 2cφ(c) − 2(1 − c²)Q(c), Q the upper normal tail."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2 * math.pi)
    tail = 0.5 * math.erfc(c / math.sqrt(2))
    return 1.0 - 2.0 * c * phi - 2.0 * (1.0 - c * c) * tail


def smooth_shrink_one_division(y: Tensor, t: float, gamma: float) -> Tensor:
    """``shrink.smooth_shrink(y, t, 1, gamma)`` with one division and one exp (the compiled step's form; equal
    to fp32 rounding, tests/test_shrink_adamw.py). With q = (y² + γ_e²)/(2σ²), a = e^{−C} and w = e^{−σ²q},
    the gate r = q/(q + a/w) and the tail y/q of ``shrink.smooth_shrink_`` combine into
    ψ(y) = r·κy + (1 − r)·y/q = y·(κ·q·(qw) + a) / (q·(qw + a)): every term is ≥ 0, so nothing cancels, and
    where w underflows (|y| ≳ 13) it is y/q, the tail, as there."""
    # (in-place ops on temporaries only: the same graph compiled, fewer allocations eagerly)
    sigma2, gamma_e2, const = _smooth_constants(t, 1.0, gamma)
    a = math.exp(-const)
    q = (y * y).add_(gamma_e2).mul_(0.5 / sigma2)
    q.clamp_(max=torch.finfo(q.dtype).max / 4)  # finite even where y² overflows (as shrink.smooth_shrink_)
    qw = (q * -sigma2).exp_().mul_(q)
    numerator = (qw * q).mul_(sigma2).add_(a).mul_(y)
    return numerator.div_(qw.add_(a).mul_(q))


def _psi(y: Tensor, psi: str, t: float, gamma: float) -> Tensor:
    """ψ(y) as a new tensor."""
    if psi == "smooth":
        return smooth_shrink_one_division(y, t, gamma)
    return apply_psi_(y.clone(), psi, t, 1.0, gamma)


def psi_input(g: Tensor, v: Tensor, mass: Tensor | None, count: Tensor | None, *, eps: float, warmup_steps: int,
              warmup: str, prev_vhat_scale: float | Tensor, steps_done: float | Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(y, s, ready): ψ's input y = g ⊘ s (non-finite -> 0), the scale s = ŝ + δ from the state *before*
    this step, and where the shrink acts (bool, broadcastable to g). ``steps_done``: steps already taken;
    ``prev_vhat_scale`` = 1/(1 − β₂^steps_done), v̂'s scale after them (global warm-up only)."""
    if warmup == "entry":
        scale_sq = v / mass.clamp_min(_TINY)  # Σ w g² / Σ w over observed steps
        ready = (count >= warmup_steps) & (v > 0)  # v = 0 (nothing seen but zeros, or underflow): no scale
    else:
        scale_sq = v * prev_vhat_scale  # §2.6: v̂ of the previous step
        ready = torch.as_tensor(steps_done >= warmup_steps)
    s = scale_sq.sqrt_().add_(eps)  # scale_sq is a temporary
    return zero_nonfinite_(g / s), s, ready


def _pre_one(p: Tensor, g: Tensor, m: Tensor, v: Tensor, mass: Tensor | None, count: Tensor | None, *, beta1: float,
             beta2: float, eps: float, decay: float, step_size: float, vhat_scale: float, prev_vhat_scale: float,
             steps_done: float | None, psi: str, t: float, gamma: float, warmup_steps: int, second_moment: str,
             warmup: str, v_clip: float) -> None:
    g = zero_nonfinite_(g.clone())
    y, s, ready = psi_input(g, v, mass, count, eps=eps, warmup_steps=warmup_steps, warmup=warmup,
                            prev_vhat_scale=prev_vhat_scale, steps_done=steps_done)
    shrunk = torch.where(ready, _psi(y, psi, t, gamma).mul_(s), g)
    if second_moment == "shrunk":
        sq = shrunk * shrunk
    elif second_moment == "raw":
        sq = g * g
    else:  # Winsorised at c·s, scaled to be unbiased for Gaussian g
        sq = g * g
        sq = torch.where(ready, torch.minimum(sq, (s * s).mul_(v_clip**2)).mul_(1 / winsor_consistency(v_clip)), sq)
    if warmup == "entry":
        seen = (g != 0).to(g.dtype)
        mass.mul_(beta2).add_(seen, alpha=1 - beta2)
        count.add_(seen)
    m.lerp_(shrunk, 1 - beta1)
    v.mul_(beta2).add_(sq, alpha=1 - beta2)
    # AdamW's step θ(1 − lr·wd) − lr·m̂ ⊘ (√v̂ + eps), the bias corrections in step_size = lr/(1−β₁ᵏ) and
    # vhat_scale = 1/(1−β₂ᵏ); dividing step_size (not m) keeps the division off the path through m, ready last
    p.mul_(decay).sub_((v * vhat_scale).sqrt_().add_(eps).reciprocal_().mul_(step_size).mul_(m))


def _post_one(p: Tensor, g: Tensor, m: Tensor, v: Tensor, *, lr: float, beta1: float, beta2: float, eps: float,
              decay: float, vhat_scale: float, bias1: float, steps_done: float, psi: str, t: float, gamma: float,
              warmup_steps: int) -> None:
    """Post-clipping ablation: Adam on the raw (finite) g, ψ on m̂ ⊘ (√v̂ + eps) after ``warmup_steps``."""
    g = zero_nonfinite_(g.clone())
    m.lerp_(g, 1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    direction = (m / bias1) / ((v * vhat_scale).sqrt() + eps)
    direction = torch.where(torch.as_tensor(steps_done + 1 > warmup_steps), _psi(direction, psi, t, gamma), direction)
    p.mul_(decay).sub_(direction * lr)


def shrink_adamw_(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                  obs_masses: list[Tensor | None], obs_counts: list[Tensor | None], *, lr: float, beta1: float,
                  beta2: float, eps: float, decay: float, step_size: list[float], vhat_scale: list[float],
                  prev_vhat_scale: list[float] | None = None, bias1: list[float] | None = None,
                  steps_done: list[float] | None = None, psi: str, t: float, gamma: float, warmup_steps: int,
                  second_moment: str = "winsor", warmup: str = "entry", v_clip: float = 3.0,
                  position: str = "pre") -> None:
    """One ShrinkAdamW step (module doc), in place on params and state; a pure function of its arguments.
    ``obs_masses``/``obs_counts`` (f, n) are used only with ``warmup="entry"`` (None otherwise). The per-tensor
    scalars (``step_scalars``) come from each tensor's step count in float64: no power is taken per entry."""
    def at(values, i):
        return None if values is None else values[i]

    for i, (p, g, m, v, f, n) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, obs_masses, obs_counts)):
        common = dict(beta1=beta1, beta2=beta2, eps=eps, decay=decay, vhat_scale=vhat_scale[i],
                      steps_done=at(steps_done, i), psi=psi, t=t, gamma=gamma, warmup_steps=warmup_steps)
        if position == "post":
            _post_one(p, g, m, v, lr=lr, bias1=bias1[i], **common)
        else:
            _pre_one(p, g, m, v, f, n, step_size=step_size[i], prev_vhat_scale=at(prev_vhat_scale, i),
                     second_moment=second_moment, warmup=warmup, v_clip=v_clip, **common)


def step_scalars(counts: list[float], *, lr: float, beta1: float, beta2: float, position: str = "pre",
                 warmup: str = "entry") -> dict[str, list[float]]:
    """The per-tensor scalars ``shrink_adamw_`` needs for these options, from the step counts k (this step
    included): step_size = lr/(1−β₁ᵏ), vhat_scale = 1/(1−β₂ᵏ); the global warm-up and the post position
    also need steps_done = k − 1 and, respectively, prev_vhat_scale = 1/(1−β₂ᵏ⁻¹) and bias1 = 1−β₁ᵏ."""
    bias1 = [1.0 - beta1**k for k in counts]
    out = dict(step_size=[lr / b for b in bias1], vhat_scale=[1.0 / (1.0 - beta2**k) for k in counts])
    if position == "post" or warmup == "global":
        out["steps_done"] = [k - 1.0 for k in counts]
    if position == "post":
        out["bias1"] = bias1
    elif warmup == "global":
        out["prev_vhat_scale"] = [1.0 / max(1.0 - beta2 ** (k - 1), _TINY) for k in counts]
    return out


def _fused_ok(params: list[Tensor]) -> bool:
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


class ShrinkAdamW(torch.optim.Optimizer):
    """AdamW with an entry-wise shrink ψ of the gradient, scaled per entry (see module doc).

    Args: lr, betas, eps, weight_decay — as ``torch.optim.AdamW`` (same defaults);
    psi: "smooth" | "hard" | "soft" | "redescend" | None; t: threshold in units of the entry's scale;
    gamma: Cauchy width of "smooth" in those units; warmup_steps: k_warm (≥ 1);
    second_moment: "winsor" (main) | "raw" | "shrunk" (§2.6); warmup: "entry" (main: k_warm
    observations of each entry) | "global" (§2.6: k_warm steps); v_clip: c of the Winsorised v;
    position: "pre" (shrink g) or "post" (shrink m̂/√v̂); fused: the shrink step compiled by
    geomopt.optim.fused (None: its size rule; with psi=None, torch's fused AdamW kernel on CPU and
    CUDA); foreach: torch's AdamW kernel choice when psi is None.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, *, psi: str | None = "smooth", t: float = 3.0, gamma: float = 1.0,
                 warmup_steps: int = 10, second_moment: str = "winsor", warmup: str = "entry",
                 v_clip: float = 3.0, position: str = "pre", foreach: bool | None = None, fused: bool | None = None):
        if isinstance(lr, Tensor) or not 0.0 <= lr:
            raise ValueError(f"lr must be a float >= 0, got {lr!r}")
        if not 0.0 <= eps:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, psi=check_psi(psi), t=t, gamma=gamma,
                        warmup_steps=warmup_steps, second_moment=second_moment, warmup=warmup, v_clip=v_clip,
                        position=position, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group["psi"] = check_psi(group["psi"])
        check_threshold(group["t"], 1.0, group["gamma"])
        if not (isinstance(group["warmup_steps"], int) and group["warmup_steps"] >= 1):
            raise ValueError(f"warmup_steps must be an int >= 1 (there is no scale before the first observation), "
                             f"got {group['warmup_steps']!r}")
        for key, choices in (("position", POSITIONS), ("second_moment", SECOND_MOMENTS), ("warmup", WARMUPS)):
            if group[key] not in choices:
                raise ValueError(f"{key}={group[key]!r} unknown; choose one of: {', '.join(choices)}")
        c = group["v_clip"]
        if not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 1):
            raise ValueError(f"v_clip must be a finite number >= 1 (Winsorising threshold in scale units), got {c!r}")
        if group["fused"] and group["foreach"]:
            raise ValueError("fused and foreach cannot both be True")

    def _state(self, group: dict, p: Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = (torch.zeros((), dtype=torch.float32, device=p.device) if group["fused"]
                             else torch.tensor(0.0, dtype=torch.get_default_dtype()))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if self._per_entry(group) and "obs_mass" not in state:
            state["obs_mass"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # f
            state["obs_count"] = torch.zeros_like(p, memory_format=torch.preserve_format)  # n
        return state

    @staticmethod
    def _per_entry(group: dict) -> bool:
        return group["psi"] is not None and group["position"] == "pre" and group["warmup"] == "entry"

    @torch.no_grad()
    def psi_inputs(self) -> dict[Tensor, tuple[Tensor, float]]:
        """``y = g ⊘ s`` and ``t`` of every parameter of a pre-clipping group whose next step may shrink:
        what ψ will see (entries not yet past their warm-up read 0). A diagnostic that allocates."""
        out = {}
        for group in self.param_groups:
            if group["psi"] is None or group["position"] != "pre":
                continue
            for p in group["params"]:
                state = self.state.get(p)
                if p.grad is None or not state:
                    continue
                done = float(state["step"])
                y, _, ready = psi_input(p.grad, state["exp_avg_sq"], state.get("obs_mass"), state.get("obs_count"),
                                        eps=group["eps"], warmup_steps=group["warmup_steps"], warmup=group["warmup"],
                                        prev_vhat_scale=1.0 / max(1.0 - group["betas"][1] ** done, _TINY),
                                        steps_done=done)
                if bool(ready.any()):
                    out[p] = (y.mul_(ready), group["t"])
        return out

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse or torch.is_complex(p) for p in params):
                raise RuntimeError("ShrinkAdamW does not support sparse gradients or complex parameters")
            states = [self._state(group, p) for p in params]
            beta1, beta2 = group["betas"]
            common = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                          weight_decay=group["weight_decay"])
            moments = ([s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states])
            steps = [s["step"] for s in states]
            if group["psi"] is None:  # torch's AdamW on the finite gradients
                grads = [zero_nonfinite_(p.grad.clone()) for p in params]
                fused = group["fused"]
                if fused is None:  # torch's fused AdamW kernel unless foreach was asked for
                    fused = not group["foreach"] and _fused_ok(params)
                _adamw_step(params, grads, *moments, [], steps, foreach=group["foreach"], fused=fused or None,
                            amsgrad=False, maximize=False, **common)
                continue
            # ψ's shape (psi, t, gamma, warm-up, v's clip, position) is structural: one compiled copy
            # each; lr, betas, eps, the decay and the per-tensor bias corrections are tensors in the
            # compiled step (no recompile when a scheduler moves lr). Compiled or eager as
            # geomopt.optim.fused decides.
            torch._foreach_add_(steps, 1)
            counts = torch.stack(steps).tolist()  # one host read of all step counts (one sync on a GPU)
            hyper = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], decay=1.0 - group["lr"] * group["weight_decay"],
                         **step_scalars(counts, lr=group["lr"], beta1=beta1, beta2=beta2, position=group["position"],
                                        warmup=group["warmup"]))
            tensors = [params, [p.grad for p in params], *moments, [s.get("obs_mass") for s in states],
                       [s.get("obs_count") for s in states]]
            static = dict(psi=group["psi"], t=group["t"], gamma=group["gamma"], warmup_steps=group["warmup_steps"],
                          second_moment=group["second_moment"], warmup=group["warmup"], v_clip=group["v_clip"],
                          position=group["position"])
            fused_step(shrink_adamw_, tensors, hyper, static, fused=group["fused"] if _fused_ok(params) else False)
        return loss
