"""Paper 2 (DeVA), claim C2: variance adaptation improves blockwise smoothness.

Claim (abstract, spec §1 C2): "Variance adaptation improves blockwise smoothness, so DeVA gains
most when curvature is heterogeneous across blocks."

The quantity the claim is about. The paper's evidence is Figure 2 (c, d), which the authors'
public script and notebook draw: along DeVA's own trajectory on the toy quadratic, the Γ-weighted
norm ‖H‖_{1,Γ} = Σ_ij H_ij·Γ_ij (their ``L_norm``, the raw gain Γ as the optimizer stores it)
against ‖H‖_{1,1} = Σ_ij H_ij (``H_norm``, "non-adaptive methods"), median and IQR over seeds.
The verdict is on that quantity, on the figure's trajectory (the script's unsquared minibatch loss,
rows drawn with replacement, the authors' msign, β1 = 0, β2 = 0.99, lr 0.1, deva_toy_quadratic.py):
C2 holds on the heterogeneous Hessian if the median over seeds and recorded steps of
‖H‖_{1,Γ}/‖H‖_{1,1} is below 1 for both DeVA-S∞ and DeVA-ℓ∞. Raw Γ: DeVA-ℓ∞'s |m|/√(v + ε);
DeVA-S∞'s √(r_i c_j)/√(V_ij + ε) without the bias correction (the code keeps that in the step
size), paired with H entry by entry although it lives in Shampoo's eigenbasis (as the code does).
The sums are signed (spec §3.5), so ‖H‖_{1,Γ} can be ≤ 0; its share is reported (the authors'
log-scale plot drops such values; here they stay in the median).

Reported beside it, in the same record (not part of the verdict):
- the same ratio with Γ normalised to mean 1 (the code's norm at equal average step size);
- the exact Γ-weighted smoothness constant L_Γ = sup{Tr(ΔᵀHΔ) : |Δ_ij| ≤ Γ̄_ij}, Γ̄ = Γ/mean(Γ),
  against L_1 (Γ̄ ≡ 1), and with Γ at RMS 1. Tr(ΔᵀHΔ) = Σ_j Δ_:jᵀHΔ_:j separates over columns and
  a convex quadratic peaks over a box at a vertex, so each column is a maximum over the 2⁹ sign
  vectors (exact). For DeVA-S∞, Δ = Q_L D Q_Rᵀ, so H becomes H̃ = Q_LᵀHQ_L; for DeVA-ℓ∞ the
  constant also splits over the three Hessian blocks (rows of X), reported per block;
- the homogeneous Hessian, and the squared-loss trajectory.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from geomopt.optim.deva import DevaLinf, DevaSinf
from geomopt.report.checks import THEORY_DIR, Outcome, load

PAPER = "paper2"
CLAIM = ("Variance adaptation improves blockwise smoothness (C2; Figure 2 c–d): along DeVA's trajectory on the "
         "block-heterogeneous toy Hessian, ‖H‖_{1,Γ} = Σ_ij H_ij Γ_ij is below ‖H‖_{1,1} = Σ_ij H_ij "
         "(median ratio < 1, DeVA-S∞ and DeVA-ℓ∞)")

toy = load(THEORY_DIR / "deva_toy_quadratic.py")

FACTORIES = {
    "deva_sinf": lambda ps, lr, o: DevaSinf(ps, lr=lr, betas=(0.0, toy.BETA2), weight_decay=0.0, keep_gain=True,
                                            orthogonalizer=o),
    "deva_linf": lambda ps, lr, o: DevaLinf(ps, lr=lr, betas=(0.0, toy.BETA2), keep_gain=True),
}


def box_smoothness(h: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Exact sup{Tr(ΔᵀHΔ): |Δ_ij| ≤ gain_ij} per column, batched: h (B, d, d), gain (B, d, p) -> (B, p).

    Vertex enumeration over the 2^d sign patterns of each column (d = 9 here)."""
    signs = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=h.shape[-1])), dtype=h.dtype)  # (2^d, d)
    vertices = signs[None, :, None, :] * gain.transpose(1, 2)[:, None, :, :]  # (B, 2^d, p, d)
    quad = torch.einsum("bkpi,bil,bkpl->bkp", vertices, h, vertices)
    return quad.max(dim=1).values


