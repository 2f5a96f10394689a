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


# ---------------------------------------------------------------------------------------------
# Experiments (experiments/paper2/run.py): GPT loss curves and image accuracy.


def _runs(inputs: dict) -> list[tuple]:
    """(setting, method, lr, seed, rows) of every run file; names are <setting>__<method>[-lr<lr>]__s<seed>."""
    out = []
    for path, (meta, df) in inputs.items():
        name = (meta.get("config") or {}).get("name", Path(path).stem)
        setting, tag, _ = (name.split("__") + ["", ""])[:3]
        method, _, lr = tag.partition("-lr")
        out.append((setting, method, float(lr) if lr else float("nan"), meta.get("seed"), df))
    return out


def _gpt_evals(inputs: dict, tuned: bool):
    import pandas as pd

    runs = [r for r in _runs(inputs) if "val_loss" in r[4]]
    if tuned:  # each method at the lr with the lowest seed-0 final val loss (report.py's rule)
        finals = {}
        for _, method, lr, seed, df in runs:
            if seed == 0:
                loss = df.dropna(subset=["val_loss"]).sort_values("tokens")["val_loss"].iloc[-1]
                if method not in finals or loss < finals[method][1]:
                    finals[method] = (lr, loss)
        runs = [r for r in runs if r[1] in finals and r[2] == finals[r[1]][0]]
    if not runs:
        raise ValueError(f"no GPT runs with validation rows among {len(inputs)} files")
    return pd.concat([df.dropna(subset=["val_loss"]).assign(optimizer=method, seed=seed)
                      for _, method, _, seed, df in runs], ignore_index=True)


def _draw_gpt(inputs: dict, out_base: Path, tuned: bool, title: str) -> None:
    from geomopt.report.curves import plot_loss_curves

    evals = _gpt_evals(inputs, tuned)
    plot_loss_curves(evals, out_base, title=title, baseline="muon")


@figure("paper2/gpt_curves_shared", needs=["paper2/runs/shared__*.jsonl"])
def draw_gpt_shared(inputs: dict, out_base: Path) -> None:
    _draw_gpt(inputs, out_base, False, "GPT on Shakespeare chars, one lr 1e-3 (inset: Muon's final loss)")


@figure("paper2/gpt_curves_tuned", needs=["paper2/runs/tune__*.jsonl"])
def draw_gpt_tuned(inputs: dict, out_base: Path) -> None:
    _draw_gpt(inputs, out_base, True, "GPT on Shakespeare chars, per-method tuned lr (inset: Muon's final loss)")


@figure("paper2/image_accuracy", needs=["paper2/runs/image__*.jsonl"])
def draw_image_accuracy(inputs: dict, out_base: Path) -> None:
    acc: dict[str, list[float]] = {}
    for _, method, _, _, df in _runs(inputs):
        if "val_acc" in df:
            last = df.dropna(subset=["val_acc"]).sort_values("tokens")["val_acc"].iloc[-1]
            acc.setdefault(method, []).append(float(last))
    if not acc:
        raise ValueError(f"no image runs with val_acc among {len(inputs)} files")
    names = sorted(acc, key=lambda m: -np.mean(acc[m]))
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for i, m in enumerate(names):
        label, colour = optimizer_style(m)
        ax.bar(i, 100 * np.mean(acc[m]), color=colour, alpha=0.8)
        ax.plot([i] * len(acc[m]), 100 * np.asarray(acc[m]), "k.", ms=5)
    ax.set_xticks(range(len(names)), [optimizer_style(m)[0] for m in names])
    lo = 100 * min(min(v) for v in acc.values())
    ax.set_ylim(max(0.0, lo - 5), min(100.0, 100 * max(max(v) for v in acc.values()) + 2))
    cfg = next(iter(inputs.values()))[0].get("config") or {}
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"{cfg.get('model')} on {cfg.get('dataset')}, {cfg.get('epochs')} epochs "
                 "(bars: mean, dots: seeds)", fontsize=9)
    save_figure(fig, out_base)
