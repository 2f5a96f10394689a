"""Paper 4 figures: theory norm-ratio decay and RIR ceiling, Fig.-2-style ln RIR heat maps,
Fig.-1/3-style probe norm-ratio curves before/after immunization."""

from __future__ import annotations

import numpy as np

from geomopt.report.figures import figure
from geomopt.report.style import optimizer_style, save_figure

METHOD_LABELS = {"identity": "before (θ = Id)", "ours": "Ours (Alg. 1)", "rill_only": "R_ill Only",
                 "opt_kappa": "Opt κ (reconstructed)"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


@figure("paper4/theory_linear", needs=["theory/immunization_linear.json"])
def draw_theory(inputs, out_base):
    rec = inputs["theory/immunization_linear.json"]["measured"]
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for kappa, ratios in rec["norm_ratio"]["curves"].items():
        ratios = np.asarray(ratios, dtype=float)
        t = np.arange(len(ratios))
        line, = ax1.semilogy(t, np.maximum(ratios, 1e-30), label=f"κ = {kappa}")
        ax1.semilogy(t, (1 - 1 / float(kappa)) ** t, ls="--", color=line.get_color(), alpha=0.6)
    ax1.set(xlabel="GD step t (exact line search)", ylabel="‖w_t − w*‖² / ‖w_0 − w*‖²", ylim=(1e-12, 2),
            title="Eq. 2/16: slower decay at larger κ (dashed: (1−1/κ)^t)")
    ax1.legend(fontsize=8)
    p32 = rec["prop32"]
    ax2.plot(np.degrees(np.asarray(p32["misalignment_angles"], float)), p32["rir_ceiling"], "o-")
    ax2.set(xlabel="eigenvector misalignment φ (degrees)", ylabel="max_θ RIR",
            title="Prop. 3.2: max RIR vs misalignment (K_H = R_φ K_P R_φᵀ)")
    save_figure(fig, out_base)


def _pairs_heatmaps(df, out_base, title):
    plt = _plt()
    methods = [m for m in ("ours", "opt_kappa", "rill_only") if m in set(df["method"])]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8), squeeze=False)
    logs = np.log(df["rir"].astype(float).clip(lower=1e-300))
    vmax = float(np.nanmax(np.abs(logs[np.isfinite(logs)]))) if np.isfinite(logs).any() else 1.0
    for ax, m in zip(axes[0], methods):
        grid = np.full((10, 10), np.nan)
        for _, r in df[df["method"] == m].iterrows():
            grid[int(r["d_p"]), int(r["d_h"])] = np.log(max(float(r["rir"]), 1e-300))
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set(title=f"{METHOD_LABELS.get(m, m)}: ln RIR", xlabel="D_H class", ylabel="D_P class",
               xticks=range(10), yticks=range(10))
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(title)
    save_figure(fig, out_base)


@figure("paper4/heatmap_digits", needs=["paper4/pairs_digits.jsonl"])
def draw_heatmap_digits(inputs, out_base):
    _, df = inputs["paper4/pairs_digits.jsonl"]
    _pairs_heatmaps(df, out_base, "sklearn digits (Din = 64), 90 ordered pairs (Fig. 2 analogue)")


@figure("paper4/heatmap_fmnist", needs=["paper4/pairs_fmnist.jsonl"])
def draw_heatmap_fmnist(inputs, out_base):
    meta, df = inputs["paper4/pairs_fmnist.jsonl"]
    din = (meta.get("config") or {}).get("din", "?")
    _pairs_heatmaps(df, out_base, f"Fashion-MNIST (Din = {din}), 90 ordered pairs")


@figure("paper4/probe_curves", needs=["paper4/tabular.json", "paper4/curves_digits.json"])
def draw_probe_curves(inputs, out_base):
    plt = _plt()
    panels = [(k, v["curves"]) for k, v in sorted(inputs.items())]
    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.4 * len(panels)), squeeze=False)
    for row, (name, curves) in zip(axes, panels):
        where = "diabetes (tabular)" if "tabular" in name else "digits pair"
        for ax, split in zip(row, ("D_H", "D_P")):
            for method, c in curves.items():
                ratios = np.asarray(c[split], dtype=float)
                colour = "black" if method == "identity" else optimizer_style(method)[1]
                ax.semilogy(np.maximum(ratios, 1e-30), label=METHOD_LABELS.get(method, method), color=colour,
                            ls="--" if method == "identity" else "-")
            ax.set(title=f"{where}: linear probe on {split}", xlabel="GD step (exact line search)",
                   ylabel="‖w_t − w*‖² / ‖w_0 − w*‖²")
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_base)


@figure("paper4/deep_probe_accuracy", needs=["paper4/deep.json"])
def draw_deep_probe(inputs, out_base):
    rec = inputs["paper4/deep.json"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, acc in rec["probe_accuracy_D_H"].items():
        colour = "black" if name == "theta0" else optimizer_style(name)[1]
        ax.plot(np.asarray(acc, float), label="θ₀ (pre-trained)" if name == "theta0" else METHOD_LABELS.get(name, name),
                color=colour, ls="--" if name == "theta0" else "-")
    ax.set(xlabel="probe GD step (exact line search)", ylabel="D_H test accuracy",
           title="Fig. 3 analogue: linear probe on D_H (small CNN)")
    ax.legend(fontsize=8)
    save_figure(fig, out_base)
