"""Harness for the numeric checks under theory/.

A check is a module with ``PAPER`` ("paper1".."paper4"), ``CLAIM`` (the claim
quoted from the paper or its spec) and ``check(quick: bool, seed: int) ->
Outcome``. The harness times it, stamps it and writes
``results/theory/<name>.json`` (quick mode: ``results/quick/theory/<name>.json``, so that a
quick run never replaces the committed full-mode records)::

    {"paper", "claim", "verdict": "PASS" | "FAIL", "summary", "measured", "meta"}
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from geomopt.results import REPO_ROOT, run_meta, write_json

THEORY_DIR = REPO_ROOT / "theory"
RESULTS_DIR = REPO_ROOT / "results" / "theory"
QUICK_RESULTS_DIR = REPO_ROOT / "results" / "quick" / "theory"


@dataclass
class Outcome:
    """What a check measured, whether the claim held, and a one-line summary for the table."""

    measured: dict[str, Any]
    passed: bool
    summary: str = ""
    notes: list[str] = field(default_factory=list)


def discover(theory_dir: Path = THEORY_DIR) -> dict[str, Path]:
    """name -> path of every check module (any theory/*.py defining check())."""
    found = {}
    for path in sorted(theory_dir.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "run_all":
            continue
        if "def check(" in path.read_text():
            found[path.stem] = path
    return found


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"theory_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for attr in ("PAPER", "CLAIM", "check"):
        if not hasattr(module, attr):
            raise AttributeError(f"{path}: a theory check must define {attr}")
    return module


def run_check(name: str, module: ModuleType, quick: bool, seed: int, out_dir: Path = RESULTS_DIR) -> dict:
    """Run one check and write its record. A crash is recorded as FAIL with the error."""
    meta = run_meta(seed=seed)
    meta["quick"] = quick
    t0 = time.perf_counter()
    try:
        outcome = module.check(quick=quick, seed=seed)
    except Exception as e:  # a crashing check is a failing check, reported with its error
        traceback.print_exc()
        outcome = Outcome(measured={"error": f"{type(e).__name__}: {e}"}, passed=False, summary=f"crashed: {e}")
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    record = {
        "check": name,
        "paper": module.PAPER,
        "claim": module.CLAIM,
        "verdict": "PASS" if outcome.passed else "FAIL",
        "summary": outcome.summary,
        "notes": outcome.notes,
        "measured": outcome.measured,
        "meta": meta,
    }
    write_json(out_dir / f"{name}.json", record)
    return record


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(records: list[dict]) -> str:
    rows = [("check", "paper", "claim", "measured", "verdict", "s")]
    for r in records:
        rows.append((r["check"], r["paper"], _clip(r["claim"], 48), _clip(r["summary"], 60),
                     r["verdict"], f"{r['meta']['seconds']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None, only: list[str] | None = None) -> int:
    """CLI: run the checks (all, or --only/--paper), write records, print the table.

    Exit status 1 if any verdict is FAIL, 2 on bad arguments.
    """
    ap = argparse.ArgumentParser(prog="theory", description="Run the numeric checks of the papers' claims.")
    ap.add_argument("--quick", action="store_true", help="quick mode of every check (the tests use it)")
    ap.add_argument("--only", nargs="*", default=only, help="check names to run")
    ap.add_argument("--paper", help="run only this paper's checks, e.g. paper1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="where the JSON records go (default results/theory; "
                    "quick: results/quick/theory)")
    args = ap.parse_args(argv)
    args.out = args.out or (QUICK_RESULTS_DIR if args.quick else RESULTS_DIR)

    checks = discover()
    names = args.only or list(checks)
    unknown = [n for n in names if n not in checks]
    if unknown:
        print(f"theory: unknown check(s) {unknown}; choose from: {', '.join(checks) or '(none yet)'}", file=sys.stderr)
        return 2
    modules = {n: load(checks[n]) for n in names}
    if args.paper:
        modules = {n: m for n, m in modules.items() if m.PAPER == args.paper}
    if not modules:
        print(f"theory: no checks to run{' for ' + args.paper if args.paper else ''}", file=sys.stderr)
        return 2
    from geomopt.progress import Progress

    records = []
    with Progress(len(modules), "theory", lambda line: print(line, flush=True)) as progress:
        for name, module in modules.items():
            progress.start(name)
            r = run_check(name, module, args.quick, args.seed, args.out)
            records.append(r)
            progress.finish(name, f"{r['verdict']} in {r['meta']['seconds']:.1f} s ({'quick' if args.quick else 'full'})",
                            notable=r["verdict"] != "PASS")
    print()
    print(format_table(records))
    failed = [r["check"] for r in records if r["verdict"] != "PASS"]
    if failed:
        print(f"\ntheory: FAIL in {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\ntheory: all {len(records)} checks PASS; records in {args.out}")
    return 0


def theory_rows(theory_dir: Path, names: list[str]) -> list[dict]:
    """The records of ``names`` in ``theory_dir`` for a paper's report; a missing one is a row
    saying so (never a silent gap)."""
    from geomopt.results import read_json

    rows = []
    for name in names:
        path = Path(theory_dir) / f"{name}.json"
        if path.exists():
            r = read_json(path)
            rows.append({"check": name, "claim": r["claim"], "summary": r["summary"], "verdict": r["verdict"],
                         "quick": r["meta"].get("quick", False), "measured": r.get("measured", {})})
        else:
            rows.append({"check": name, "claim": "—", "summary": f"not run yet ({path} missing)", "verdict": "—",
                         "quick": False})
    return rows


def theory_markdown(rows: list[dict]) -> list[str]:
    """The '## Theory checks' section of a report, from ``theory_rows``."""
    out = ["## Theory checks", "", "| check | claim | measured | verdict |", "|---|---|---|---|"]
    for t in rows:
        q = " (quick mode)" if t["quick"] else ""
        out.append(f"| {t['check']} | {t['claim']} | {t['summary']}{q} | {t['verdict']} |")
    return out
