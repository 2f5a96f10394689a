"""Paper 2 (DeVA) figures from the theory records: the toy quadratic (Figure 2 of the paper)
and the Γ-weighted smoothness constant along DeVA's trajectory (claim C2)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from geomopt.report.figures import figure
from geomopt.report.style import optimizer_style, save_figure

HESSIANS = ("heterogeneous", "homogeneous")


def _record(inputs: dict, name: str) -> dict:
    for path, rec in inputs.items():
        if Path(path).stem == name:
            return rec
    raise KeyError(f"no results/theory/{name}.json among {list(inputs)}")


def _band(ax, x, stats: dict, name: str) -> None:
    label, colour = optimizer_style(name)
    median = np.asarray(stats["median"], dtype=float)
    ax.plot(x, median, color=colour, label=label, lw=1.6)
    ax.fill_between(x, np.asarray(stats["q25"], dtype=float), np.asarray(stats["q75"], dtype=float),
                    color=colour, alpha=0.18, lw=0)


@figure("paper2/toy_quadratic", needs=["theory/deva_toy_quadratic.json"])
def draw_toy_quadratic(inputs: dict, out_base: Path) -> None:
    measured = _record(inputs, "deva_toy_quadratic")["measured"]
    every = measured["curve_every"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for row, loss in enumerate(("squared", "unsquared")):
        for col, hessian in enumerate(HESSIANS):
            ax = axes[row, col]
            curves = measured[f"{hessian}/{loss}"]["curves"]
            for name in measured["optimizers"]:
                x = np.arange(len(curves[name]["median"])) * every
                _band(ax, x, curves[name], name)
            ax.set_yscale("log")
            ax.set_title(f"{hessian} H, {loss} minibatch loss")
            ax.set_xlabel("step")
            ax.set_ylabel("f − f* (median, IQR)")
    axes[0, 1].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Toy trace quadratic (9×9), {measured['n_seeds']} seeds")
    save_figure(fig, out_base)


@figure("paper2/blockwise_smoothness", needs=["theory/deva_blockwise_smoothness.json"])
def draw_blockwise_smoothness(inputs: dict, out_base: Path) -> None:
    measured = _record(inputs, "deva_blockwise_smoothness")["measured"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, hessian in zip(axes, HESSIANS):
        for name in ("deva_sinf", "deva_linf"):
            rec = measured[f"{hessian}/{name}"]
            stats = {"median": rec["ratio_median_over_seeds"], "q25": rec["ratio_q25_over_seeds"],
                     "q75": rec["ratio_q75_over_seeds"]}
            _band(ax, np.asarray(rec["steps_recorded"]), stats, name)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_title(f"{hessian} H")
        ax.set_xlabel("step")
    axes[0].set_ylabel("L_Γ / L_1 (Γ at mean 1; median, IQR)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Γ-weighted vs unweighted smoothness constant along DeVA's trajectory")
    save_figure(fig, out_base)
