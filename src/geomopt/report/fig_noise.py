"""The noise diagnostic's figure: per parameter class, over the points of a run, the tail index
(raw and of N/s), L/L_G and the cut of ‖N‖₂ by entry-wise clipping (per-matrix and per-entry
threshold), each with its Gaussian surrogate (dashed). Drawn by ``python -m geomopt noise`` and,
from ``theory/real_noise.json``, by ``make figures``."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt

from geomopt.noise.classes import PARAM_CLASSES
from geomopt.report.figures import figure
from geomopt.report.style import save_figure

PANELS = (("alpha", "tail index α̂ (Simsekli, shuffled)", False, (2, 1)),
          ("alpha_std", "α̂ of N/s (s: each entry's scale)", False, (2, 1)),
          ("L_over_LG", "L / L_Gaussian", False, (1,)),
          ("clip_cut", "‖N‖₂ / ‖clip(N)‖₂, c = 3·1.4826·MAD", True, (1,)),
          ("clip_cut_entry", "‖N‖₂ / ‖clip(N)‖₂, c_ij = 3·s_ij", True, (1,)))
CLASS_COLOURS = dict(zip(PARAM_CLASSES, plt.cm.tab10.colors))


def _value(x) -> float:
    return float(x) if isinstance(x, (int, float)) else math.nan  # "inf" / "nan" strings from JSON


def draw_noise_classes(points: dict[str, dict], out_base: Path, title: str = "") -> list[Path]:
    """``points``: label -> {"step", "classes": {cls: row}} as ``measure_over_run`` returns."""
    labels = list(points)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, name, log, refs) in zip(axes.flat, PANELS):
        for cls in PARAM_CLASSES:
            rows = [points[p]["classes"].get(cls, {}) for p in labels]
            if not any(rows):
                continue
            colour = CLASS_COLOURS[cls]
            ax.plot(labels, [_value(r.get(key)) for r in rows], marker="o", color=colour, label=cls)
            ax.plot(labels, [_value(r.get(f"{key}_surrogate")) for r in rows], ls="--", marker=".", color=colour,
                    alpha=0.7)
        for ref in refs:
            ax.axhline(ref, color="k", ls=":", lw=0.8)
        if log:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("point of the run")
    handles, names = axes.flat[0].get_legend_handles_labels()
    axes.flat[-1].axis("off")
    axes.flat[-1].legend(handles, names, loc="center", title="solid: noise\ndashed: Gaussian surrogate\n"
                         "(same per-entry scales)", title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


@figure("paper1/noise_classes", needs=["theory/real_noise.json"])
def draw_real_noise_classes(inputs: dict, out_base: Path) -> None:
    tasks = inputs["theory/real_noise.json"]["measured"]["tasks"]
    for task, record in tasks.items():
        draw_noise_classes(record["points"], out_base.with_name(f"{out_base.name}_{task}"),
                           title=f"{task}: gradient noise per parameter class")
