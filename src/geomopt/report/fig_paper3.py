"""Paper 3 figures: HASD against its baselines, its gain G_T² against the ceiling d^{1−2/p}, and
the Stacey 2-D synthetic. Reads results/theory/{lp_acceleration,stacey_synthetic}.json only."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator, NullLocator

from geomopt.report.figures import figure
from geomopt.report.style import optimizer_style, save_figure

HASD_METHODS = ("hasd", "lp_steepest", "agd_Lp", "agd_L2")


def _floats(x) -> np.ndarray:
    """JSON arrays back to float arrays ("nan"/"inf" strings included)."""
    return np.asarray(x, dtype=float)


def _gap_grid(record: dict, x_key: str, xlabel: str, out_base: Path) -> None:
    comps = record["measured"]["comparisons"]
    instances = sorted({k.rsplit("_p", 1)[0] for k in comps})
    ps = sorted({k.rsplit("_p", 1)[1] for k in comps}, key=float)
    fig, axes = plt.subplots(len(ps), len(instances), figsize=(4.2 * len(instances), 3.4 * len(ps)), squeeze=False)
    for i, p in enumerate(ps):
        for j, inst in enumerate(instances):
            ax, comp = axes[i, j], comps[f"{inst}_p{p}"]
            for m in HASD_METHODS:
                label, colour = optimizer_style(m)
                xs = _floats(comp[m]["checkpoints" if x_key == "iterations" else "grad_calls_at"])
                gap = _floats(comp[m]["gap"])
                keep = gap > 0
                ax.loglog(xs[keep], gap[keep], color=colour, label=label, lw=1.6)
            h = comp["hasd"]
            xs = _floats(h["checkpoints" if x_key == "iterations" else "grad_calls_at"])
            ax.loglog(xs, _floats(h["bound"]), color=optimizer_style("hasd")[1], ls="--", lw=1,
                      label="HASD bound ‖x₀−x*‖²/(2A_T)")
            ax.set_title(f"{comp['name']}, p={p}, d={h['d']}\nG_T²={h['G2']:.3g}, 162·L_p/L₂={162 * h['Lp_over_L2']:.3g}",
                         fontsize=9)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("f(x) − f*")
            ax.yaxis.set_minor_locator(NullLocator())
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_base)


@figure("paper3/hasd_gap_vs_iterations", needs=["theory/lp_acceleration.json"])
def draw_gap_iterations(inputs: dict, out_base: Path) -> None:
    _gap_grid(inputs["theory/lp_acceleration.json"], "iterations", "iterations T", out_base)


@figure("paper3/hasd_gap_vs_grad_calls", needs=["theory/lp_acceleration.json"])
def draw_gap_grad_calls(inputs: dict, out_base: Path) -> None:
    _gap_grid(inputs["theory/lp_acceleration.json"], "grad_calls", "gradient evaluations", out_base)


@figure("paper3/hasd_gain", needs=["theory/lp_acceleration.json"])
def draw_gain(inputs: dict, out_base: Path) -> None:
    sweep = inputs["theory/lp_acceleration.json"]["measured"]["sweep"]
    fig, ax = plt.subplots(figsize=(5, 4.2))
    markers = {"quad_concentrated": "o", "linf_dense": "s"}
    for inst in sorted({r["instance"] for r in sweep}):
        for p, colour in zip(sorted({r["p"] for r in sweep}), ("tab:blue", "tab:red", "tab:green")):
            rows = [r for r in sweep if r["instance"] == inst and r["p"] == p]
            ax.loglog([r["ceiling"] for r in rows], [r["G2"] for r in rows], marker=markers.get(inst, "^"),
                      color=colour, ls="-" if inst == "quad_concentrated" else ":", label=f"{inst}, p={p:g}")
    lim = [1, max(r["ceiling"] for r in sweep) * 1.5]
    ax.loglog(lim, lim, color="grey", lw=1, ls="--", label=r"$G^2 = d^{1-2/p}$ (ceiling)")
    ax.set_xlabel(r"ceiling $d^{1-2/p}$")
    ax.set_ylabel(r"measured gain $G_T^2$" + (f" (T = {sweep[0]['T']})" if "T" in sweep[0] else ""))
    ax.legend(fontsize=7)
    save_figure(fig, out_base)


@figure("paper3/stacey_synthetic", needs=["theory/stacey_synthetic.json"])
def draw_stacey_synthetic(inputs: dict, out_base: Path) -> None:
    measured = inputs["theory/stacey_synthetic.json"]["measured"]
    results = measured["results"]
    keys = sorted(results, key=lambda k: float(k[1:]))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, r in results[key].items():
            label, colour = optimizer_style(name)
            it = _floats(r["curve_iters"])
            q = _floats(r["curve_quartiles"])
            ax.semilogy(it, q[:, 1], color=colour, label=f"{label} ({r['unstable_fraction']:.0%} unstable)")
            ax.fill_between(it, q[:, 0], q[:, 2], color=colour, alpha=0.15)
        # gaps span ~30 decades: few major ticks, no minor ones (tick-label layout dominates draw time)
        ax.yaxis.set_major_locator(LogLocator(numticks=7))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_title(f"p = {key[1:]}: f(x) = Σ|x_i − μ_i|^p, μ = [2, 0]", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("f(x) − f*  (median, IQR over restarts)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_base)


# ---------------------------------------------------------------- the Stacey training runs
# Inputs: results/paper3/runs/{image,gpt}__<arm>__lr<lr>__s<seed>.jsonl (experiments/paper3/run.py).
# Each Stacey variant's main p comes from experiments/paper3/methods.toml; each method's lr is the
# one with the lowest final train NLL on seed 0 (the rule of run.py and report.py).
STACEY_METHODS = ("stacey_p2", "stacey_pp")
# how each p sweep picks its lr: images sweep a grid per p; GPT runs one lr per p (methods.toml), untuned
P_SWEEP_LR = {"image": "each p at its best lr", "gpt": "each p at one fixed lr (not tuned)"}


def _runs(inputs: dict, task: str) -> list[dict]:
    out = []
    for (meta, rows) in inputs.values():
        cfg = meta.get("config") or {}
        if cfg.get("task") != task or meta.get("status") not in ("completed", "nonfinite"):
            continue
        out.append({"method": cfg["optimizer"], "p": cfg.get("optim", {}).get("p"), "lr": cfg["optim"]["lr"],
                    "seed": meta["seed"], "status": meta["status"], "S": meta["total_steps"], "rows": rows})
    if not out:
        raise ValueError(f"no finished {task} runs among {len(inputs)} files")
    return out


def _main_p(task: str) -> dict[str, float]:
    import tomllib

    from geomopt.results import REPO_ROOT

    methods = tomllib.loads((REPO_ROOT / "experiments/paper3/methods.toml").read_text())[task]
    return {m: s["optim"]["p"] for m, s in methods.items() if "p" in s.get("optim", {})}


def _final_nll(r: dict) -> float:
    from geomopt.report.budget import train_nll_at

    v = train_nll_at(r["rows"], 1.0, r["S"]) if r["status"] == "completed" else np.inf
    return v if np.isfinite(v) else np.inf


def _main_runs(runs: list[dict], task: str) -> dict[str, list[dict]]:
    """method -> the runs (all seeds) at its main p and chosen lr."""
    main_p, out = _main_p(task), {}
    for m in dict.fromkeys(r["method"] for r in runs):
        arm = [r for r in runs if r["method"] == m and r["p"] == main_p.get(m)]
        seed0 = [r for r in arm if r["seed"] == 0]
        if seed0:
            lr = min(seed0, key=lambda r: (_final_nll(r), r["lr"]))["lr"]
            out[m] = [r for r in arm if r["lr"] == lr and r["status"] == "completed"]
    return out


def _band(ax, runs: list[dict], key: str, label: str, colour, scale: float = 1.0, smooth: int = 1) -> None:
    """Mean over seeds of ``key`` against the fraction of the budget, min–max band."""
    curves = []
    for r in runs:
        d = r["rows"].dropna(subset=[key]).sort_values("step")
        y = d[key].rolling(smooth, min_periods=1).mean().to_numpy() * scale
        curves.append((d["step"].to_numpy() / r["S"], y))
    if not curves:
        return
    x = curves[0][0]
    ys = np.array([np.interp(x, cx, cy) for cx, cy in curves])
    ax.plot(x, ys.mean(0), color=colour, label=f"{label} (n={len(curves)})", lw=1.6)
    if len(curves) > 1:
        ax.fill_between(x, ys.min(0), ys.max(0), color=colour, alpha=0.15)


@figure("paper3/image_curves", needs=["paper3/runs/image__*.jsonl"])
def draw_image_curves(inputs: dict, out_base: Path) -> None:
    groups = _main_runs(_runs(inputs, "image"), "image")
    fig, (ax_acc, ax_nll) = plt.subplots(1, 2, figsize=(10, 3.8))
    for m, runs in groups.items():
        label, colour = optimizer_style(m)
        lr = f", lr {runs[0]['lr']:g}" if runs else ""
        _band(ax_acc, runs, "val_acc", label + lr, colour, scale=100)
        _band(ax_nll, runs, "train_loss", label + lr, colour, smooth=5)
    for ax in (ax_acc, ax_nll):
        ax.set_xlabel("fraction of the training budget")
        for f in (0.25, 0.5, 1.0):
            ax.axvline(f, color="grey", lw=0.5, ls=":")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_ylim(bottom=max(0.0, ax_acc.get_ylim()[0]))
    ax_nll.set_ylabel("train NLL (mini-batch, rolling mean of 5 logs)")
    ax_nll.set_yscale("log")
    ax_acc.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_base)


@figure("paper3/gpt_curves", needs=["paper3/runs/gpt__*.jsonl"])
def draw_gpt_curves(inputs: dict, out_base: Path) -> None:
    groups = _main_runs(_runs(inputs, "gpt"), "gpt")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for m, runs in groups.items():
        label, colour = optimizer_style(m)
        _band(ax, runs, "val_loss", f"{label}, lr {runs[0]['lr']:g}" if runs else label, colour)
    ax.set_xlabel("fraction of the token budget")
    ax.set_ylabel("validation loss (nats/char)")
    ax.legend(fontsize=7)
    save_figure(fig, out_base)


def _p_sweep_points(runs: list[dict], task: str) -> dict[str, list[tuple[float, float]]]:
    """variant -> [(p, final metric of the best seed-0 run over that p's lrs)]: test accuracy (images,
    run chosen by final train NLL) or validation loss (GPT, the lowest)."""
    out = {}
    for m in STACEY_METHODS:
        for p in sorted({r["p"] for r in runs if r["method"] == m and r["seed"] == 0}):
            arm = [r for r in runs if r["method"] == m and r["p"] == p and r["seed"] == 0
                   and r["status"] == "completed"]
            if not arm:
                continue
            if task == "image":
                best = min(arm, key=_final_nll)
                value = 100 * best["rows"].dropna(subset=["val_acc"])["val_acc"].iloc[-1]
            else:
                value = min(r["rows"].dropna(subset=["val_loss"])["val_loss"].iloc[-1] for r in arm)
            out.setdefault(m, []).append((p, float(value)))
    return out


@figure("paper3/p_sweep", needs=["paper3/runs/*.jsonl"])
def draw_p_sweep(inputs: dict, out_base: Path) -> None:
    panels = []
    for task, ylabel in (("image", "final test accuracy (%)"), ("gpt", "final validation loss")):
        try:
            panels.append((task, ylabel, _p_sweep_points(_runs(inputs, task), task)))
        except ValueError:
            continue
    if not panels:
        raise ValueError("no finished runs for the p sweep")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (task, ylabel, points) in zip(axes[0], panels):
        for m, pts in points.items():
            label, colour = optimizer_style(m)
            ax.plot([p for p, _ in pts], [v for _, v in pts], "o-", color=colour, label=label)
        ax.set_xlabel("p")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{'images' if task == 'image' else 'GPT'}: seed 0, {P_SWEEP_LR[task]}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_base)
