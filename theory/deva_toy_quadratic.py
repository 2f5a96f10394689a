"""Paper 2 (DeVA), Figure 2: the toy trace quadratic.

Claim (Figure 2 of Song et al., spec §1 and §3.4): "on a block-heterogeneous Hessian DeVA_S∞
reaches the lowest suboptimality" — median with IQR over 100 seeds; on the homogeneous Hessian
the authors' saved figure shows SOAP best (reported here as measured, not part of the verdict).

Setup, as the authors' public script (trace_quadratic.py; spec §0 and §3.4): f(X) = ½·Tr(XᵀHX),
X ∈ ℝ^{9×9}, f* = 0. H is block-diagonal with three randomly rotated 3×3 blocks, eigenvalues
{1,2,3},{99,100,101},{4998,4999,5000} (heterogeneous) or {1,99,4998},{2,100,4999},{3,101,5000}
(homogeneous). Written as least squares with A = H^{1/2}, each step's gradient comes from 3 rows
of A drawn WITH replacement (the script's torch.randint), scaled by 9/3. The verdict is on the
script's minibatch loss ½·3·‖A_I X‖_F, *not squared* (its docstring says squared; the figure saved
in the authors' notebook matches unsquared runs); the squared loss ½·3·‖A_I X‖²_F (unbiased
gradient 3·A_IᵀA_I X) is reported beside it in the same record as a robustness finding.
400 steps, lr constant for 200 steps then linearly to 0; lr 0.1 for every method; β1 = 0,
β2 = 0.99; no weight decay. "GD" is the script's deterministic full-batch GD: ∇f = HX at a
constant lr 1e-4 (the script's schedule line for GD is commented out), the same for both losses.
The orthogonalizer of Muon, AdaMuon and DeVA-S∞ is the authors' msign (``ORTHOGONALIZER``, as
the script's optimizers use it); every record names it.

Named ablations (full mode, same seeds, heterogeneous H): rows drawn without replacement
("rows_without_replacement"), minibatch SGD instead of full-batch GD ("gd_minibatch_sgd"),
torch's Newton–Schulz for every msign ("orthogonalizer_newton_schulz"); an lr sweep and the
DeVA-S∞ ablations (Γ ≡ 1, no eigenbasis) on 20 fresh seeds.

Every seed draws its own rotations, X0 ~ N(0, 1) and row samples; all optimizers share them.
The seeds run as S independent 9×9 parameters of one *real* optimizer (the classes of
geomopt.optim / torch.optim, not re-implementations); gradients are computed batched.
Muon follows the authors' code, scaled by √max(n, m) = 3 (update RMS ≈ 1): torch's Muon with
lr·3. DeVA-S∞ keeps its 0.2·√max(n, m) scaling (update RMS ≈ 0.2·mean Γ), as in the code.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from geomopt.optim.adamuon import AdaMuon
from geomopt.optim.deva import DevaLinf, DevaSinf
from geomopt.optim.muon import Muon
from geomopt.optim.signsgd import SignSGD
from geomopt.optim.soap import SOAP
from geomopt.report.checks import Outcome

PAPER = "paper2"
CLAIM = ("DeVA_S∞ reaches the lowest suboptimality on the block-heterogeneous toy quadratic (Figure 2: "
         "median final f − f* over 100 seeds, lowest of the 8 optimizers, on the public script's minibatch "
         "loss ½·scale·‖R‖_F; the squared loss is a robustness variant)")

DIM, BLOCK, ROWS = 9, 3, 3
HESSIANS = {
    "heterogeneous": ((1.0, 2.0, 3.0), (99.0, 100.0, 101.0), (4998.0, 4999.0, 5000.0)),
    "homogeneous": ((1.0, 99.0, 4998.0), (2.0, 100.0, 4999.0), (3.0, 101.0, 5000.0)),
}
LR, GD_LR, BETA2 = 0.1, 1e-4, 0.99
VERDICT_LOSS, ROBUSTNESS_LOSS = "unsquared", "squared"
ORTHOGONALIZER = "authors"  # of Muon, AdaMuon, DeVA-S∞ in the headline runs
MSIGN_USERS = ("muon", "adamuon", "deva_sinf")
SAMPLING = "with_replacement"
SAMPLINGS = ("with_replacement", "without_replacement")
FULL_BATCH = ("gd",)  # exact gradient HX, constant lr: the script's deterministic GD

# name -> factory(params, lr, orthogonalizer). β1 = 0 everywhere (spec §3.4).
OPTIMIZERS = {
    "gd": lambda ps, lr, o: torch.optim.SGD(ps, lr=GD_LR / LR * lr),
    "adam": lambda ps, lr, o: torch.optim.Adam(ps, lr=lr, betas=(0.0, BETA2), foreach=True),
    "signsgd": lambda ps, lr, o: SignSGD(ps, lr=lr, momentum=0.0),
    "deva_linf": lambda ps, lr, o: DevaLinf(ps, lr=lr, betas=(0.0, BETA2)),
    "muon": lambda ps, lr, o: Muon(ps, lr=lr * math.sqrt(DIM), momentum=0.0, weight_decay=0.0, orthogonalizer=o),
    "adamuon": lambda ps, lr, o: AdaMuon(ps, lr=lr, betas=(0.0, BETA2), orthogonalizer=o),
    "soap": lambda ps, lr, o: SOAP(ps, lr=lr, betas=(0.0, BETA2), weight_decay=0.0),
    "deva_sinf": lambda ps, lr, o: DevaSinf(ps, lr=lr, betas=(0.0, BETA2), weight_decay=0.0, orthogonalizer=o),
}
# Named ablation: the minibatch SGD our toy used to call "GD" (scheduled, minibatch gradients).
GD_MINIBATCH = lambda ps, lr, o: torch.optim.SGD(ps, lr=GD_LR / LR * lr)  # noqa: E731


def random_rotation(n: int, gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # Haar-distributed


def block_hessian(block_eigs, gen: torch.Generator) -> torch.Tensor:
    """Block-diagonal H with each block Q diag(λ) Qᵀ for a random rotation Q."""
    blocks = []
    for eigs in block_eigs:
        q = random_rotation(len(eigs), gen)
        blocks.append(q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T)
    return torch.block_diag(*blocks)


def psd_sqrt(h: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(h)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def sample_rows(n_samples: int, gen: torch.Generator, sampling: str = SAMPLING) -> torch.Tensor:
    """(n_samples, 3) row indices of A: with replacement (the script's torch.randint) or without."""
    if sampling == "with_replacement":
        return torch.randint(0, DIM, (n_samples, ROWS), generator=gen)
    if sampling == "without_replacement":
        return torch.stack([torch.randperm(DIM, generator=gen)[:ROWS] for _ in range(n_samples)])
    raise ValueError(f"sampling {sampling!r} unknown; choose one of: {', '.join(SAMPLINGS)}")


def make_problems(block_eigs, n_seeds: int, steps: int, seed: int, sampling: str = SAMPLING) -> dict:
    """Per seed: H, A = H^{1/2}, X0 and the row samples of every step (shared by all optimizers)."""
    gen = torch.Generator().manual_seed(seed)
    hs = torch.stack([block_hessian(block_eigs, gen) for _ in range(n_seeds)])
    x0 = torch.randn(n_seeds, DIM, DIM, generator=gen)
    rows = sample_rows(steps * n_seeds, gen, sampling)
    return {"H": hs.float(), "A": torch.stack([psd_sqrt(h) for h in hs]).float(), "X0": x0,
            "rows": rows.reshape(steps, n_seeds, ROWS), "sampling": sampling}


def objective(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """f(X) = ½·Tr(XᵀHX) per seed (f* = 0)."""
    return 0.5 * torch.einsum("sij,sik,skj->s", x, h, x)


def minibatch_gradient(a: torch.Tensor, x: torch.Tensor, rows: torch.Tensor, squared: bool) -> torch.Tensor:
    """Gradient of ½·(9/3)·‖A_I X‖²_F (squared) or ½·(9/3)·‖A_I X‖_F (the public script's loss)."""
    a_rows = torch.gather(a, 1, rows.unsqueeze(-1).expand(-1, -1, DIM))  # (S, 3, 9)
    residual = a_rows @ x
    grad = (DIM / ROWS) * a_rows.transpose(1, 2) @ residual
    if not squared:
        grad = grad / (2 * residual.flatten(1).norm(dim=1).clamp(min=1e-30))[:, None, None]
    return grad


def lr_factor(step: int, steps: int) -> float:
    """Constant for the first half, then linear decay to 0."""
    half = steps // 2
    return 1.0 if step < half else (steps - step) / (steps - half)


def run(name: str, problems: dict, squared: bool, lr: float = LR, factory=None, on_step=None,
        orthogonalizer: str = ORTHOGONALIZER, full_batch: bool | None = None) -> torch.Tensor:
    """(S, steps+1) suboptimality f − f* of one optimizer on every seed. ``factory(params, lr, o)``
    overrides the optimizer; ``on_step(t, opt, params)`` is called after every step. Full-batch
    runs (GD by default) take ∇f = HX at a constant lr; the others minibatch gradients on the
    constant-then-linear schedule."""
    x_all = problems["X0"].clone()
    n_seeds, steps = x_all.shape[0], problems["rows"].shape[0]
    params = [x_all[i] for i in range(n_seeds)]  # views: the optimizer updates x_all in place
    opt = (factory or OPTIMIZERS[name])(params, lr, orthogonalizer)
    full_batch = name in FULL_BATCH if full_batch is None else full_batch
    sched = None if full_batch else torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps))
    losses = [objective(problems["H"], x_all)]
    for t in range(steps):
        if full_batch:
            grads = problems["H"] @ x_all
        else:
            grads = minibatch_gradient(problems["A"], x_all, problems["rows"][t], squared)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        if sched is not None:
            sched.step()
        if on_step is not None:
            on_step(t, opt, params)
        losses.append(objective(problems["H"], x_all))
    return torch.stack(losses, dim=1)


