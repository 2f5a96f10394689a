"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner.

Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"
(arXiv 2409.11321), Algorithm 3, written from the paper. For a matrix W with
gradient G (n×m):

    L ← β_sh·L + (1−β_sh)·GGᵀ ,  R ← β_sh·R + (1−β_sh)·GᵀG      # Shampoo's factors
    Q_L, Q_R: eigenvectors of L, R (descending), refreshed every f steps
    G' = Q_Lᵀ G Q_R                                                # rotate into the eigenbasis
    M  ← β1·M + (1−β1)·G          (first moment in the ORIGINAL basis)
    M' = Q_Lᵀ M Q_R
    V' ← β2·V' + (1−β2)·G'⊙G'     (second moment in the eigenbasis)
    N  = Q_L (M' / (√V' + ε)) Q_Rᵀ                                 # Adam step, rotated back
    W  ← W − η·√(1−β2^t)/(1−β1^t)·N ;  W ← W − η·λ·W               # decoupled WD after the step

Conventions taken from the paper's reference implementation:
- The first call only initialises L, R (with that gradient) and Q_L, Q_R (exact
  eigendecomposition); it does not move the parameter (``skip_first_step``).
- The refresh is one step of subspace (power) iteration, Q ← QR(L·Q), after
  re-sorting Q's columns (and V's matching axis) by the estimated eigenvalues
  diag(QᵀLQ); an exact ``eigh`` happens only at initialisation.
