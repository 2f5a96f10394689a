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
