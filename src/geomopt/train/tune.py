"""The tuning protocol, in one place: every experiment chooses its hyper-parameters here.

Rules (issue 12), each enforced by the code below:
- **Same budget for every method:** ``tune`` spends exactly ``budget`` trials (fewer only when a
  space of fixed choices is exhausted), every trial a run of the same seed-0 config and length.
- **Each hyper-parameter on its own:** a search space (``search`` table of a method in
  ``experiments/paperN/methods.toml``) names config keys, e.g. ``optim.lr``, ``optim.tau``,
  ``optim.alpha`` (Stacey's τ and α, absolute), ``adamw.lr`` (the AdamW half of a hidden-matrix optimizer), ``optim.betas``.
  The search is coordinate-wise: one key swept over its grid with the others at their current
  best, cycling over the keys until no key moves, then refining (midpoints in log space) until the
  budget is spent.
- **Log grids that bracket:** a numeric key is a log grid ``center·factor^k`` with factor ≤ 3;
  when the best value sits at an edge of the values tried, the grid extends one step beyond that
  edge and the sweep goes on: an edge winner is never final. A key whose winner is still at an
  edge when the budget runs out is recorded ``at_edge: true``.
- **Failures rank last:** a diverged trial (non-finite score) scores +∞.
- **Selection on a held-out split the verdict never reads:** trials run with
  ``eval_split="select"`` (``geomopt.train.tasks``) and are scored by :func:`selection_score`,
  which reads only ``select_*`` keys (a run evaluated on the report split has none: it raises).
- **The whole search is written to results/** (:func:`write_tuning`, ``results/paperN/tuning.json``);
  each REPORT's Protocol section is rendered from it (``geomopt.report.protocol``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

SEARCH_KEY = "search"  # the key of a method table in methods.toml holding its search space
MAX_FACTOR = 3.0  # widest spacing of a log grid
SELECT_METRICS = ("select_loss", "select_acc")
TUNING_SEED = 0


class SearchSpaceError(ValueError):
    """A bad search space; the message names the key and the fix."""


@dataclass(frozen=True)
class Param:
    key: str  # a config key, dotted for tables: "optim.lr"
    grid: tuple  # the initial values (sorted for a log grid)
    log: bool = True  # True: log grid, extended at its edges; False: a fixed set of choices
    factor: float = 2.0  # spacing of a log grid


def log_grid(center: float, factor: float = 2.0, points: int = 5) -> list[float]:
    """``points`` values center·factor^k, k centred on 0 (an odd count puts ``center`` in the middle)."""
    if not (center > 0 and 1 < factor <= MAX_FACTOR and points >= 3):
        raise SearchSpaceError(f"log grid center={center}, factor={factor}, points={points}: need center > 0, "
                               f"1 < factor ≤ {MAX_FACTOR:g} and points ≥ 3")
    return [center * factor ** (k - (points - 1) / 2) for k in range(points)]


def parse_space(search: dict) -> list[Param]:
    """``{key: {center, factor, points}}`` (log grid) or ``{key: {choices: [...]}}`` → Params."""
    space = []
    for key, spec in search.items():
        if not isinstance(spec, dict):
            raise SearchSpaceError(f"search key {key!r}: give a table {{center, factor, points}} or {{choices}}")
        if "choices" in spec:
            if len(spec["choices"]) < 2:
                raise SearchSpaceError(f"search key {key!r}: give at least two choices")
            space.append(Param(key, tuple(spec["choices"]), log=False, factor=0.0))
        else:
            unknown = set(spec) - {"center", "factor", "points"}
            if unknown or "center" not in spec:
                raise SearchSpaceError(f"search key {key!r}: keys {sorted(spec)}; a log grid takes center "
                                       "(required), factor (≤ 3, default 2), points (≥ 3, default 5)")
            f = float(spec.get("factor", 2.0))
            space.append(Param(key, tuple(log_grid(float(spec["center"]), f, int(spec.get("points", 5)))), True, f))
    return space


def split_search(method: dict) -> tuple[dict, list[Param]]:
    """A methods.toml table → (its config overrides without the search table, its search space)."""
    rest = {k: v for k, v in method.items() if k != SEARCH_KEY}
    return rest, parse_space(method.get(SEARCH_KEY, {}))


def planned_grid(method: dict, key: str = "optim.lr") -> list[float]:
    """The initial grid of ``key`` in a method's search table: what a runner's static planning sweeps
    before (or instead of) the full search of ``geomopt.train.protocol.tune_methods``."""
    _, space = split_search(method)
    for p in space:
        if p.key == key:
            return list(p.grid)
    raise SearchSpaceError(f"method {method.get('optimizer', '?')!r} has no search key {key!r}; add "
                           f"[{SEARCH_KEY}] {key!r} = {{center = ..., factor = 3}} to its methods.toml table")


def overrides(values: dict) -> list[str]:
    """Trial values as the trainer's ``key=value`` overrides (values as TOML)."""
    return [f"{k}={json.dumps(v)}" for k, v in values.items()]


@dataclass
class Trial:
    values: dict
    score: float  # the selection metric (+inf for a diverged trial)


@dataclass
class Search:
    trials: list[Trial] = field(default_factory=list)
    tried: dict = field(default_factory=dict)  # key -> sorted values tried along that key
    chosen: dict = field(default_factory=dict)
    at_edge: dict = field(default_factory=dict)  # key -> winner at an edge of its tried values
    extensions: int = 0

    @property
    def best(self) -> Trial:
        return min(self.trials, key=lambda t: t.score)


