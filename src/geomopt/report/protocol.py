"""The **Protocol** section every REPORT carries: per method, how its hyper-parameters were chosen
(trials, grid, chosen values, whether the winner sits at an edge of its grid), then the
comparison rules of :mod:`geomopt.report.verdict`.

Rows come from a tuning record (``results/paperN/tuning.json``, written by
:mod:`geomopt.train.tune`) or, for results made before the tuning protocol existed, from the
runs themselves (:func:`fixed_row`, :func:`sweep_row`), which say so.
"""

from __future__ import annotations

from pathlib import Path

from geomopt.report import verdict as V
from geomopt.results import read_json


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _values(d: dict) -> str:
    return ", ".join(f"{k} = {_fmt(v)}" for k, v in d.items()) or "—"


def fixed_row(method: str, values: dict, source: str) -> dict:
    """A method run at fixed hyper-parameters (no search): one trial, no grid."""
    return {"method": method, "trials": 1, "grid": f"none ({source})", "chosen": _values(values),
            "at_edge": "n/a (not tuned)", "selected_on": "—"}


def sweep_row(method: str, hp: str, scores: dict[float, float], chosen: float, selected_on: str,
              others: dict | None = None) -> dict:
    """A one-hyper-parameter grid of an earlier protocol: the trials it ran and where the winner sits."""
    grid = sorted(scores)
    edge = "yes" if len(grid) > 1 and chosen in (grid[0], grid[-1]) else "no" if len(grid) > 2 else \
        "n/a (fewer than 3 points)"
    return {"method": method, "trials": len(grid), "grid": f"{hp} ∈ {_fmt(grid)}",
            "chosen": _values({hp: chosen, **(others or {})}), "at_edge": edge, "selected_on": selected_on}


def _tried(trials: list[dict], key: str) -> list:
    """Every value of ``key`` the trials ran (numbers sorted, choices in the order first tried)."""
    seen = {}
    for t in trials:
        seen.setdefault(repr(t["values"][key]), t["values"][key])
    vals = list(seen.values())
    return sorted(vals) if all(isinstance(v, (int, float)) for v in vals) else vals


def tuning_rows(tuning: dict) -> list[dict]:
    """Rows of a ``geomopt.train.tune`` record (one per method): the grid column lists every value each key
    ran; "at an edge" is judged along each key with the other keys at their chosen values (``tune``)."""
    rows = []
    for m, t in tuning["methods"].items():
        grid = "; ".join(f"{hp} ∈ {_fmt(_tried(t['trials'], hp))}" for hp in t["grid"])
        rows.append({"method": m, "trials": len(t["trials"]), "grid": grid, "chosen": _values(t["chosen"]),
                     "at_edge": "yes" if t["at_edge"] else "no",
                     "selected_on": f"{t['metric']} (seed {tuning['seed']}, {tuning['split']} split)"})
    return rows


def recorded_rows(results: Path) -> list[dict]:
    """The rows of ``results/paperN/tuning.json`` when the tuning protocol has run there, else none."""
    path = Path(results) / "tuning.json"
    return [{**r, "method": f"{r['method']} (tuning protocol)"} for r in tuning_rows(read_json(path))] \
        if path.exists() else []


def protocol_section(rows: list[dict], notes: list[str]) -> list[str]:
    out = ["## Protocol", "",
           "| method | trials | values tried | chosen values | at an edge | selected on |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['method']} | {r['trials']} | {r['grid']} | {r['chosen']} | {r['at_edge']} | "
                   f"{r['selected_on']} |")
    out += ["", *notes,
            "- At an edge: the chosen value of a searched key is the smallest or largest of the values tried along "
            "that key with the other keys at their chosen values (the coordinate search extends a grid past an edge "
            "winner while its trial budget lasts).",
            f"- Intervals: {V.INTERVAL_METHOD}.",
            f"- Failures: {V.FAILURE_RULE}.",
            f"- Significance: {V.SIGNIFICANCE_RULE}.",
            f"- Claimed size: {V.SIZE_RULE}.",
            f"- Tokens to target: {V.TOKENS_RULE}.", ""]
    return out


# ------------------------------------------------------------------ verdicts of the protocol's runs
def protocol_curves(runs: Path, column: str = "val_loss") -> dict:
    """{(method, budget percent): {seed: Curve}} of the verdict runs ``protocol__<method>__s<seed>_b<pct>``
    (``geomopt.train.protocol``) under ``runs``."""
    from geomopt.results import load_runs

    df = load_runs(str(Path(runs) / "protocol__*.jsonl"))
    if df.empty:
        return {}
    parts = df["run"].str.extract(r"^protocol__(?P<method>.+)__s(?P<s>\d+)_b(?P<budget>\d+)$")
    df = df.assign(method=parts["method"], budget=parts["budget"].astype(float)).dropna(subset=["method"])
    df["key"] = list(zip(df["method"], df["budget"].astype(int)))
    return V.run_curves(df, "key", column)


def budget_verdicts(curves: dict, pairs) -> list[dict]:
    """For each ``(method, baseline, claimed saving or None)`` of ``pairs`` and each budget both have in
    ``curves`` (from :func:`protocol_curves`): the tokens-to-target verdict
    (``verdict.tokens_to_target_verdict``), as rows {method, baseline, budget, result}."""
    rows = []
    for m, base, claimed in pairs:
        budgets = sorted({b for (k, b) in curves if k == m} & {b for (k, b) in curves if k == base})
        for b in budgets:
            res = V.tokens_to_target_verdict(curves[(m, b)], curves[(base, b)], claimed)
            rows.append({"method": m, "baseline": base, "budget": b, "result": res})
    return rows
