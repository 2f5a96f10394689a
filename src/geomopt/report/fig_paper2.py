"""Paper 2 (DeVA) figures: from the theory records, the toy quadratic (Figure 2 of the paper) and
claim C2's blockwise-smoothness ratio along DeVA's trajectory; from the protocol's runs, the GPT
loss curves and the image accuracies."""

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
    """Top row: the quantity claim C2's verdict is about, ‖H‖_{1,Γ}/‖H‖_{1,1} = Σ H_ij Γ_ij / Σ H_ij with
    raw Γ (the authors' L_norm / H_norm; signed sums, so linear axes). Bottom row, beside it: the exact
    Γ-weighted smoothness constant L_Γ/L_1 (Γ at mean 1)."""
    measured = _record(inputs, "deva_blockwise_smoothness")["measured"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    for col, hessian in enumerate(HESSIANS):
        for row, (key, scale) in enumerate((("code_norm_ratio", "linear"), ("ratio", "log"))):
            ax = axes[row, col]
            for name in ("deva_sinf", "deva_linf"):
                rec = measured[f"{hessian}/{name}"]
                stats = {q: rec[f"{key}_{q}_over_seeds"] for q in ("median", "q25", "q75")}
                _band(ax, np.asarray(rec["steps_recorded"]), stats, name)
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
            ax.set_yscale(scale)
            ax.set_title(f"{hessian} H" + (" (the verdict's quantity)" if row == 0 else " (beside it)"), fontsize=10)
        axes[1, col].set_xlabel("step")
    axes[0, 0].set_ylabel("‖H‖_{1,Γ} / ‖H‖_{1,1}, raw Γ\n(median, IQR over seeds)")
    axes[1, 0].set_ylabel("exact L_Γ / L_1, Γ at mean 1\n(median, IQR over seeds)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Claim C2 along DeVA's trajectory ({measured['n_seeds']} seeds): below 1 = Γ improves "
                 "blockwise smoothness")
    save_figure(fig, out_base)


# ---------------------------------------------------------------------------------------------
# Experiments (experiments/paper2/run.py): the protocol's GPT verdict runs (results/paper2/runs/
# protocol__<method>__s<seed>_b<pct>.jsonl), the Figure 1 setting (fig1__<method>__s<seed>) and the
# image verdict runs (results/paper2/image/runs/protocol__*).


def _evals(inputs: dict, pattern: str):
    """Validation rows of every run, with its method and seed, the method parsed from the run name."""
    import re

    import pandas as pd

    frames = []
    for path, (meta, df) in inputs.items():
        m = re.match(pattern, Path(path).stem)
        if m and "val_loss" in df:
            frames.append(df.dropna(subset=["val_loss"]).assign(optimizer=m["method"], seed=meta.get("seed")))
    if not frames:
        raise ValueError(f"no GPT runs with validation rows among {len(inputs)} files")
    return pd.concat(frames, ignore_index=True)


def _title(inputs: dict, what: str) -> str:
    cfg = next(iter(inputs.values()))[0].get("config") or {}
    return f"{cfg.get('n_layer')}-layer GPT on {cfg.get('dataset')}, {what} (inset: Muon's final loss)"


@figure("paper2/gpt_curves", needs=["paper2/runs/protocol__*_b100.jsonl"])
def draw_gpt_tuned(inputs: dict, out_base: Path) -> None:
    from geomopt.report.curves import plot_loss_curves

    evals = _evals(inputs, r"^protocol__(?P<method>.+)__s\d+_b100$")
    plot_loss_curves(evals, out_base, title=_title(inputs, "tuned, full budget"), baseline="muon")


@figure("paper2/gpt_curves_shared", needs=["paper2/runs/fig1__*.jsonl"])
def draw_gpt_shared(inputs: dict, out_base: Path) -> None:
    from geomopt.report.curves import plot_loss_curves

    evals = _evals(inputs, r"^fig1__(?P<method>.+)__s\d+$")
    plot_loss_curves(evals, out_base, title=_title(inputs, "one lr 1e-3 (Figure 1 setting)"), baseline="muon")


@figure("paper2/image_accuracy", needs=["paper2/image/runs/protocol__*.jsonl"])
def draw_image_accuracy(inputs: dict, out_base: Path) -> None:
    acc: dict[str, list[float]] = {}
    for path, (meta, df) in inputs.items():
        method = Path(path).stem.split("__")[1]
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
    meta = next(iter(inputs.values()))[0]
    cfg = meta.get("config") or {}
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"{cfg.get('model')} on {cfg.get('dataset')}, {meta.get('total_steps')} steps × "
                 f"{cfg.get('batch_size')}, tuned lr (bars: mean, dots: seeds)", fontsize=9)
    save_figure(fig, out_base)
