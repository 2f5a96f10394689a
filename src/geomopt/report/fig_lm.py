"""Figures of the CPU language-model task (Shakespeare BPE, experiments/presets/cpu/gpt_bpe.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geomopt.report.figures import figure
from geomopt.report.style import save_figure

BUDGET_FRACTIONS = (0.25, 0.5, 1.0)


@figure("lm/gpt_bpe_baseline", needs=["lm/runs/gpt_bpe_adamw_s0_b100.jsonl"])
def baseline_curve(inputs: dict[str, Any], out_base: Path) -> None:
    """Train loss (mean of every 5 logged rows) and val loss against tokens, the lr multiplier
    beneath, dotted lines at 25 / 50 / 100% of the budget."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    (meta, rows), = inputs.values()
    train = rows.dropna(subset=["train_loss"]).sort_values("tokens")
    val = rows.dropna(subset=["val_loss"]).sort_values("tokens")
    total_tokens = int(meta["total_steps"]) * meta["config"]["batch_size"] * meta["config"]["seq_len"]
    fig, (ax, lr_ax) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    smooth = train.groupby(np.arange(len(train)) // 5)[["tokens", "train_loss"]].mean()  # 5 logged rows each
    ax.plot(smooth["tokens"], smooth["train_loss"], lw=1.0, alpha=0.7, label="train loss (smoothed)")
    ax.plot(val["tokens"], val["val_loss"], "o-", ms=3, lw=1.4, label="val loss")
    for f in BUDGET_FRACTIONS:
        for a in (ax, lr_ax):
            a.axvline(f * total_tokens, color="grey", ls=":", lw=1)
    ax.set_ylim(top=float(val["val_loss"].iloc[min(1, len(val) - 1)]) + 0.5)
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(f"AdamW baseline, {meta['config']['name']}: 4-layer d=128 GPT, 8k BPE", fontsize=10)
    ax.legend()
    lr_ax.plot(train["tokens"], train["lr"], lw=1.2)
    lr_ax.set_ylabel("lr")
    lr_ax.set_xlabel("training tokens")
    lr_ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    save_figure(fig, out_base)
