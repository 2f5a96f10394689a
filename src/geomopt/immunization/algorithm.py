"""Algorithm 1 (full-batch GD, θ-side K⁻¹ preconditioning) and the baselines.

Every method runs the same loop; only its terms differ:

    ours       L(D_P,ω,θ) + λ_P·R_well(H_P) + λ_H·R_ill(H_H)          (Eq. 11, Alg. 1)
    task_only  L(D_P,ω,θ)                                            (plain pre-training, Table 1's reference)
    rill_only  λ_H·R_ill(H_H)                                        (baseline)
    opt_kappa  L(D_P,ω,θ) + λ_P·log κ(H_P) + λ_H/log κ(H_H)          (baseline; **Reconstructed**
               from an unused loss in the public code, spec §2)

``ω ← ω − η∇_ωL``; ``θ ← θ − η∇_θL − η Σ λ_X·P_X(∇_θR_X)``. The task gradient is
not preconditioned (Alg. 1). P_X is the preconditioner of the term's data set:

    left   (K_X + εI)⁻¹·∇_θ   Alg. 1 / Thm 4.3: θ′ = θ(I − 2ηA), eigenvectors of H kept
    right  ∇_θ·(K_X + εI)⁻¹   the public code's layer (spec pitfall 2): ABLATION ONLY
    none   ∇_θ

ε = ``ridge`` · tr(K_X)/d (relative to the mean eigenvalue); a singular K_X with
ridge = 0 is an error.

**λ by gradient-norm balancing** (the paper: "set by balancing gradient norms"; its
exact rule is not public). The balance is λ_X = w_X·‖θ‖_F / ‖P_X(∇_θR_X)‖_F
(w_X = ``weight_P/H``, 1 by default), against ‖θ‖_F rather than ‖∇_θL‖_F because
∇_θL = 0 at ω₀ = 0 and again at the D_P optimum. ``lambda_schedule``:

    frozen    λ_X taken at step 0 and kept: fixed weights through training, as the
              paper's λ_P, λ_H and the authors' config (λ_r1 = 100, λ_r2 = 1e7) are
    per_step  λ_X,t re-balanced at every step (our earlier rule): each term moves θ by
              the same relative amount η per step, which cancels how R_ill's and
              1/log κ's gradients shrink as κ grows (for Opt κ, the 1/log²κ damping)

Since ‖θ‖_F = √Din at θ = Id, η must shrink with Din (see the runner).

**ω₀.** ``omega_init='zeros'`` (default) or 'normal': entries N(0, 1) from ``seed``, as
the authors' code initialises the head (``torch.randn(feat_size, 1)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from geomopt.immunization import regularizers as R
from geomopt.immunization.spectra import as_float64_matrix, as_square, condition_number, numerical_rank

REGULARIZED_METHODS = ("ours", "rill_only", "opt_kappa")  # Alg. 1 and the baselines (every table's rows)
METHODS = (*REGULARIZED_METHODS, "task_only")
PRECONDITION_SIDES = ("left", "right", "none")
LAMBDA_SCHEDULES = ("frozen", "per_step")
OMEGA_INITS = ("zeros", "normal")


@dataclass
class ImmunizationConfig:
    method: str = "ours"
    steps: int = 100
    lr: float = 0.005
    precondition: str = "left"
    ridge: float = 1e-6
    weight_P: float = 1.0  # multiplies the balanced λ_P,t (relative step of the D_P regularizer)
    weight_H: float = 1.0  # multiplies the balanced λ_H,t
    lambda_schedule: str = "per_step"
    omega_init: str = "zeros"
    seed: int = 0  # draws ω₀ when omega_init = 'normal'
    log_every: int = 1

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r} unknown; choose one of: {', '.join(METHODS)}")
        if self.precondition not in PRECONDITION_SIDES:
            raise ValueError(f"precondition {self.precondition!r} unknown; choose one of: {', '.join(PRECONDITION_SIDES)}")
        if self.lambda_schedule not in LAMBDA_SCHEDULES:
            raise ValueError(f"lambda_schedule {self.lambda_schedule!r} unknown; choose one of: {', '.join(LAMBDA_SCHEDULES)}")
        if self.omega_init not in OMEGA_INITS:
            raise ValueError(f"omega_init {self.omega_init!r} unknown; choose one of: {', '.join(OMEGA_INITS)}")
        if (self.steps < 0 or self.lr <= 0 or self.ridge < 0 or self.log_every < 1
                or self.weight_P < 0 or self.weight_H < 0):
            raise ValueError("need steps >= 0, lr > 0, ridge >= 0, weights >= 0, log_every >= 1; "
                             f"got {asdict(self)}")


@dataclass
class LinearTask:
    """D_P and D_H for a linear extractor θ ∈ ℝ^{Din×Din}: inputs (n×Din), D_P targets (n_P×m)."""

    X_P: np.ndarray
    Y_P: np.ndarray
    X_H: np.ndarray
    K_P: np.ndarray = field(init=False)
    K_H: np.ndarray = field(init=False)
    rank_P: int = field(init=False)
    rank_H: int = field(init=False)

    def __post_init__(self):
        self.X_P = as_float64_matrix(self.X_P, "X_P")
        self.X_H = as_float64_matrix(self.X_H, "X_H")
        Y = np.asarray(self.Y_P, dtype=np.float64)
        self.Y_P = Y[:, None] if Y.ndim == 1 else Y
        if self.X_P.shape[1] != self.X_H.shape[1]:
            raise ValueError(f"X_P has {self.X_P.shape[1]} features, X_H {self.X_H.shape[1]}")
        if self.Y_P.shape[0] != self.X_P.shape[0]:
            raise ValueError(f"Y_P has {self.Y_P.shape[0]} rows, X_P {self.X_P.shape[0]}")
        self.K_P = self.X_P.T @ self.X_P  # K = XᵀX (§2, factor 2 dropped)
        self.K_H = self.X_H.T @ self.X_H
        # rank θᵀKθ = rank K for invertible θ: fixed once, so κ never loses its smallest eigenvalue
        self.rank_P = numerical_rank(self.K_P)
        self.rank_H = numerical_rank(self.K_H)

    @property
    def dim(self) -> int:
        return self.X_P.shape[1]

    def task_loss(self, theta, omega) -> float:
        r = self.X_P @ theta @ omega - self.Y_P
        return float(np.sum(r**2) / self.X_P.shape[0])

    def task_grads(self, theta, omega):
        """(∇_ω, ∇_θ) of L = (1/n_P)‖X_Pθω − Y_P‖²."""
        n = self.X_P.shape[0]
        resid_feat = self.K_P @ theta @ omega - self.X_P.T @ self.Y_P  # X_Pᵀ(X_Pθω − Y)
        return (2.0 / n) * theta.T @ resid_feat, (2.0 / n) * resid_feat @ omega.T

    def least_squares_probe(self, theta) -> np.ndarray:
        return np.linalg.lstsq(self.X_P @ theta, self.Y_P, rcond=None)[0]

    def ranks(self, theta) -> tuple[int, int]:
        """(rank H_H, rank H_P) = min(rank K, Dout) for a generic θ ∈ ℝ^{Din×Dout}."""
        return min(self.rank_H, theta.shape[1]), min(self.rank_P, theta.shape[1])

    def kappas(self, theta) -> tuple[float, float]:
        rank_H, rank_P = self.ranks(theta)
        return (condition_number(R.hessian(theta, self.K_H), rank=rank_H),
                condition_number(R.hessian(theta, self.K_P), rank=rank_P))


def inverse_covariance(K, ridge: float = 0.0, name: str = "K") -> np.ndarray:
    """(K + ε I)⁻¹ with ε = ridge · tr(K)/d; ValueError for a singular K without ridge."""
    K = as_square(K, name)
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    d = K.shape[0]
    if ridge == 0.0:
        r = numerical_rank(K)
        if r < d:
            raise ValueError(f"{name} is singular (rank {r} < {d}); pass ridge > 0 to precondition with (K + εI)⁻¹")
        return np.linalg.inv(K)
    return np.linalg.inv(K + ridge * np.trace(K) / d * np.eye(d))


def precondition(grad: np.ndarray, K_inv: np.ndarray | None, side: str) -> np.ndarray:
    """P(∇_θ): K⁻¹·∇_θ (left, Alg. 1), ∇_θ·K⁻¹ (right, ablation) or ∇_θ (none)."""
    if side == "none" or K_inv is None:
        return grad
    if side == "left":
        return K_inv @ grad
    if side == "right":
        if grad.shape[1] != K_inv.shape[0]:
            raise ValueError(f"right preconditioning needs a square θ (Din = Dout), got ∇θ of shape {grad.shape}")
        return grad @ K_inv
    raise ValueError(f"precondition side {side!r} unknown; choose one of: {', '.join(PRECONDITION_SIDES)}")


def regularizer_terms(method: str, task: LinearTask) -> list[tuple[str, str, callable]]:
    """(name, data set 'P'/'H', θ ↦ raw ∇_θ) of each regularizer of ``method``."""
    rH = lambda th: task.ranks(th)[0]  # noqa: E731
    rP = lambda th: task.ranks(th)[1]  # noqa: E731
    if method == "ours":
        return [("r_well_P", "P", lambda th: R.r_well_grad_theta(th, task.K_P, rP(th))),
                ("r_ill_H", "H", lambda th: R.r_ill_grad_theta(th, task.K_H, rH(th)))]
    if method == "rill_only":
        return [("r_ill_H", "H", lambda th: R.r_ill_grad_theta(th, task.K_H, rH(th)))]
    if method == "opt_kappa":
        def inv_log_kappa_H(th):  # ∇ 1/log κ = −∇log κ / (log κ)²
            logk = np.log(task.kappas(th)[0])
            return -R.log_condition_grad_theta(th, task.K_H, rH(th)) / logk**2
        return [("log_kappa_P", "P", lambda th: R.log_condition_grad_theta(th, task.K_P, rP(th))),
                ("inv_log_kappa_H", "H", inv_log_kappa_H)]
    if method == "task_only":
        return []
    raise ValueError(f"method {method!r} unknown; choose one of: {', '.join(METHODS)}")


@dataclass
class ImmunizationResult:
    theta: np.ndarray
    omega: np.ndarray
    history: list[dict]
    config: ImmunizationConfig
    diverged_at: int | None = None  # step at which θ or ω became non-finite (last finite iterate kept)
    lambdas: dict = field(default_factory=dict)  # each term's last λ (the step-0 one when frozen)


def _algorithm1_step(task, theta, omega, terms, K_inv, config, uses_task, lambdas):
    """One iteration of Alg. 1: the new ω and the θ-direction (θ ← θ − η·direction).

    ``lambdas`` holds each term's λ once set; 'frozen' sets it at the first step only."""
    step = np.zeros_like(theta)
    if uses_task:
        omega = omega - config.lr * task.task_grads(theta, omega)[0]
        step += task.task_grads(theta, omega)[1]  # Alg. 1 uses the updated ω; not preconditioned
    theta_norm = np.linalg.norm(theta)
    for name, which, grad_fn in terms:
        g = precondition(grad_fn(theta), K_inv.get(which), config.precondition)
        g_norm = np.linalg.norm(g)
        weight = config.weight_P if which == "P" else config.weight_H
        if not (g_norm > 0 and np.isfinite(g_norm)):
            return omega, step + np.nan  # a regularizer blew up: report divergence rather than drop the term
        if config.lambda_schedule == "per_step" or name not in lambdas:
            lambdas[name] = weight * theta_norm / g_norm  # gradient-norm balancing (module doc)
        step += lambdas[name] * g
    return omega, step