def quartiles(curves: torch.Tensor) -> dict[str, np.ndarray]:
    q = torch.nan_to_num(curves.double(), nan=float("inf")).quantile(torch.tensor([0.25, 0.5, 0.75],
                                                                                   dtype=torch.float64), dim=0)
    return {"q25": q[0].numpy(), "median": q[1].numpy(), "q75": q[2].numpy()}


# DeVA-S∞ ablations (spec §2.2), run on 20 fresh seeds in full mode: what Γ and the eigenbasis add.
ABLATIONS = {
    "deva_sinf_gamma1": lambda ps, lr, o: DevaSinf(ps, lr=lr, betas=(0.0, BETA2), weight_decay=0.0, gain="none",
                                                   orthogonalizer=o),
    "deva_sinf_noeig": lambda ps, lr, o: DevaSinf(ps, lr=lr, betas=(0.0, BETA2), weight_decay=0.0,
                                                  basis="identity", orthogonalizer=o),
}
SWEEP_LRS = (0.03, 0.1, 0.3, 1.0, 3.0)
SWEEP_METHODS = ("adam", "muon", "soap", "deva_sinf")
LOSSES = (VERDICT_LOSS, ROBUSTNESS_LOSS)


def median_final(name: str, problems: dict, loss: str, **kw) -> float:
    return float(quartiles(run(name, problems, loss == "squared", **kw))["median"][-1])


