"""The noise diagnostic's figure: per parameter class, over the points of a run, the shuffled
tail index, L/L_G and the spectral-norm cut by entry-wise clipping, each with its Gaussian
surrogate (dashed). Drawn by ``python -m geomopt noise`` and, from ``theory/real_noise.json``,
by ``make figures``."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from geomopt.noise.classes import PARAM_CLASSES
from geomopt.report.figures import figure
from geomopt.report.style import save_figure

PANELS = (("alpha", "tail index α̂ (Simsekli, shuffled)", False),
          ("L_over_LG", "L / L_Gaussian", False),
          ("clip_cut", "‖N‖₂ / ‖clip_c(N)‖₂, c = 3·1.4826·MAD", True))
CLASS_COLOURS = dict(zip(PARAM_CLASSES, plt.cm.tab10.colors))


def _value(x) -> float:
    return float(x) if isinstance(x, (int, float)) else math.nan  # "inf" / "nan" strings from JSON


def draw_noise_classes(points: dict[str, dict], out_base: Path, title: str = "") -> list[Path]:
    """``points``: label -> {"step", "classes": {cls: row}} as ``measure_over_run`` returns."""
    labels = list(points)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.6 * len(PANELS), 3.8))
    for ax, (key, ylabel, log) in zip(axes, PANELS):
        for cls in PARAM_CLASSES:
            if not any(cls in points[p]["classes"] for p in labels):
                continue
            rows = [points[p]["classes"].get(cls, {}) for p in labels]
            colour = CLASS_COLOURS[cls]
            ax.plot(labels, [_value(r.get(key)) for r in rows], marker="o", color=colour, label=cls)
            ax.plot(labels, [_value(r.get(f"{key}_surrogate")) for r in rows], ls="--", marker=".", color=colour,
                    alpha=0.7)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("point of the run")
        ax.set_ylabel(ylabel)
    axes[0].axhline(2, color="k", ls=":", lw=0.8)
    axes[0].axhline(1, color="r", ls=":", lw=0.8)
    axes[0].legend(fontsize=8, title="solid: noise, dashed: Gaussian surrogate", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out_base)


@figure("paper1/noise_classes", needs=["theory/real_noise.json"])
def draw_real_noise_classes(inputs: dict, out_base: Path) -> None:
    tasks = inputs["theory/real_noise.json"]["measured"]["tasks"]
    for task, record in tasks.items():
        draw_noise_classes(record["points"], out_base.with_name(f"{out_base.name}_{task}"),
                           title=f"{task}: gradient noise per parameter class")
