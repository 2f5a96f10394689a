"""DeVA: Decoupled Variance Adaptation (Song, Bai, Zhang, Bullins, Gleich; arXiv 2602.06880).

Adam's ratio m/√v is rewritten as Γ ⊙ S(m): a non-negative elementwise *gain*
Γ (variance adaptation) times a *scale-invariant direction* S — sign(m) for the
vector (ℓ∞) variant, msign(m) = UVᵀ for the matrix (Schatten-∞) variant.

The paper body (algorithm box) is not available; both update rules follow the
authors' public code (github.com/Tsedao/Decoupled-Variance-Adaptation) as
summarised in /work/shared/specs/paper2-deva.md §2. Options marked
"Reconstructed" are the spec's ablations, not confirmed by the paper.

DeVA-ℓ∞ (``DevaLinf``, any tensor shape), per element:
    θ ← (1 − η·λ)·θ                              # decoupled WD before the step
    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·m²                         # EMA of squared MOMENTUM (code); g² (Adam-like) optional
    Γ ← |m| / √(v + ε),  ε = 1e-5 inside the √  # no bias correction (code); optional
    d ← sign(Nesterov ? (1−β1)·g + β1·m : m)
    θ ← θ − η·Γ⊙d
Without Nesterov the update is m/√(EMA(m²)+ε); with β1 = 0 it is RMSprop.

DeVA-S∞ (``DevaSinf``, matrices; conv filters as (out, in·kh·kw)), SOAP-derived:
    G̃ = Q_Lᵀ G Q_R ;  M ← β1·M + (1−β1)·G̃        # M lives in Shampoo's eigenbasis
    r_i = ‖M_i,:‖, c_j = ‖M_:,j‖ ;  V ← β2·V + (1−β2)·r cᵀ
    O = msign(Nesterov ? (1−β1)·G̃ + β1·M : M)
    Γ_ij = √(r_i c_j) / √(V_ij + ε) · √(1−β2^t)/(1−β1^t)    # bias correction folded into Γ
    W ← W − η·Q_L (0.2·√max(n,m)·Γ⊙O) Q_Rᵀ ;  W ← W − η·λ·W   # WD after the step, as the code
    L, R ← EMAs of GGᵀ, GᵀG ; every k steps one power step + QR on Q_L, Q_R (soap.py)
msign is equivariant, Q_L·msign(Q_LᵀNQ_R)·Q_Rᵀ = msign(N): the direction is Muon's,
the eigenbasis only decides where Γ acts elementwise.

Differences from the public code, on purpose:
- msign is by default torch's Muon Newton–Schulz (``orthogonalizer="newton_schulz"``: 5 quintic
  steps in bf16, Frobenius normalisation), shared with our Muon so that DeVA-S∞ vs Muon differ
  only in Γ and scaling. ``orthogonalizer="authors"`` is the code's msign, with its extra
  first-iteration division by ‖(YYᵀ)²‖_F^{1/4} (geomopt.optim.orthogonalize; bit-exact).
- M is re-projected only when the basis changes (every k steps); the code rotates M
  back and forth every step, which is the identity between refreshes.
- Γ is not stored (``keep_gain=True`` keeps the last Γ in ``state["gain"]`` for diagnostics).
- Nesterov never edits ``p.grad``; 1-D parameters raise ValueError in DevaSinf.
- The first call of DeVA-S∞ only builds the eigenbasis and does not move W (SOAP's
  convention, as the code); ``skip_first_step=False`` makes it step at once.

Caveat (inherent to the method, not fixed here): the direction is basis-invariant but Γ is
not. When the first gradient is rank-deficient on a side (always for the long side of a
rectangular matrix, e.g. 3072 of 3072×768), the eigenvectors spanning its null space are
whatever ``eigh`` returns, and Γ depends on that choice until the power iterations mix it.
"""

from __future__ import annotations

import math

import torch

