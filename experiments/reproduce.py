"""``make reproduce-paperN``: one paper end to end at the CPU preset.

Steps: the paper's theory checks, its experiments (``experiments/paperN/run.py``),
its figures, and ``results/paperN/REPORT.md`` (``experiments/paperN/report.py``).
Until a paper's parts exist this fails (exit 2) naming what is missing; it never
writes placeholder output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPERS = {"paper1": "#4/#5", "paper2": "#6", "paper3": "#7", "paper4": "#8"}


def missing_parts(paper: str) -> list[str]:
    from geomopt.report.checks import discover, load

    missing = []
    if not any(load(p).PAPER == paper for p in discover().values()):
        missing.append(f"theory checks for {paper} (theory/*.py with PAPER = '{paper}')")
    for part, what in (("run.py", "the experiments"), ("report.py", "the report writer")):
        if not (ROOT / "experiments" / paper / part).exists():
            missing.append(f"experiments/{paper}/{part} ({what})")
    return missing


def run(cmd: list[str], tolerate: tuple[int, ...] = ()) -> int:
    print(f"[reproduce] $ {' '.join(cmd)}", flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc != 0 and rc not in tolerate:
        print(f"reproduce: step failed with exit code {rc}: {' '.join(cmd)}", file=sys.stderr)
        sys.exit(rc)
    return rc


def reproduce(paper: str, quick: bool, base: Path | None = None) -> None:
    """Quick mode writes everything under results/quick/ and figures/quick/, so it never
    overwrites the committed full-mode results; ``base`` puts results/ and figures/ elsewhere."""
    py = sys.executable
    base = base or ROOT
    root = base / "results" / ("quick" if quick else "")
    figs = base / "figures" / ("quick" if quick else "")
    q = ["--quick"] if quick else []
    # the theory checks (one process, one thread) run beside the experiments' sweep, which leaves a core idle
    # between its rounds; exit 1 = a claim did not hold: a result the report states, not a reason to stop
    theory = [py, "theory/run_all.py", "--paper", paper, "--out", str(root / "theory"), *q]
    print(f"[reproduce] $ {' '.join(theory)} &", flush=True)
    proc = subprocess.Popen(theory, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        run([py, f"experiments/{paper}/run.py", "--out", str(root / paper), *q])
        theory_rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
    if theory_rc not in (0, 1):
        print(f"reproduce: step failed with exit code {theory_rc}: {' '.join(theory)}", file=sys.stderr)
        sys.exit(theory_rc)
    run([py, "-m", "geomopt", "figures", "--results", str(root), "--out", str(figs)])
    run([py, f"experiments/{paper}/report.py", "--results", str(root)])
    verdict = "some theory checks FAIL (see the report)" if theory_rc else "all theory checks PASS"
    print(f"[reproduce] {paper} done ({verdict}): {root / paper / 'REPORT.md'}, {figs / paper}/")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("papers", nargs="+")
    ap.add_argument("--quick", action="store_true", help="one seed, short runs: a few minutes")
    ap.add_argument("--base", type=Path, help="write results/ and figures/ under this directory instead of the repo")
    args = ap.parse_args(argv)
    bad = [p for p in args.papers if p not in PAPERS]
    if bad:
        print(f"reproduce: unknown paper {bad[0]!r}; choose from {', '.join(PAPERS)}", file=sys.stderr)
        return 2
    for paper in args.papers:
        missing = missing_parts(paper)
        if missing:
            print(f"reproduce {paper}: not reproducible yet (issue {PAPERS[paper]}); missing: "
                  + "; ".join(missing), file=sys.stderr)
            return 2
    try:
        for paper in args.papers:
            reproduce(paper, args.quick, args.base)
    except KeyboardInterrupt:  # the step's own process has said its line too
        print("reproduce: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
