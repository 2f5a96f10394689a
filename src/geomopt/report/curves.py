"""Validation-loss curves against tokens, one colour per optimizer, mean over seeds with a
min–max band, and a zoomed inset around the target loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geomopt.report.style import optimizer_style, save_figure


def plot_loss_curves(evals: pd.DataFrame, out_base: Path, target: float | None = None,
                     method_col: str = "optimizer", title: str = "", baseline: str | None = None) -> None:
    """``evals``: rows with ``method_col``, ``seed``, ``tokens``, ``val_loss``. The inset zooms on
    ``target``, or on ``baseline``'s final val loss (mean over seeds), the tokens-to-target line."""
    import matplotlib.pyplot as plt

    if target is None and baseline is not None:
        base = evals[evals[method_col] == baseline].sort_values("tokens")
        target = float(base.groupby("seed")["val_loss"].last().mean()) if not base.empty else None

    from matplotlib.ticker import EngFormatter

    # The zoom near the target sits in its own panel, so it never covers a curve.
    if target is not None:
        fig, (ax, zoom) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        zoom = None
    for method, g in evals.dropna(subset=["val_loss"]).groupby(method_col):
        label, colour = optimizer_style(str(method))
        curve = g.groupby("tokens")["val_loss"].agg(["mean", "min", "max"]).reset_index()
        for a in [ax] + ([zoom] if zoom is not None else []):
            a.plot(curve["tokens"], curve["mean"], color=colour, label=label if a is ax else None, lw=1.4)
            a.fill_between(curve["tokens"], curve["min"], curve["max"], color=colour, alpha=0.15, lw=0)
    for a in [ax] + ([zoom] if zoom is not None else []):
        a.set_xlabel("training tokens")
        a.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylabel("validation loss")
    if title:
        ax.set_title(title, fontsize=10)
    if zoom is not None:
        for a in (ax, zoom):
            a.axhline(target, color="k", ls=":", lw=0.8)
        tail = evals[evals["val_loss"] <= target * 1.03]
        if not tail.empty:
            zoom.set_xlim(float(tail["tokens"].min()) * 0.97, float(evals["tokens"].max()) * 1.01)
            zoom.set_ylim(target * 0.985, target * 1.03)
        zoom.set_title(f"near the target {target:.3f} (dotted)", fontsize=10)
    hi = np.nanpercentile(evals["val_loss"].astype(float), 90) if len(evals) else None
    if hi is not None and np.isfinite(hi):
        ax.set_ylim(top=hi)
    ax.legend(fontsize=8, loc="lower left")
    save_figure(fig, out_base)