from geomopt.optim.routing import as_matrix
from geomopt.optim.closure import closure_loss
from geomopt.optim.fused import by_device_and_dtype, fused_step
from geomopt.optim.orthogonalize import NS_COEFFICIENTS, check_orthogonalizer, msign
from geomopt.optim.soap import (EigenbasisOptimizer, bases, check_common_hparams, from_eigenbasis, shampoo_beta,
                                to_eigenbasis, update_factors)

__all__ = ["NS_COEFFICIENTS", "DevaLinf", "DevaSinf", "msign"]  # msign lives in geomopt.optim.orthogonalize


# ---------------------------------------------------------------------------------------------
# DeVA-ℓ∞


def deva_linf_step(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                   second_moments: list[torch.Tensor], *, lr, beta1, beta2, eps, weight_decay, bias1, bias2,
                   nesterov: bool, second_moment: str, bias_correction: bool, eps_inside_sqrt: bool,
                   keep_gain: bool = True, decay: bool = True) -> list[torch.Tensor] | None:
    """One DeVA-ℓ∞ step in place; returns the gains Γ (``keep_gain``). ``grads`` are only read.
    ``bias1``/``bias2`` are each tensor's 1−β1^t, 1−β2^t. A pure kernel for ``fused_step``
    (scalars: floats or 0-d tensors)."""
    gains = []
    for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, second_moments)):
        if decay:
            p.mul_(1 - lr * weight_decay)
        m.lerp_(g, 1 - beta1)
        tracked = m if second_moment == "momentum" else g
        v.mul_(beta2).addcmul_(tracked, tracked, value=1 - beta2)
        numer, v_hat = m.abs(), v
        if bias_correction:
            numer, v_hat = numer.div_(bias1[i]), v / bias2[i]
        denom = (v_hat + eps).sqrt_() if eps_inside_sqrt else v_hat.sqrt().add_(eps)
        gain = numer.div_(denom)
        # Nesterov look-ahead (1−β1)·g + β1·m, built out of place: p.grad is never edited.
        direction = torch.lerp(g, m, beta1) if nesterov else m
        p.add_(gain * direction.sign(), alpha=-lr)
        if keep_gain:
            gains.append(gain)
    return gains if keep_gain else None


class DevaLinf(torch.optim.Optimizer):
    """DeVA-ℓ∞. Defaults as the public code: lr 0.02, betas (0.9, 0.999), eps 1e-5 inside the √,
    v tracks m², no bias correction, WD 0, no Nesterov.

    Ablations (Reconstructed, spec §2.1): ``second_moment="gradient"`` (v tracks g²),
    ``bias_correction=True``, ``eps_inside_sqrt=False`` (e.g. with eps=1e-8). With all three and
    no Nesterov the update is exactly Adam's m̂/(√v̂ + ε).
    """

    def __init__(self, params, lr: float = 0.02, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-5,
                 weight_decay: float = 0.0, nesterov: bool = False, second_moment: str = "momentum",
                 bias_correction: bool = False, eps_inside_sqrt: bool = True, keep_gain: bool = False,
                 fused: bool | None = None):
        check_common_hparams("DevaLinf", lr, betas, eps, weight_decay, 1, 1)
        if second_moment not in ("momentum", "gradient"):
            raise ValueError(f"DevaLinf: second_moment must be 'momentum' or 'gradient', got {second_moment!r}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, nesterov=nesterov,
                        second_moment=second_moment, bias_correction=bias_correction,
                        eps_inside_sqrt=eps_inside_sqrt, keep_gain=keep_gain, fused=fused)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, exp_avgs, second_moments, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("DevaLinf does not support sparse gradients")
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["second_moment"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                second_moments.append(state["second_moment"])
                steps.append(state["step"])
            if not params:
                continue
            beta1, beta2 = group["betas"]
            index = {id(p): i for i, p in enumerate(params)}
            static = dict(nesterov=group["nesterov"], second_moment=group["second_moment"],
                          bias_correction=group["bias_correction"], eps_inside_sqrt=group["eps_inside_sqrt"],
                          keep_gain=group["keep_gain"], decay=group["weight_decay"] > 0)
            for lists in by_device_and_dtype([params, grads, exp_avgs, second_moments]):
                t = [steps[index[id(p)]] for p in lists[0]]
                hyper = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                             weight_decay=group["weight_decay"], bias1=[1 - beta1 ** s for s in t],
                             bias2=[1 - beta2 ** s for s in t])
                gains = fused_step(deva_linf_step, lists, hyper, static, group.get("fused"))
                if group["keep_gain"]:
                    for p, gain in zip(lists[0], gains):
                        self.state[p]["gain"] = gain
        return loss