def immunize(task: LinearTask, config: ImmunizationConfig, theta0: np.ndarray | None = None) -> ImmunizationResult:
    """Run Algorithm 1 (or a baseline) from θ₀ ∈ ℝ^{Din×Dout} (default Id) and ω₀ (``omega_init``).

    ω₀ = 0 by default rather than the least-squares probe: on near-singular K_P (Fashion-MNIST,
    κ ~ 1e9) the least-squares ω is huge and the first θ step on the task term explodes. With
    ω₀ = 0, task_only barely moves θ (∇_θL = 0 at ω = 0): it needs omega_init = 'normal'."""
    d = task.dim
    theta = np.eye(d) if theta0 is None else as_float64_matrix(theta0, "theta0").copy()
    if theta.shape[0] != d:
        raise ValueError(f"theta0 has {theta.shape[0]} rows, the data have {d} features (θ is Din×Dout)")
    if config.precondition == "right" and theta.shape[0] != theta.shape[1]:
        raise ValueError(f"right preconditioning ∇θ·K⁻¹ needs a square θ (Din = Dout), got {theta.shape}")
    omega = np.zeros((theta.shape[1], task.Y_P.shape[1]))
    if config.omega_init == "normal":
        omega = np.random.default_rng(config.seed).standard_normal(omega.shape)
    K_inv = {}
    if config.precondition != "none":
        K_inv = {"P": inverse_covariance(task.K_P, config.ridge, "K_P"),
                 "H": inverse_covariance(task.K_H, config.ridge, "K_H")}
    terms = regularizer_terms(config.method, task)
    uses_task = config.method != "rill_only"
    history, lambdas = [], {}

    def log(t):
        k_H, k_P = task.kappas(theta)
        history.append({"step": t, "kappa_H": k_H, "kappa_P": k_P, "task_loss": task.task_loss(theta, omega)})

    log(0)
    for t in range(1, config.steps + 1):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            omega_new, step = _algorithm1_step(task, theta, omega, terms, K_inv, config, uses_task, lambdas)
        if not (np.all(np.isfinite(step)) and np.all(np.isfinite(omega_new))):
            return ImmunizationResult(theta, omega, history, config, diverged_at=t, lambdas=lambdas)
        omega, theta = omega_new, theta - config.lr * step
        if t % config.log_every == 0 or t == config.steps:
            log(t)
    return ImmunizationResult(theta, omega, history, config, lambdas=lambdas)