def lr_sweep(lrs, methods, n_seeds: int, steps: int, seed: int) -> dict:
    """Median final f − f* per loss, Hessian, method and lr; and each method's best lr."""
    out = {}
    for hessian, eigs in HESSIANS.items():
        problems = make_problems(eigs, n_seeds, steps, seed + 1)  # fresh seeds, not the main run's
        for loss in LOSSES:
            table = {name: {str(lr): median_final(name, problems, loss, lr=lr) for lr in lrs} for name in methods}
            best = {name: min(row.items(), key=lambda kv: kv[1]) for name, row in table.items()}
            out[f"{hessian}/{loss}"] = {"median_final": table, "best_lr": {n: float(b[0]) for n, b in best.items()},
                                        "best_median_final": {n: b[1] for n, b in best.items()}}
    return out


def ablations(n_seeds: int, steps: int, seed: int) -> dict:
    """Median final f − f* of DeVA-S∞ and its ablations at lr 0.1, per Hessian and loss."""
    out = {}
    for hessian, eigs in HESSIANS.items():
        problems = make_problems(eigs, n_seeds, steps, seed + 2)
        for loss in LOSSES:
            runs = {"deva_sinf": None, "muon": None, **ABLATIONS}
            out[f"{hessian}/{loss}"] = {name: median_final(name, problems, loss, factory=factory)
                                        for name, factory in runs.items()}
    return out