# ---------------------------------------------------------------------------------------------
# DeVA-S∞

GAINS = ("momentum", "instantaneous", "none")


def spectral_gain(source: torch.Tensor, gain_ema: torch.Tensor, beta2: float, eps: float,
                  factor: float = 1.0) -> torch.Tensor:
    """factor·Γ with Γ_ij = √(r_i c_j)/√(V_ij + ε), r, c the row/column norms of ``source``, and
    V ← β2·V + (1−β2)·r cᵀ updated in place (uncorrected). ``factor`` rides on √r (no pass of its own)."""
    row_norms, col_norms = torch.linalg.vector_norm(source, dim=1), torch.linalg.vector_norm(source, dim=0)
    gain_ema.mul_(beta2).addr_(row_norms, col_norms, alpha=1 - beta2)
    return torch.outer(row_norms.sqrt_().mul_(factor), col_norms.sqrt_()).div_((gain_ema + eps).sqrt_())


def deva_sinf_direction(grad_rot: torch.Tensor, momentum: torch.Tensor, gain_ema: torch.Tensor | None, t: int, *,
                        beta1: float, beta2: float, eps: float, nesterov: bool, gain: str, sign_stabilized: bool,
                        bias_correction: bool, rms_scale: float, ns_coefficients, ns_steps: int,
                        orthogonalizer: str = "newton_schulz", keep_gain: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The DeVA-S∞ update in the eigenbasis, 0.2·√max(n,m)·Γ⊙msign(N), and (``keep_gain``) the gain Γ
    (bias correction √(1−β2^t)/(1−β1^t) folded in). ``momentum``/``gain_ema`` are updated in place.
    ``gain="none"`` is the Γ ≡ 1 ablation (Muon at RMS 0.2): the bias correction belongs to Γ
    (it corrects the ratio of two EMAs), so that variant steps with the plain η."""
    momentum.lerp_(grad_rot, 1 - beta1)
    direction = torch.lerp(grad_rot, momentum, beta1) if nesterov else momentum
    if sign_stabilized:  # AdaMuon-style O = msign(sign(N))
        direction = direction.sign()
    update = msign(direction, ns_coefficients, ns_steps, orthogonalizer)
    scale = rms_scale * math.sqrt(max(grad_rot.shape))
    if gain == "none":
        return update.mul_(scale), None
    source = momentum if gain == "momentum" else grad_rot
    bias = (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t) if bias_correction else 1.0
    scaled_gain = spectral_gain(source, gain_ema, beta2, eps, factor=bias * scale)  # one pass applies both
    update.mul_(scaled_gain)
    return update, scaled_gain.div_(scale) if keep_gain else None


class DevaSinf(EigenbasisOptimizer):
    """DeVA-S∞ for matrices (conv filters viewed as (out, in·kh·kw)). Defaults as the public code:
    lr 3e-3, betas (0.95, 0.95), shampoo_beta = β2, eps 1e-8, WD 0.01 (after the step), refresh
    every 10 steps, max_precond_dim 10000, bias correction on, Nesterov on, update RMS 0.2.

    ``orthogonalizer``: "newton_schulz" (torch's, shared with Muon) or "authors" (the code's msign).

    Variants (Reconstructed, spec §2.2): ``basis="identity"`` (Γ in the original coordinates,
    Q = Id), ``gain="none"`` (Γ ≡ 1; no eigenbasis is kept since msign is equivariant),
    ``gain="instantaneous"`` (r, c from G̃ instead of M), ``sign_stabilized=True`` (msign(sign(N))).
    """

    def __init__(self, params, lr: float = 3e-3, betas: tuple[float, float] = (0.95, 0.95),
                 shampoo_beta: float | None = None, eps: float = 1e-8, weight_decay: float = 0.01,
                 precondition_frequency: int = 10, max_precond_dim: int = 10000, bias_correction: bool = True,
                 nesterov: bool = True, gain: str = "momentum", basis: str = "eigen", sign_stabilized: bool = False,
                 rms_scale: float = 0.2, skip_first_step: bool = True, ns_coefficients=NS_COEFFICIENTS,
                 ns_steps: int = 5, orthogonalizer: str = "newton_schulz", keep_gain: bool = False):
        check_common_hparams("DevaSinf", lr, betas, eps, weight_decay, precondition_frequency, max_precond_dim)
        if shampoo_beta is not None and not 0.0 <= shampoo_beta < 1.0:
            raise ValueError(f"DevaSinf: shampoo_beta must be in [0, 1) or None (= beta2), got {shampoo_beta}")
        if gain not in GAINS:
            raise ValueError(f"DevaSinf: gain must be one of {GAINS}, got {gain!r}")
        if basis not in ("eigen", "identity"):
            raise ValueError(f"DevaSinf: basis must be 'eigen' or 'identity', got {basis!r}")
        if not rms_scale > 0:
            raise ValueError(f"DevaSinf: rms_scale must be > 0, got {rms_scale}")
        defaults = dict(lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps, weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency, max_precond_dim=max_precond_dim,
                        bias_correction=bias_correction, nesterov=nesterov, gain=gain, basis=basis,
                        sign_stabilized=sign_stabilized, rms_scale=rms_scale, skip_first_step=skip_first_step,
                        ns_coefficients=tuple(ns_coefficients), ns_steps=ns_steps, orthogonalizer=orthogonalizer,
                        keep_gain=keep_gain)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        check_orthogonalizer(self.param_groups[-1]["orthogonalizer"], "DevaSinf")
        for p in self.param_groups[-1]["params"]:
            if p.ndim < 2:
                raise ValueError(f"DevaSinf takes matrices (or conv filters); got a parameter of shape "
                                 f"{tuple(p.shape)}: route it to AdamW or DevaLinf (geomopt.optim.route_params)")

    def _step_param(self, p: torch.Tensor, group: dict) -> None:
        beta1, beta2 = group["betas"]
        grad = as_matrix(p.grad).float()
        state = self.state[p]
        buffers = ("momentum",) if group["gain"] == "none" else ("momentum", "gain_ema")
        if self._first_call(state, grad, group, buffers, rotate=group["basis"] == "eigen" and group["gain"] != "none"):
            return
        state["step"] += 1
        t = state["step"]
        left, right = bases(state)
        update, gamma = deva_sinf_direction(
            to_eigenbasis(grad, left, right), state["momentum"], state.get("gain_ema"), t, beta1=beta1,
            beta2=beta2, eps=group["eps"], nesterov=group["nesterov"], gain=group["gain"],
            sign_stabilized=group["sign_stabilized"], bias_correction=group["bias_correction"],
            rms_scale=group["rms_scale"], ns_coefficients=group["ns_coefficients"], ns_steps=group["ns_steps"],
            orthogonalizer=group.get("orthogonalizer", "newton_schulz"), keep_gain=group["keep_gain"])
        p.add_(from_eigenbasis(update, left, right).reshape(p.shape).to(p.dtype), alpha=-group["lr"])
        if group["weight_decay"] > 0:
            p.mul_(1 - group["lr"] * group["weight_decay"])  # after the step, uncorrected η (as the code)
        if group["keep_gain"] and gamma is not None:
            state["gain"] = gamma
        if left is None and right is None:
            return
        # Shampoo factors and (every k steps) the eigenbasis; M follows the basis.
        refresh = t % group["precondition_frequency"] == 0
        momentum = from_eigenbasis(state["momentum"], left, right) if refresh else None
        gain_ema = update_factors(state, grad, shampoo_beta(group), refresh, state.get("gain_ema"))
        if refresh:
            if gain_ema is not None:
                state["gain_ema"] = gain_ema
            state["momentum"] = to_eigenbasis(momentum, *bases(state))