def smoothness_ratios(h: torch.Tensor, h_rotated: torch.Tensor, gain: torch.Tensor,
                      per_block: bool) -> dict[str, torch.Tensor]:
    """Batched over B, from the raw gain Γ (B, d, p): the code's ‖H‖_{1,Γ}/‖H‖_{1,1} with Γ raw
    (the verdict's quantity) and at mean 1, paired with ``h`` entry by entry as the code does; and
    the exact L_Γ/L_1 (Γ at mean 1, and at RMS 1) on ``h_rotated``, the Hessian in Γ's coordinates
    (per Hessian block of rows when ``per_block``)."""
    mean1 = gain / gain.mean(dim=(1, 2), keepdim=True).clamp(min=1e-30)
    rms1 = gain / gain.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-30)
    unweighted = box_smoothness(h_rotated, torch.ones_like(gain)).sum(1)
    out = {"code_norm_ratio": (h * gain).sum((1, 2)) / h.sum((1, 2)),
           "code_norm_ratio_mean1": (h * mean1).sum((1, 2)) / h.sum((1, 2)),
           "ratio": box_smoothness(h_rotated, mean1).sum(1) / unweighted,
           # Γ at RMS 1 instead of mean 1 (mean 1 lets Jensen inflate Σ Γ² for any uneven Γ).
           "ratio_rms1": box_smoothness(h_rotated, rms1).sum(1) / unweighted}
    for b in range(toy.DIM // toy.BLOCK if per_block else 0):
        rows = slice(b * toy.BLOCK, (b + 1) * toy.BLOCK)
        hb, gb = h_rotated[:, rows, rows], mean1[:, rows, :]
        out[f"block{b}_ratio"] = box_smoothness(hb, gb).sum(1) / box_smoothness(hb, torch.ones_like(gb)).sum(1)
    return out


def raw_gain(opt: torch.optim.Optimizer, state: dict) -> torch.Tensor:
    """Γ as the authors' code stores it: DevaSinf folds the bias correction √(1−β2^t)/(1−β1^t)
    into its kept gain; the code keeps it in the step size, so it is divided out here."""
    if not isinstance(opt, DevaSinf):
        return state["gain"]
    beta1, beta2 = opt.param_groups[0]["betas"]
    t = state["step"]
    return state["gain"] * (1 - beta1 ** t) / (1 - beta2 ** t) ** 0.5


def trajectory_ratios(name: str, problems: dict, every: int, squared: bool) -> dict[str, np.ndarray]:
    """Ratios at every ``every``-th step (from step 0, as the authors' figure), pooled over seeds:
    key -> (n_records, S); "step" -> the steps recorded."""
    h = problems["H"].double()
    records: dict[str, list] = {}

    def on_step(t, opt, params):
        if t % every:
            return
        states = [opt.state[p] for p in params]
        if "gain" not in states[0]:
            return  # DeVA-S∞'s first call builds the basis only
        gain = torch.stack([raw_gain(opt, s) for s in states]).double()
        h_rotated, rotated = h, "left_basis" in states[0]
        if rotated:  # Γ acts in the eigenbasis: H̃ = Q_Lᵀ H Q_L
            q = torch.stack([s["left_basis"] for s in states]).double()
            h_rotated = q.transpose(1, 2) @ h @ q
        for key, v in smoothness_ratios(h, h_rotated, gain, per_block=not rotated).items():
            records.setdefault(key, []).append(v.numpy())
        records.setdefault("step", []).append(np.full(len(params), t))

    toy.run(name, problems, squared=squared, factory=FACTORIES[name], on_step=on_step)
    return {k: np.stack(v) for k, v in records.items()}


def summarise(ratios: dict[str, np.ndarray]) -> dict:
    """Medians over seeds and steps of every ratio, the verdict quantity's IQR and ≤ 0 share, and
    per-step median/IQR curves (the figure's)."""
    main = ratios["code_norm_ratio"]
    out = {f"median_{k}": float(np.median(v)) for k, v in ratios.items() if k != "step"}
    out.update({"q25_code_norm_ratio": float(np.quantile(main, 0.25)),
                "q75_code_norm_ratio": float(np.quantile(main, 0.75)),
                "code_norm_nonpositive_share": float((main <= 0).mean()),
                "steps_recorded": ratios["step"][:, 0].tolist()})
    for key in ("code_norm_ratio", "ratio"):
        out[f"{key}_median_over_seeds"] = np.median(ratios[key], axis=1)
        out[f"{key}_q25_over_seeds"] = np.quantile(ratios[key], 0.25, axis=1)
        out[f"{key}_q75_over_seeds"] = np.quantile(ratios[key], 0.75, axis=1)
    return out


def check(quick: bool = False, seed: int = 0) -> Outcome:
    torch.set_num_threads(1)
    n_seeds, steps, every = (3, 40, 10) if quick else (100, 400, 5)
    measured: dict = {
        "n_seeds": n_seeds, "steps": steps, "every": every,
        "quantity": "‖H‖_{1,Γ}/‖H‖_{1,1} = Σ_ij H_ij Γ_ij / Σ_ij H_ij, raw Γ (the authors' L_norm / H_norm)",
        "setup": {"loss": toy.VERDICT_LOSS, "rows": toy.SAMPLING, "orthogonalizer": toy.ORTHOGONALIZER,
                  "lr": toy.LR, "betas": [0.0, toy.BETA2]},
        "exact_method": "vertex enumeration over 2^9 sign patterns per column"}
    for hessian, eigs in toy.HESSIANS.items():
        problems = toy.make_problems(eigs, n_seeds, steps, seed)
        for name in FACTORIES:
            measured[f"{hessian}/{name}"] = summarise(trajectory_ratios(name, problems, every, squared=False))
            if not quick:  # robustness: the squared-loss trajectory
                sq = trajectory_ratios(name, problems, every, squared=True)
                measured.setdefault("squared_loss", {})[f"{hessian}/{name}"] = {
                    f"median_{k}": float(np.median(sq[k])) for k in ("code_norm_ratio", "ratio", "ratio_rms1")}
    get = lambda key, field="median_code_norm_ratio": measured[key][field]  # noqa: E731
    holds = {n: get(f"heterogeneous/{n}") < 1.0 for n in FACTORIES}
    measured["claim"] = {"holds_per_optimizer": holds,
                         "gain_larger_on_heterogeneous": {n: get(f"heterogeneous/{n}") < get(f"homogeneous/{n}")
                                                          for n in FACTORIES}}
    passed = all(holds.values())
    summary = "; ".join([
        "verdict on ‖H‖_{1,Γ}/‖H‖_{1,1} (raw Γ, the figure's; unsquared-loss trajectory), median: hetero "
        + ", ".join(f"{n} {get('heterogeneous/' + n):.3f} ({'below 1' if holds[n] else 'NOT below 1'}, "
                    f"{get('heterogeneous/' + n, 'code_norm_nonpositive_share'):.0%} ≤ 0)" for n in FACTORIES)
        + "; homo " + ", ".join(f"{n} {get('homogeneous/' + n):.3f}" for n in FACTORIES),
        "beside it: Γ at mean 1 hetero " + ", ".join(
            f"{n} {get('heterogeneous/' + n, 'median_code_norm_ratio_mean1'):.3f}" for n in FACTORIES),
        "exact L_Γ/L_1 (Γ mean 1) hetero " + ", ".join(
            f"{n} {get('heterogeneous/' + n, 'median_ratio'):.3f}" for n in FACTORIES)
        + ", homo " + ", ".join(f"{n} {get('homogeneous/' + n, 'median_ratio'):.3f}" for n in FACTORIES),
        "exact, Γ RMS 1 hetero " + ", ".join(
            f"{n} {get('heterogeneous/' + n, 'median_ratio_rms1'):.3f}" for n in FACTORIES),
    ] + (["squared-loss trajectory hetero, raw / exact: " + ", ".join(
        f"{n} {measured['squared_loss']['heterogeneous/' + n]['median_code_norm_ratio']:.3f} / "
        f"{measured['squared_loss']['heterogeneous/' + n]['median_ratio']:.3f}" for n in FACTORIES)]
        if not quick else []))
    return Outcome(measured=measured, passed=passed, summary=summary)


if __name__ == "__main__":
    import sys

    from geomopt.report.checks import main

    sys.exit(main(only=["deva_blockwise_smoothness"]))