def setup_variants(main: dict, n_seeds: int, steps: int, seed: int) -> dict:
    """The script-fidelity ablations on the main run's heterogeneous seeds: DeVA-S∞'s rank among
    the 8 with one setting changed (the rest of the 8 at their main-run values where unaffected)."""
    eigs = HESSIANS["heterogeneous"]
    problems = make_problems(eigs, n_seeds, steps, seed)
    no_repl = make_problems(eigs, n_seeds, steps, seed, sampling="without_replacement")
    out = {}
    for loss in LOSSES:
        base = {n: main[f"heterogeneous/{loss}"]["final"][n]["median"] for n in OPTIMIZERS}
        changed = {
            "rows_without_replacement": {n: median_final(n, no_repl, loss) for n in OPTIMIZERS if n not in FULL_BATCH},
            "orthogonalizer_newton_schulz": {n: median_final(n, problems, loss, orthogonalizer="newton_schulz")
                                             for n in MSIGN_USERS},
            "gd_minibatch_sgd": {"gd": median_final("gd", problems, loss, factory=GD_MINIBATCH, full_batch=False)},
        }
        for variant, finals in changed.items():
            merged = {**base, **finals}
            ranking = sorted(merged, key=merged.get)
            out[f"{variant}/{loss}"] = {"median_final": merged, "ranking": ranking,
                                        "deva_sinf_rank": ranking.index("deva_sinf") + 1}
    return out


def claim_on(measured: dict, loss: str) -> dict:
    """The claim on one loss: DeVA-S∞'s rank among the 8 by median final f − f* (heterogeneous H)."""
    final, ranking = measured[f"heterogeneous/{loss}"]["final"], measured[f"heterogeneous/{loss}"]["ranking"]
    rank = ranking.index("deva_sinf") + 1
    runner_up = ranking[1] if rank == 1 else ranking[0]
    return {"deva_sinf_rank": rank, "of": len(ranking), "best": ranking[0], "holds": rank == 1,
            "deva_sinf_median_final": final["deva_sinf"]["median"],
            "best_other": runner_up, "best_other_median_final": final[runner_up]["median"]}


def _headline(c: dict, loss: str) -> str:
    return (f"{loss} loss: DeVA-S∞ median final f−f* {c['deva_sinf_median_final']:.3g}, rank {c['deva_sinf_rank']}/"
            f"{c['of']} (best other: {c['best_other']} {c['best_other_median_final']:.3g})")


