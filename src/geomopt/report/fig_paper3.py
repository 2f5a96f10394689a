"""Paper 3 figures: from results/theory/{lp_acceleration,stacey_synthetic}.json, HASD against its
baselines, its gain G_T² against the ceiling d^{1−2/p} and the Stacey 2-D synthetic; from the
protocol's runs (experiments/paper3/run.py), the image and GPT curves and the p sweep."""

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
# Inputs: the protocol's full-budget verdict runs (experiments/paper3/run.py):
# results/paper3/runs/protocol__<method>__s<seed>_b100.jsonl (GPT) and results/paper3/image/runs/...
# (images), each method at its tuned values; the p sweep's tuning records (tuning_p.json).
STACEY_METHODS = ("stacey_p2", "stacey_pp")


def _protocol_runs(inputs: dict) -> dict[str, list[dict]]:
    """method -> its finished runs {seed, rows, S, status}; the method parsed from the run name."""
    out: dict[str, list[dict]] = {}
    for path, (meta, rows) in inputs.items():
        if meta.get("status") not in ("completed", "nonfinite"):
            continue
        method = Path(path).stem.split("__")[1]
        out.setdefault(method, []).append({"seed": meta["seed"], "rows": rows, "S": meta["total_steps"],
                                           "status": meta["status"], "config": meta.get("config") or {}})
    if not out:
        raise ValueError(f"no finished protocol runs among {len(inputs)} files")
    return out


def _band(ax, runs: list[dict], key: str, label: str, colour, scale: float = 1.0, smooth: int = 1) -> None:
    """Mean over seeds of ``key`` against the fraction of the budget, min–max band."""
    curves = []
    for r in runs:
        if r["status"] != "completed" or key not in r["rows"]:
            continue
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


@figure("paper3/image_curves", needs=["paper3/image/runs/protocol__*_b100.jsonl"])
def draw_image_curves(inputs: dict, out_base: Path) -> None:
    groups = _protocol_runs(inputs)
    fig, (ax_acc, ax_nll) = plt.subplots(1, 2, figsize=(10, 3.8))
    for m, runs in groups.items():
        label, colour = optimizer_style(m)
        _band(ax_acc, runs, "val_acc", label, colour, scale=100)
        _band(ax_nll, runs, "train_loss", label, colour, smooth=5)
    for ax in (ax_acc, ax_nll):
        ax.set_xlabel("fraction of the training budget (the 100% runs)")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_ylim(bottom=max(0.0, ax_acc.get_ylim()[0]))
    ax_nll.set_ylabel("train NLL (mini-batch, rolling mean of 5 logs)")
    ax_nll.set_yscale("log")
    ax_acc.legend(fontsize=7)
    fig.suptitle("Images: each method at its tuned values, seeds as the band", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_base)


@figure("paper3/gpt_curves", needs=["paper3/runs/protocol__*_b100.jsonl"])
def draw_gpt_curves(inputs: dict, out_base: Path) -> None:
    import pandas as pd

    from geomopt.report.curves import plot_loss_curves

    frames = [r["rows"].dropna(subset=["val_loss"]).assign(optimizer=m, seed=r["seed"])
              for m, runs in _protocol_runs(inputs).items() for r in runs if "val_loss" in r["rows"]]
    if not frames:
        raise ValueError("no GPT runs with validation rows")
    cfg = next(iter(inputs.values()))[0].get("config") or {}
    plot_loss_curves(pd.concat(frames, ignore_index=True), out_base, baseline="adamw",
                     title=f"{cfg.get('n_layer')}-layer GPT on {cfg.get('dataset')}, tuned (inset: AdamW's final loss)")


@figure("paper3/p_sweep", needs=["paper3/tuning_p.json", "paper3/image/tuning_p.json"],
        optional=["paper3/tuning.json", "paper3/image/tuning.json"])
def draw_p_sweep(inputs: dict, out_base: Path) -> None:
    """Each p's best tuning score (seed 0, selection split), p = 3 from the main tuning."""
    panels = []
    for task, prefix in (("gpt", "paper3/"), ("image", "paper3/image/")):
        if f"{prefix}tuning_p.json" not in inputs:
            continue
        arms = {**inputs[f"{prefix}tuning_p.json"]["methods"], **inputs.get(f"{prefix}tuning.json", {}).get("methods", {})}
        points: dict[str, list] = {}
        for name, t in arms.items():
            variant, _, p = name.partition("-p")
            if variant in STACEY_METHODS:
                best = min(float(x["score"]) for x in t["trials"])
                points.setdefault(variant, []).append((float(p) if p else 3.0, -100 * best if task == "image" else best))
        panels.append((task, points))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (task, points) in zip(axes[0], panels):
        for m, pts in points.items():
            label, colour = optimizer_style(m)
            pts = sorted(pts)
            ax.plot([p for p, _ in pts], [v for _, v in pts], "o-", color=colour, label=label)
        ax.set_xlabel("p")
        ax.set_ylabel("held-out accuracy (%)" if task == "image" else "selection loss")
        ax.set_title(f"{'images' if task == 'image' else 'GPT'}: best tuning trial per p (seed 0)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_base)