- A side longer than ``max_precond_dim`` is not rotated (identity basis), so a
  1-D parameter is plain Adam (the paper's ``precondition_1d = False``).
- Conv filters are viewed as (out, in·kh·kw) matrices (the reference code would
  instead precondition each of the 4 axes; we keep the repo's one convention).

The eigenbasis helpers below are shared with DeVA-S∞ (``geomopt.optim.deva``).
"""

from __future__ import annotations

import torch

from geomopt.optim import shard
from geomopt.optim.closure import closure_loss

# ---------------------------------------------------------------------------
# Pure eigenbasis helpers. A basis of ``None`` means "this side is not rotated".


def initial_basis(factor: torch.Tensor) -> torch.Tensor:
    """Eigenvectors of a symmetric PSD factor, columns in descending eigenvalue order."""
    # eigh returns ascending eigenvalues; the tiny shift keeps eigh stable on an exactly
    # rank-deficient factor (the first gradient's GGᵀ has rank ≤ min(n, m)).
    eye = torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device)
    _, vecs = torch.linalg.eigh(factor + 1e-30 * eye)
    return vecs.flip(1)


def refresh_basis(factor: torch.Tensor, basis: torch.Tensor, second_moment: torch.Tensor | None,
                  axis: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One power step + QR on ``basis`` (SOAP's refresh), re-sorted by estimated eigenvalue.

    ``second_moment`` (the statistics kept in the eigenbasis) is permuted along ``axis``
    like the basis columns, so that each entry stays attached to its eigenvector.
    """
    power = factor @ basis  # one matmul serves both the estimate diag(QᵀLQ) and the power step
    estimated_eigs = (basis * power).sum(0)
    order = torch.argsort(estimated_eigs, descending=True)
    if second_moment is not None:
        second_moment = second_moment.index_select(axis, order)
    basis, _ = torch.linalg.qr(power[:, order])
    return basis, second_moment


def to_eigenbasis(x: torch.Tensor, left: torch.Tensor | None, right: torch.Tensor | None) -> torch.Tensor:
    """Q_Lᵀ X Q_R (an unrotated side is skipped), computed in the bases' dtype (bf16 projectors:
    see ``PROJECTION_DTYPES``) and returned in x's."""
    dtype, low = x.dtype, _basis_dtype(left, right)
    x = x.to(low) if low is not None else x
    if left is not None:
        x = left.T @ x
    if right is not None:
        x = x @ right
    return x.to(dtype)


def from_eigenbasis(x: torch.Tensor, left: torch.Tensor | None, right: torch.Tensor | None) -> torch.Tensor:
    """Q_L X Q_Rᵀ, the inverse of :func:`to_eigenbasis`."""
    dtype, low = x.dtype, _basis_dtype(left, right)
    x = x.to(low) if low is not None else x
    if left is not None:
        x = left @ x
    if right is not None:
        x = x @ right.T
    return x.to(dtype)


def _basis_dtype(left: torch.Tensor | None, right: torch.Tensor | None) -> torch.dtype | None:
    return left.dtype if left is not None else (right.dtype if right is not None else None)


def as_2d(t: torch.Tensor) -> torch.Tensor:
    """A parameter as the matrix SOAP preconditions: 1-D -> (1, n) (its length-1 side is never
    rotated), conv filters -> (out, in·kh·kw)."""
    return t.reshape(1, -1) if t.ndim < 2 else t.reshape(t.shape[0], -1)


# Shampoo's factors L, R and their eigenbases live in an optimizer's per-parameter state under
# "left_factor", "left_basis", "right_factor", "right_basis"; a side that is not rotated has none.
# With a low-precision ``projection_dtype`` (a param-group key), "left_projector"/"right_projector"
# hold copies of the bases in that dtype: the per-step rotations use them (bf16 matmuls, as Muon's
# Newton–Schulz), while the factors, the refresh (power step + QR) and the bases stay fp32.

PROJECTION_DTYPES = {None: None, "fp32": None, "bf16": torch.bfloat16}


def init_factors(state: dict, grad: torch.Tensor, beta: float, max_dim: int, rotate: bool,
                 keep_grad: bool) -> None:
    """First call: exact eigenbases of this gradient's GGᵀ and GᵀG. With ``keep_grad`` the
    factors start as (1−β)·GGᵀ (the reference convention: that call makes no step);
    otherwise they start at 0 and the step's own factor update adds this gradient once."""
    n, m = grad.shape
    for side, dim, outer in (("left", n, lambda: grad @ grad.T), ("right", m, lambda: grad.T @ grad)):
        if rotate and 1 < dim <= max_dim:
            factor = (1 - beta) * outer()
            state[f"{side}_basis"] = initial_basis(factor)
            state[f"{side}_factor"] = factor if keep_grad else torch.zeros_like(factor)


def bases(state: dict) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(Q_L, Q_R) of a parameter's state as the steps project with them (the low-precision
    projectors if there are any); None for a side that is not rotated."""
    return tuple(state.get(f"{side}_projector", state.get(f"{side}_basis")) for side in ("left", "right"))


def check_projection_dtype(name: str, projection_dtype: str | None) -> None:
    if projection_dtype not in PROJECTION_DTYPES:
        raise ValueError(f"{name}: projection_dtype={projection_dtype!r} unknown; choose one of: None, 'fp32', 'bf16'")


def make_projectors(state: dict, projection_dtype: str | None) -> None:
    """(Re)build the low-precision copies of the bases used for the per-step rotations."""
    dtype = PROJECTION_DTYPES[projection_dtype]
    for side in ("left", "right"):
        if dtype is not None and f"{side}_basis" in state:
            state[f"{side}_projector"] = state[f"{side}_basis"].to(dtype)


def update_factors(state: dict, grad: torch.Tensor, beta: float, refresh: bool,
                   second_moment: torch.Tensor | None) -> torch.Tensor | None:
    """EMA of GGᵀ and GᵀG; on ``refresh``, one power step + QR per side.
    Returns ``second_moment`` permuted like the refreshed bases."""
    if "left_factor" in state:
        state["left_factor"].lerp_(grad @ grad.T, 1 - beta)
    if "right_factor" in state:
        state["right_factor"].lerp_(grad.T @ grad, 1 - beta)
    if refresh:
        for axis, side in enumerate(("left", "right")):
            if f"{side}_factor" in state:
                state[f"{side}_basis"], second_moment = refresh_basis(
                    state[f"{side}_factor"], state[f"{side}_basis"], second_moment, axis)
                if f"{side}_projector" in state:
                    state[f"{side}_projector"] = state[f"{side}_basis"].to(state[f"{side}_projector"].dtype)
    return second_moment


def check_common_hparams(name: str, lr: float, betas: tuple[float, float], eps: float, weight_decay: float,
                         precondition_frequency: int, max_precond_dim: int) -> None:
    if not lr >= 0.0:
        raise ValueError(f"{name}: lr must be >= 0, got {lr}")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
    if not eps >= 0.0:
        raise ValueError(f"{name}: eps must be >= 0, got {eps}")
    if not weight_decay >= 0.0:
        raise ValueError(f"{name}: weight_decay must be >= 0, got {weight_decay}")
    if not (isinstance(precondition_frequency, int) and precondition_frequency >= 1):
        raise ValueError(f"{name}: precondition_frequency must be an int >= 1, got {precondition_frequency}")
    if not (isinstance(max_precond_dim, int) and max_precond_dim >= 1):
        raise ValueError(f"{name}: max_precond_dim must be an int >= 1, got {max_precond_dim}")


class EigenbasisOptimizer(torch.optim.Optimizer):
    """What SOAP and DevaSinf share: one step per parameter in a Shampoo eigenbasis, whose first
    gradient sets up the factors (and, with ``skip_first_step``, takes no step). A param group's
    ``projection_dtype`` ("bf16") makes the per-step rotations bf16 (DevaSinf: pass it in the
    param-group dict until its constructor takes it). Under DDP,
    ``opt.shard = True`` makes each rank step only its share of the matrices and broadcast them
    (``geomopt.optim.shard``)."""

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        check_projection_dtype(type(self).__name__, self.param_groups[-1].get("projection_dtype"))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            mine, stepped, owners = shard.my_share(self, group)
            for p in stepped:
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            for p in mine:
                self._step_param(p, group)
            shard.count_steps(self, len(mine))
            shard.broadcast_from_owners(stepped, owners)
        return loss

    def _step_param(self, p: torch.Tensor, group: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def _first_call(state: dict, grad: torch.Tensor, group: dict, buffers: tuple[str, ...], rotate: bool) -> bool:
        """Set up ``state`` (step 0, zero ``buffers``, Shampoo factors) on a parameter's first gradient.
        True when this call takes no step."""
        if "step" in state:
            return False
        state["step"] = 0
        for name in buffers:
            state[name] = torch.zeros_like(grad)
        init_factors(state, grad, shampoo_beta(group), group["max_precond_dim"], rotate=rotate,
                     keep_grad=group["skip_first_step"])
        make_projectors(state, group.get("projection_dtype"))
        return group["skip_first_step"]


def shampoo_beta(group: dict) -> float:
    """The Shampoo factors' EMA rate: ``shampoo_beta``, or β₂ when it is None."""
    return group["betas"][1] if group["shampoo_beta"] is None else group["shampoo_beta"]


# ---------------------------------------------------------------------------


class SOAP(EigenbasisOptimizer):
    """SOAP (Vyas et al. 2024, Alg. 3). Defaults are the paper's: lr 3e-3, betas (0.95, 0.95),
    shampoo_beta = β2, eps 1e-8, weight decay 0.01, refresh every 10 steps, max_precond_dim 10000.
    ``projection_dtype="bf16"`` rotates into and out of the eigenbasis with bf16 copies of the bases
    (the statistics, factors and refresh stay fp32); None (default) keeps everything fp32."""

    def __init__(self, params, lr: float = 3e-3, betas: tuple[float, float] = (0.95, 0.95),
                 shampoo_beta: float | None = None, eps: float = 1e-8, weight_decay: float = 0.01,
                 precondition_frequency: int = 10, max_precond_dim: int = 10000, bias_correction: bool = True,
                 skip_first_step: bool = True, projection_dtype: str | None = None):
        check_common_hparams("SOAP", lr, betas, eps, weight_decay, precondition_frequency, max_precond_dim)
        if shampoo_beta is not None and not 0.0 <= shampoo_beta < 1.0:
            raise ValueError(f"SOAP: shampoo_beta must be in [0, 1) or None (= beta2), got {shampoo_beta}")
        defaults = dict(lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps, weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency, max_precond_dim=max_precond_dim,
                        bias_correction=bias_correction, skip_first_step=skip_first_step,
                        projection_dtype=projection_dtype)
        super().__init__(params, defaults)

    def _step_param(self, p: torch.Tensor, group: dict) -> None:
        beta1, beta2 = group["betas"]
        grad = as_2d(p.grad).float()
        state = self.state[p]
        if self._first_call(state, grad, group, ("exp_avg", "exp_avg_sq"), rotate=p.ndim >= 2):
            return
        state["step"] += 1
        t = state["step"]
        left, right = bases(state)
        grad_rot = to_eigenbasis(grad, left, right)
        state["exp_avg"].lerp_(grad, 1 - beta1)  # first moment in the original basis (Alg. 3)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad_rot, grad_rot, value=1 - beta2)
        adam_rot = to_eigenbasis(state["exp_avg"], left, right) / (state["exp_avg_sq"].sqrt() + group["eps"])
        step_size = group["lr"]
        if group["bias_correction"]:
            step_size = step_size * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
        p.add_(from_eigenbasis(adam_rot, left, right).reshape(p.shape).to(p.dtype), alpha=-step_size)
        if group["weight_decay"] > 0:
            p.mul_(1 - group["lr"] * group["weight_decay"])  # after the step, as the paper's code
        state["exp_avg_sq"] = update_factors(state, grad, shampoo_beta(group), t % group["precondition_frequency"] == 0,
                                             state["exp_avg_sq"])