def check(quick: bool = False, seed: int = 0) -> Outcome:
    torch.set_num_threads(1)
    n_seeds, steps = (6, 80) if quick else (100, 400)
    every = max(1, steps // 100)  # curves kept at ~100 points for the figure
    measured: dict = {
        "n_seeds": n_seeds, "steps": steps, "optimizers": list(OPTIMIZERS), "curve_every": every,
        "setup": {"verdict_loss": f"{VERDICT_LOSS}: ½·3·‖A_I X‖_F (the public script's)",
                  "robustness_loss": f"{ROBUSTNESS_LOSS}: ½·3·‖A_I X‖²_F", "rows": f"3 of 9, {SAMPLING}",
                  "gd": f"full batch (∇f = HX), constant lr {GD_LR}", "lr": LR, "betas": [0.0, BETA2],
                  "orthogonalizer": {n: ORTHOGONALIZER for n in MSIGN_USERS}},
    }
    for hessian, eigs in HESSIANS.items():
        problems = make_problems(eigs, n_seeds, steps, seed)
        for loss in LOSSES:
            finals, curves = {}, {}
            for name in OPTIMIZERS:
                stats = quartiles(run(name, problems, squared=loss == "squared"))
                finals[name] = {k: float(v[-1]) for k, v in stats.items()}
                curves[name] = {k: v[::every] for k, v in stats.items()}
            ranking = sorted(finals, key=lambda n: finals[n]["median"])
            measured[f"{hessian}/{loss}"] = {"final": finals, "ranking": ranking, "curves": curves}
    verdict, robust = claim_on(measured, VERDICT_LOSS), claim_on(measured, ROBUSTNESS_LOSS)
    measured["claim"] = {VERDICT_LOSS: verdict, ROBUSTNESS_LOSS: robust}
    flips = verdict["holds"] != robust["holds"]
    measured["robustness"] = {
        "ranking_flips_under_squared_loss": flips,
        "finding": (f"the ranking flips under the squared loss: DeVA-S∞ ranks {robust['deva_sinf_rank']}/"
                    f"{robust['of']} there (best {robust['best']})" if flips else
                    f"same verdict under the squared loss (DeVA-S∞ rank {robust['deva_sinf_rank']}/{robust['of']})")}
    if not quick:  # script-fidelity ablations; spec §3.6: is a ranking a tuning artefact?
        measured["setup_variants"] = setup_variants(measured, n_seeds, steps, seed)
        measured["lr_sweep"] = lr_sweep(SWEEP_LRS, SWEEP_METHODS, n_seeds=20, steps=steps, seed=seed)
        measured["ablations"] = ablations(n_seeds=20, steps=steps, seed=seed)
    summary = (f"heterogeneous H, orthogonalizer {ORTHOGONALIZER!r}, rows {SAMPLING.replace('_', ' ')}, full-batch GD. "
               f"Verdict on the public script's {_headline(verdict, VERDICT_LOSS)}; robustness: "
               f"{_headline(robust, ROBUSTNESS_LOSS)}: {measured['robustness']['finding']}; homogeneous best: "
               f"{measured['homogeneous/' + VERDICT_LOSS]['ranking'][0]} ({VERDICT_LOSS}), "
               f"{measured['homogeneous/' + ROBUSTNESS_LOSS]['ranking'][0]} ({ROBUSTNESS_LOSS})")
    notes = [f"{key}: ranking (best first) {measured[key]['ranking']}" for key in measured if "/" in key]
    for key, row in measured.get("setup_variants", {}).items():
        notes.append(f"setup variant {key} (main seeds, heterogeneous): DeVA-S∞ rank {row['deva_sinf_rank']}/"
                     f"{len(row['ranking'])}, ranking {row['ranking']}")
    for key, row in measured.get("ablations", {}).items():
        notes.append(f"ablations {key} (20 seeds, lr 0.1), median final f−f*: "
                     + ", ".join(f"{n} {v:.3g}" for n, v in row.items()))
    for key, sweep in measured.get("lr_sweep", {}).items():
        notes.append(f"lr sweep {key} (20 seeds), best median final f−f* at its best lr: " + ", ".join(
            f"{n} {v:.3g} (lr {sweep['best_lr'][n]})" for n, v in sweep["best_median_final"].items()))
    return Outcome(measured=measured, passed=verdict["holds"], summary=summary, notes=notes)


if __name__ == "__main__":
    import sys

    from geomopt.report.checks import main

    sys.exit(main(only=["deva_toy_quadratic"]))