class _BudgetSpent(Exception):
    pass


def tune(space: list[Param], objective: Callable[[dict], float], budget: int,
         prefetch: Callable[[list[dict]], None] | None = None) -> Search:
    """Coordinate search of ``space`` minimising ``objective`` with exactly ``budget`` trials (see module
    doc). ``objective(values) -> score``; NaN / ±inf / an exception of the run = diverged = +inf.
    ``prefetch(batch)``, if given, is called with the untried values of a grid (at most the budget
    left) before they are scored one by one: a caller trains them together
    (``geomopt.train.protocol.tune_methods``)."""
    if budget < 1 or not space:
        raise SearchSpaceError(f"tune: budget={budget} and {len(space)} key(s); need budget ≥ 1 and a search space")
    s = Search()
    cache: dict = {}
    current = {p.key: p.grid[len(p.grid) // 2] if p.log else p.grid[0] for p in space}
    grids = {p.key: list(p.grid) for p in space}

    def score(values: dict) -> float:
        key = json.dumps(values, sort_keys=True)
        if key not in cache:
            if len(s.trials) >= budget:
                raise _BudgetSpent
            x = float(objective(dict(values)))
            cache[key] = x if math.isfinite(x) else math.inf  # a diverged trial ranks last
            s.trials.append(Trial(dict(values), cache[key]))
        return cache[key]

    def sweep(p: Param) -> bool:
        """Sweep one key (extending a log grid past an edge winner); True if its best value moved."""
        while True:
            vals = sorted(grids[p.key]) if p.log else grids[p.key]
            if prefetch is not None:
                new = [{**current, p.key: v} for v in vals]
                new = [v for v in new if json.dumps(v, sort_keys=True) not in cache]
                if new:
                    prefetch(new[:max(budget - len(s.trials), 0)])
            scores = [score({**current, p.key: v}) for v in vals]
            i = min(range(len(vals)), key=lambda j: scores[j])
            if p.log and math.isinf(scores[i]):
                i = 0  # every value diverged: go towards smaller steps
            if p.log and i in (0, len(vals) - 1):
                grids[p.key].append(vals[i] / p.factor if i == 0 else vals[i] * p.factor)
                s.extensions += 1
                continue
            moved = scores[i] < score(current)  # strictly better: ties keep the current value
            if moved:
                current[p.key] = vals[i]
            return moved

    try:
        while any([sweep(p) for p in space]):  # every key swept each cycle, until none moves
            pass
        step = 0
        while True:  # refine the log keys around their winners with the budget left
            logs = [p for p in space if p.log]
            if not logs:
                break
            p = logs[step % len(logs)]
            step += 1
            vals = sorted(grids[p.key])
            i = vals.index(current[p.key])
            grids[p.key] += [math.sqrt(vals[i] * vals[j]) for j in (i - 1, i + 1)]
            sweep(p)
    except _BudgetSpent:
        pass
    best = s.best.values
    s.chosen = dict(best)
    for p in space:
        along = [t.values[p.key] for t in s.trials if all(t.values[k] == best[k] for k in best if k != p.key)]
        along = sorted(set(along)) if p.log else [v for v in p.grid if v in along]
        s.tried[p.key] = along
        s.at_edge[p.key] = bool(p.log and len(along) > 1 and best[p.key] in (along[0], along[-1]))
    return s


# ------------------------------------------------------------------ trials on the trainer
def selection_score(path: str | Path, metric: str = "select_loss") -> float:
    """The last ``metric`` of a run file; +inf if the run diverged. Only select_* keys may be read:
    the report split's val_* keys are never a selection criterion."""
    from geomopt.results import read_run

    if metric not in SELECT_METRICS:
        raise ValueError(f"selection metric {metric!r}: the tuner reads only {', '.join(SELECT_METRICS)}")
    meta, rows = read_run(path)
    if meta.get("status") == "nonfinite":
        return math.inf
    if metric not in rows:
        raise ValueError(f"{path}: no {metric!r}; tuning runs must set eval_split='select'")
    vals = rows[metric].dropna()
    x = float(vals.iloc[-1]) if len(vals) else math.inf
    return -x if metric.endswith("_acc") else x  # tune() minimises


def chosen(path: str | Path) -> dict[str, dict]:
    """{method: chosen values} of a tuning record (empty if there is none)."""
    from geomopt.results import read_json

    path = Path(path)
    return {m: t["chosen"] for m, t in read_json(path)["methods"].items()} if path.exists() else {}


def write_tuning(path: str | Path, searches: dict[str, Search], budget: int, metric: str = "select_loss") -> dict:
    """The whole search of every method → ``path`` (results/paperN/tuning.json); returns the record."""
    from geomopt.results import run_meta, write_json

    rec = {"seed": TUNING_SEED, "split": "select", "metric": metric, "budget": budget,
           "methods": {m: {"trials": [asdict(t) for t in s.trials], "grid": s.tried, "chosen": s.chosen,
                           "at_edge": any(s.at_edge.values()), "at_edge_keys": s.at_edge,
                           "extensions": s.extensions, "metric": metric} for m, s in searches.items()},
           "meta": run_meta(seed=TUNING_SEED)}
    write_json(path, rec)
    return rec
