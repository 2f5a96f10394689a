"""Paper 1's ablation (``make ablate-paper1``): each variant's final validation loss against the
same-seed run of its baseline, as one table shared by the report and the figure.

Run names: ``<group>__<method>-<ψ>-t<t>-<position>__s<seed>`` under results/paper1/ablation/runs,
baselines ``<group>__<baseline>__s<seed>`` (seed 0, run by the ablation itself); the seed-to-seed spread
of the baseline comes from the main runs (``MAIN_RUNS``).
"""

from __future__ import annotations

import math
import re
import tomllib

import pandas as pd

from geomopt.optim.shrink import PSI_NAMES
from geomopt.results import REPO_ROOT

BASELINE = {"shrink_adamw": "adamw", "clip_muon": "muon"}


def main_variants() -> dict[str, tuple[str, float, str]]:
    """(ψ, t, position) of each method's main-run config, read from experiments/paper1/methods.toml."""
    methods = tomllib.loads((REPO_ROOT / "experiments/paper1/methods.toml").read_text())
    return {m: (methods[m]["optim"]["psi"], float(methods[m]["optim"]["t"]), methods[m]["optim"]["position"])
            for m in BASELINE}


def final_val_loss(df: pd.DataFrame) -> float:
    """The last evaluation's validation loss of one run (inf when the run ended without a finite one)."""
    vals = df.dropna(subset=["val_loss"]).sort_values("tokens")["val_loss"] if "val_loss" in df else []
    return float(vals.iloc[-1]) if len(vals) and math.isfinite(vals.iloc[-1]) else math.inf


def ablation_frame(finals: dict[str, float]) -> pd.DataFrame:
    """One row per ablation run: group, method, psi, t, position, seed, final, baseline, delta, main.
    ``finals`` maps run names (ablation and main runs) to final validation losses."""
    main = main_variants()
    rows = []
    for name, final in finals.items():
        parts = name.split("__")
        if len(parts) != 3 or parts[1].count("-") != 3:
            continue
        group, variant, seed = parts
        method, psi, t, position = variant.split("-")
        if method not in BASELINE:
            continue
        baseline = finals.get(f"{group}__{BASELINE[method]}__{seed}", math.nan)
        rows.append({"group": group, "method": method, "psi": psi, "t": float(t.removeprefix("t")),
                     "position": position, "seed": seed, "final": final, "baseline": baseline,
                     "delta": final - baseline, "main": (psi, float(t.removeprefix("t")), position) == main[method]})
    cols = ["group", "method", "psi", "t", "position", "seed", "final", "baseline", "delta", "main"]
    order = {"group": ["clean", "cauchy"], "method": list(BASELINE), "psi": list(PSI_NAMES)}
    df = pd.DataFrame(rows, columns=cols)
    key = lambda col: col.map({v: i for i, v in enumerate(order[col.name])}) if col.name in order else col  # noqa: E731
    return df.sort_values(["group", "method", "position", "psi", "t"], key=key, ignore_index=True)


# the main runs an ablation group is read against: the clean group's are the protocol's full-budget verdict
# runs, the Cauchy group's the control runs; seed 0 (tuning, and the ablation's own baselines) is not among them
MAIN_RUNS = {"clean": r"protocol__{m}__s[1-9]\d*_b100", "cauchy": r"cauchy__{m}__s[1-9]\d*"}


def seed_spread(finals: dict[str, float], group: str, method: str) -> float:
    """Standard deviation over the verdict seeds of a main run's final loss: the yardstick for one-seed
    differences (NaN with fewer than two finite runs)."""
    pattern = re.compile(MAIN_RUNS[group].format(m=re.escape(method)))
    vals = [v for k, v in finals.items() if pattern.fullmatch(k) and math.isfinite(v)]
    return float(pd.Series(vals).std()) if len(vals) >= 2 else math.nan
