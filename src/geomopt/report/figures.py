"""Every figure is a function from results/ files to PNG+PDF under figures/.

Register one with ``@figure(name, needs=[glob, ...])`` in a module listed in
``FIGURE_MODULES``. ``draw_all`` loads each figure's inputs (``*.json`` records
as dicts, ``*.jsonl`` runs as ``(meta, DataFrame)``), skips figures with no
inputs, names a malformed file in one line and goes on drawing the rest. It
never trains.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from geomopt.results import REPO_ROOT, read_json, read_run

# Modules that register figures; each paper adds its own.
FIGURE_MODULES: list[str] = [
    "geomopt.report.fig_noise",
    "geomopt.report.fig_paper4",
    "geomopt.report.fig_paper3",
    "geomopt.report.fig_paper2",
    "geomopt.report.fig_paper1",
    "geomopt.report.fig_lm",
]


@dataclass
class Figure:
    name: str  # also the output path under figures/, e.g. "paper1/localization"
    needs: list[str]  # globs relative to results/: the figure is drawn when one matches
    draw: Callable[[dict[str, Any], Path], None]
    optional: list[str]  # globs loaded beside ``needs`` when present (e.g. baselines), never alone


REGISTRY: dict[str, Figure] = {}


def figure(name: str, needs: list[str], optional: list[str] = ()):
    """Register ``draw(inputs, out_base)``; ``inputs`` maps each matched path (relative
    to results/) to its loaded content."""

    def wrap(fn):
        REGISTRY[name] = Figure(name, list(needs), fn, list(optional))
        return fn

    return wrap


def load_result(path: Path) -> Any:
    """A results file's content; raises ValueError naming the file if it is malformed."""
    if path.suffix == ".jsonl":
        return read_run(path)
    if path.suffix == ".json":
        try:
            return read_json(path)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    raise ValueError(f"{path}: unknown results file type")


def draw_all(results_dir: Path, figures_dir: Path, only: list[str] | None = None, out=print) -> tuple[int, list[str]]:
    """Draw every registered figure whose inputs exist. Returns (figures drawn, bad files)."""
    from geomopt.report.style import apply_theme

    for mod in FIGURE_MODULES:
        importlib.import_module(mod)
    apply_theme()
    drawn, bad = 0, []
    for fig in REGISTRY.values():
        if only and fig.name not in only:
            continue
        paths = sorted({p for pat in fig.needs for p in results_dir.glob(pat)})
        if not paths:
            continue
        paths += sorted({p for pat in fig.optional for p in results_dir.glob(pat)} - set(paths))
        inputs, broken = {}, False
        for p in paths:
            rel = str(p.relative_to(results_dir))
            try:
                inputs[rel] = load_result(p)
            except (ValueError, OSError) as e:
                out(f"figures: skipping malformed results file {p} ({e})")
                bad.append(str(p))
                broken = True
        if broken and not inputs:
            continue
        try:
            fig.draw(inputs, figures_dir / fig.name)
            drawn += 1
            out(f"figures: drew {fig.name}")
        except (KeyError, ValueError, TypeError, IndexError) as e:
            out(f"figures: could not draw {fig.name} from {', '.join(inputs)} ({type(e).__name__}: {e})")
            bad.extend(inputs)
    return drawn, bad


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="geomopt figures", description="Regenerate every figure from results/.")
    ap.add_argument("--results", type=Path, default=REPO_ROOT / "results")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "figures")
    ap.add_argument("--only", nargs="*", help="figure names")
    args = ap.parse_args(argv)
    drawn, bad = draw_all(args.results, args.out, args.only)
    if drawn == 0 and not bad:
        print(f"figures: nothing to draw (no results under {args.results})")
        return 0
    print(f"figures: {drawn} figure(s) written under {args.out}" + (f"; {len(bad)} malformed file(s)" if bad else ""))
    return 1 if bad else 0

