"""Figures of the CPU language-model task (Shakespeare BPE, experiments/presets/cpu/gpt_bpe.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from geomopt.report.figures import figure
from geomopt.report.style import save_figure

FULL = "lm/runs/gpt_bpe_adamw_s0_b100.jsonl"


@figure("lm/gpt_bpe_baseline", needs=[FULL], optional=["lm/runs/gpt_bpe_adamw_s0_b*.jsonl"])
def baseline_curve(inputs: dict[str, Any], out_base: Path) -> None:
    """The full run's train loss (mean of every 5 logged rows) and val loss against tokens, the
    shorter budgets' annealed branches dashed from their branch step, the lr beneath, dotted
    lines at each budget's end."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    meta, rows = inputs[FULL] if FULL in inputs else next(iter(inputs.values()))
    train = rows.dropna(subset=["train_loss"]).sort_values("tokens")
    val = rows.dropna(subset=["val_loss"]).sort_values("tokens")
    fig, (ax, lr_ax) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    smooth = train.groupby(np.arange(len(train)) // 5)[["tokens", "train_loss"]].mean()
    ax.plot(smooth["tokens"], smooth["train_loss"], lw=1.0, alpha=0.7, label="train loss (smoothed)")
    ax.plot(val["tokens"], val["val_loss"], "o-", ms=3, lw=1.4, label="val loss")
    lr_ax.plot(train["tokens"], train["lr"], lw=1.2)
    label = "val loss, shorter budgets annealed"
    for path, (m, r) in sorted(inputs.items()):
        for a in (ax, lr_ax):
            a.axvline(r["tokens"].max(), color="grey", ls=":", lw=1)
        start = (m.get("branched_from") or {}).get("step")
        if path == FULL or start is None:
            continue
        v = r.dropna(subset=["val_loss"]).sort_values("step")
        t = r.dropna(subset=["train_loss"]).sort_values("step")
        ax.plot(v[v["step"] >= start]["tokens"], v[v["step"] >= start]["val_loss"], "s--", ms=3, lw=1.2,
                color="C2", label=label)
        label = None
        lr_ax.plot(t[t["step"] >= start]["tokens"], t[t["step"] >= start]["lr"], "--", lw=1.0, color="C2")
    ax.set_ylim(top=float(val["val_loss"].iloc[min(1, len(val) - 1)]) + 0.5)
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(f"AdamW baseline, {meta['config']['name']}: 4-layer d=128 GPT, 8k BPE", fontsize=10)
    ax.legend()
    lr_ax.set_ylabel("lr")
    lr_ax.set_xlabel("training tokens")
    lr_ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    save_figure(fig, out_base)

