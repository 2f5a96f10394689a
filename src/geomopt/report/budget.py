"""Metrics at a fraction of a run's budget, from its metrics rows (the Table 1 protocol of
paper 3: train NLL and test accuracy at 25/50/100% of training).

Train NLL is not a separate pass over the training set: it is the mean of the logged
train losses (mini-batches as trained on, augmentation included, the model in train
mode) over the last ``window`` of the budget before the point, as a running epoch
average would be. Evaluation metrics (``val_loss``, ``val_acc``) are read at the first
evaluation at or after the point.
"""

from __future__ import annotations

import math

import pandas as pd


def train_nll_at(rows: pd.DataFrame, fraction: float, total_steps: int, window: float = 0.1) -> float:
    """Mean logged ``train_loss`` over steps in ((fraction − window)·S, fraction·S]; when no row falls
    there (logs sparser than the window), the last logged loss at or before fraction·S; NaN if none."""
    if "train_loss" not in rows:
        return math.nan
    t = rows.dropna(subset=["train_loss"]).sort_values("step")
    hi = fraction * total_steps
    before = t[t["step"] <= hi + 1e-9]["train_loss"]
    sel = t[(t["step"] > hi - window * total_steps) & (t["step"] <= hi + 1e-9)]["train_loss"]
    if len(sel):
        return float(sel.mean())
    return float(before.iloc[-1]) if len(before) else math.nan


def eval_at(rows: pd.DataFrame, fraction: float, total_steps: int, key: str = "val_acc") -> tuple[float, int]:
    """(``key`` at the first evaluation with step ≥ fraction·S, that step); (NaN, -1) if none."""
    if key not in rows:
        return math.nan, -1
    ev = rows.dropna(subset=[key]).sort_values("step")
    ev = ev[ev["step"] >= fraction * total_steps - 1e-9]
    if ev.empty:
        return math.nan, -1
    return float(ev[key].iloc[0]), int(ev["step"].iloc[0])
