"""Paper 1 figures from results/theory/*.json: spectral control by entry-wise clipping,
ψ curves against the exact posterior mean, and iterations-vs-ε under Cauchy noise."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from geomopt.report.figures import figure
from geomopt.report.style import optimizer_style, save_figure


def _record(inputs: dict, name: str) -> dict:
    return inputs[f"theory/{name}.json"]["measured"]


@figure("paper1/localization", needs=["theory/localization.json"])
def draw_localization(inputs: dict, out_base: Path) -> None:
    m = _record(inputs, "localization")
    shapes = list(m["spectral_control"])
    fig, axes = plt.subplots(1, len(shapes), figsize=(6 * len(shapes), 4), sharey=True)
    for ax, shape in zip(np.atleast_1d(axes), shapes):
        rows = {k: v for k, v in m["spectral_control"][shape].items() if not k.startswith("_")}
        names = list(rows)
        x = np.arange(len(names))
        ax.bar(x - 0.2, [rows[n]["norm_over_scale"] for n in names], 0.4, label="‖E‖₂ / scale")
        ax.bar(x + 0.2, [rows[n]["clipped_norm_over_scale"] for n in names], 0.4, label="‖clip_c(E)‖₂ / scale")
        ax.set_yscale("log")
        ax.set_xticks(x, [n.replace("_gamma", "\nγ=").replace("mix_eps", "ε=") for n in names], fontsize=7)
        ax.set_title(f"{shape}: c = 3·1.4826·MAD")
    np.atleast_1d(axes)[0].set_ylabel("spectral norm / robust scale")
    np.atleast_1d(axes)[0].legend()
    save_figure(fig, out_base)


@figure("paper1/bayes_shrinkage", needs=["theory/bayes_shrinkage.json"])
def draw_bayes(inputs: dict, out_base: Path) -> None:
    m = _record(inputs, "bayes_shrinkage")
    y = np.asarray(m["y"], dtype=float)
    points = m["points"]
    fig, axes = plt.subplots(1, len(points), figsize=(3.6 * len(points), 3.4), sharey=False)
    for ax, p in zip(np.atleast_1d(axes), points):
        c = p["curves"]
        ax.plot(y, c["exact"], "k-", lw=2, label="E[s|y] (exact)")
        ax.plot(y, c["surrogate"], "--", color=optimizer_style("shrink_adamw")[1], label="smooth surrogate")
        for name, style in (("hard", ":"), ("soft", "-."), ("redescend", (0, (1, 3)))):
            ax.plot(y, c[name], linestyle=style, lw=1, label=f"{name} at t*")
        ax.axvline(p["t_star"], color="grey", lw=0.5)
        ax.set_xlim(0, 20)
        ax.set_xlabel("y")
        ax.set_title(f"σ_s={p['sigma_s']}, τ={p['tau']}, γ={p['gamma']}, ε={p['eps']}\n"
                     f"risk ratio {p['surrogate_over_bayes']:.3f}", fontsize=8)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    save_figure(fig, out_base)


@figure("paper1/cauchy_convergence", needs=["theory/cauchy_convergence.json"])
def draw_convergence(inputs: dict, out_base: Path) -> None:
    m = _record(inputs, "cauchy_convergence")
    eps = np.asarray(m["targets"], dtype=float)
    fig, ax = plt.subplots(figsize=(5, 4))
    for method, colour in (("smooth", optimizer_style("shrink_adamw")[1]), ("hard", optimizer_style("clip_muon")[1])):
        r = m["methods"][method]
        iters = np.array([float(v) for v in r["iterations"]])
        ok = np.isfinite(iters)
        ax.loglog(eps[ok], iters[ok], "o", color=colour,
                  label=f"SGD + {method}: slope {r['slope']:.2f} [{r['slope_ci95'][0]:.2f}, {r['slope_ci95'][1]:.2f}]")
        if ok.sum() >= 2:
            fit = np.polyfit(np.log(eps[ok]), np.log(iters[ok]), 1)
            ax.loglog(eps, np.exp(np.polyval(fit, np.log(eps))), "-", color=colour, lw=1)
    ref = np.asarray(m["methods"]["smooth"]["iterations"], dtype=float)[0] * (eps / eps[0]) ** -4
    ax.loglog(eps, ref, "k:", lw=1, label="ε⁻⁴ reference")
    sgd = m["methods"]["sgd"]
    ax.set_title(f"plain SGD: floor E‖∇f‖ = {sgd['min_mean_grad_norm']:.2f} (never reaches ε ≤ {eps[0]:.2f})",
                 fontsize=8)
    ax.set_xlabel("target ε  (E‖∇f(x_t)‖ ≤ ε)")
    ax.set_ylabel("iterations (tuned η, t)")
    ax.set_xticks(eps, [f"{e:.2g}" for e in eps])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    save_figure(fig, out_base)


def _evals(inputs: dict, group: str):
    """Validation rows of one experiment group from the paper-1 run files: the verdict runs at the full budget
    (protocol) or the Cauchy control (cauchy)."""
    import pandas as pd

    frames = []
    for path, (meta, df) in inputs.items():
        name = (meta.get("config") or {}).get("name", Path(path).stem)
        g, method, tail = (name.split("__") + ["", ""])[:3]
        if g == group and "val_loss" in df and (group != "protocol" or tail.endswith("_b100")):
            frames.append(df.dropna(subset=["val_loss"]).assign(optimizer=method, seed=meta.get("seed")))
    if not frames:
        raise ValueError(f"no '{group}' runs among {len(inputs)} files")
    return pd.concat(frames, ignore_index=True)


def _draw_group(inputs: dict, out_base: Path, group: str, title: str) -> None:
    from geomopt.report.curves import plot_loss_curves

    evals = _evals(inputs, group)
    plot_loss_curves(evals, out_base, title=title, baseline="adamw")


@figure("paper1/curves_clean", needs=["paper1/runs/protocol__*_b100.jsonl"])
def draw_curves_clean(inputs: dict, out_base: Path) -> None:
    _draw_group(inputs, out_base, "protocol", "GPT on Shakespeare BPE, clean gradients, tuned, full budget "
                "(inset: AdamW's final loss)")


@figure("paper1/curves_cauchy", needs=["paper1/runs/cauchy__*.jsonl"])
def draw_curves_cauchy(inputs: dict, out_base: Path) -> None:
    _draw_group(inputs, out_base, "cauchy", "with entry-wise Cauchy contamination (ε = 0.02)")


@figure("paper1/ablation", needs=["paper1/ablation/runs/*.jsonl"], optional=["paper1/runs/*.jsonl"])
def draw_ablation(inputs: dict, out_base: Path) -> None:
    """Final validation loss of each ψ × t (× position) variant minus its baseline's (same seed);
    the grey band is ± one seed-to-seed standard deviation of the baseline's main runs."""
    from geomopt.report.ablation import BASELINE, ablation_frame, final_val_loss, seed_spread

    finals = {(meta.get("config") or {}).get("name", Path(path).stem): final_val_loss(df)
              for path, (meta, df) in inputs.items()}
    table = ablation_frame(finals)
    if table.empty:
        raise ValueError("no ablation runs with a known method")
    panels = list(table.groupby(["group", "method", "position"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.6), sharey=True, squeeze=False)
    psis = list(dict.fromkeys(table["psi"]))  # in ablation_frame's order
    ts = sorted(table["t"].unique())
    for ax, ((group, method, position), sub) in zip(axes[0], panels):
        sd = seed_spread(finals, group, BASELINE[method])
        if np.isfinite(sd):
            ax.axhspan(-sd, sd, color="0.9", zorder=0)
        ax.axhline(0, color="k", lw=0.8)
        width = 0.8 / len(ts)
        for j, t in enumerate(ts):
            rows = sub[sub["t"] == t].set_index("psi").reindex(psis)
            x = np.arange(len(psis)) + (j - (len(ts) - 1) / 2) * width
            delta = np.clip(rows["delta"].to_numpy(float), None, 1.0)  # a diverged run (inf) drawn at the top
            ax.bar(x, delta, width, color=plt.cm.viridis(j / max(1, len(ts) - 1)), label=f"t = {t:g}")
            for xi, is_main, d in zip(x, rows["main"].fillna(False), delta):
                if is_main:
                    ax.annotate("main", (xi, d), ha="center", va="bottom" if d >= 0 else "top", fontsize=7)
        ax.set_xticks(np.arange(len(psis)), psis, fontsize=8)
        ax.set_title(f"{group}: {method} ({position})\nvs {BASELINE[method]}, seed 0", fontsize=9)
    axes[0][0].set_ylabel("Δ final val loss vs baseline (lower is better)")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, out_base)
