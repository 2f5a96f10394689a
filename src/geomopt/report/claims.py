"""The claims registry: ``results/claims.json``, one record per claim, generated from results/.

Sources: every paper report's ``results/paperN/claims.json`` (a list of records built with
:func:`record`, verdicts from :mod:`geomopt.report.verdict`) and every theory record
``results/theory/<check>.json``, mapped into the verdict vocabulary by ``verdict.theory`` (the
one place of that rule). ``python -m geomopt claims`` (``make claims``) writes the registry;
the README table and each REPORT's claims summary are rendered from it by :func:`render_table`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from geomopt.report import verdict as V
from geomopt.report.tokens import Interval
from geomopt.results import REPO_ROOT, read_json, write_json

SCHEMA = {  # key -> allowed types (None = JSON null)
    "paper": (str,), "id": (str,), "statement": (str,), "paper_value": (str,), "paper_source": (str,),
    "ours": (str,), "ours_value": (float, int, str, type(None)), "interval": (list, type(None)),
    "n": (int, type(None)), "regime": (dict,), "protocol": (str,), "command": (str,),
    "verdict": (str,), "verdict_word": (str,), "rule": (str,), "why": (str,),
}
REGIME_KEYS = ("model", "data", "tokens", "steps")
NONFINITE = ("inf", "-inf", "nan")  # how results.write_json stores non-finite floats


def _num(x: float | None):
    return None if x is None else (float(x) if math.isfinite(x) else str(float(x)))


def record(paper: str, id: str, statement: str, paper_value: str, paper_source: str, ours: str,
           verdict: V.Verdict, regime: dict, protocol: str, command: str, value: float | None = None,
           interval: Interval | None = None) -> dict:
    """One validated claim record. ``interval`` gives our number's interval and n (``value`` its point
    estimate when the claim's number is not the interval's mean)."""
    iv = [_num(interval.low), _num(interval.high)] if interval is not None else None
    if value is None and interval is not None:
        value = interval.mean
    rec = {"paper": paper, "id": id, "statement": statement, "paper_value": paper_value,
           "paper_source": paper_source, "ours": ours, "ours_value": _num(value), "interval": iv,
           "n": verdict.n if interval is None else interval.n, "regime": {k: regime.get(k) for k in REGIME_KEYS},
           "protocol": protocol, "command": command, "verdict": verdict.label, "verdict_word": verdict.word,
           "rule": verdict.rule, "why": verdict.why}
    validate(rec)
    return rec


def validate(rec: dict) -> None:
    """Raise ValueError naming the first key of ``rec`` that breaks the schema."""
    where = f"claim {rec.get('paper')}/{rec.get('id')}"
    missing = [k for k in SCHEMA if k not in rec]
    extra = [k for k in rec if k not in SCHEMA]
    if missing or extra:
        raise ValueError(f"{where}: keys missing {missing}, unknown {extra}; build records with claims.record()")
    for k, types in SCHEMA.items():
        if not isinstance(rec[k], types) or isinstance(rec[k], bool):
            raise ValueError(f"{where}: {k}={rec[k]!r} has type {type(rec[k]).__name__}; expected "
                             f"{' or '.join(t.__name__ for t in types)}")
    if isinstance(rec["ours_value"], str) and rec["ours_value"] not in NONFINITE:
        raise ValueError(f"{where}: ours_value={rec['ours_value']!r}; a number, null or one of {NONFINITE}")
    if rec["interval"] is not None and (len(rec["interval"]) != 2 or not all(
            isinstance(x, (int, float)) or x in NONFINITE for x in rec["interval"])):
        raise ValueError(f"{where}: interval={rec['interval']!r}; give [low, high] or null")
    if set(rec["regime"]) != set(REGIME_KEYS):
        raise ValueError(f"{where}: regime keys {sorted(rec['regime'])}; expected {list(REGIME_KEYS)}")
    if rec["verdict_word"] not in V.RULES or rec["rule"] != V.RULES[rec["verdict_word"]]:
        raise ValueError(f"{where}: verdict {rec['verdict_word']!r} with rule {rec['rule']!r} is not the "
                         "vocabulary's; use geomopt.report.verdict")
    if not rec["verdict"].startswith(rec["verdict_word"]):
        raise ValueError(f"{where}: verdict label {rec['verdict']!r} does not match {rec['verdict_word']!r}")


def theory_records(results: Path) -> list[dict]:
    """One record per theory check, its PASS/FAIL mapped by ``verdict.theory``."""
    out = []
    for path in sorted((results / "theory").glob("*.json")):
        r = read_json(path)
        parts = V.measured_parts(r) if r.get("verdict") == "PASS" and not r.get("meta", {}).get("quick") else {}
        # a valid measurement of several claims (real_noise: C1, C2) gives one record per claim
        for part, rec in ({k: {**r, "measured": {"verdicts": {k: v}}} for k, v in parts.items()} or {"": r}).items():
            out.append(record(r["paper"], f"theory:{path.stem}" + (f":{part}" if part else ""),
                              r["claim"] + (f" — {part}" if part else ""), "theorem / spec", "paper text (spec)",
                              r.get("summary", ""), V.theory(rec), {"model": "numeric check", "data": "synthetic"},
                              f"theory/{path.stem}.py", f"make theory (`{path.stem}`)"))
    return out


def _paper_records(path: Path) -> list[dict]:
    """A report's records; a file that breaks the schema (written before the registry existed) becomes
    one record saying so, never a silent gap."""
    try:
        recs = read_json(path)
        for r in recs:
            validate(r)
        return recs
    except (ValueError, TypeError, AttributeError) as e:
        paper = path.parent.name
        why = f"{path.parent.name}/claims.json breaks the registry schema ({str(e)[:80]}); re-run its report.py"
        return [record(paper, "claims-file", f"the claims of {paper}", "—", "—", "—", V.not_testable(why), {},
                       f"experiments/{paper}/report.py", f"python experiments/{paper}/report.py")]


def build(results: Path) -> list[dict]:
    """Every paper report's records, then every theory record; ordered by paper (stable)."""
    recs = []
    for path in sorted(results.glob("paper*/claims.json")):
        recs += _paper_records(path)
    ids = {(r["paper"], r["id"]) for r in recs}
    recs += [r for r in theory_records(results) if (r["paper"], r["id"]) not in ids]
    seen = set()
    for r in recs:
        if (r["paper"], r["id"]) in seen:
            raise ValueError(f"claim {r['paper']}/{r['id']} appears twice; give each claim its own id")
        seen.add((r["paper"], r["id"]))
    return sorted(recs, key=lambda r: r["paper"])


def write_registry(results: Path) -> list[dict]:
    recs = build(results)
    write_json(results / "claims.json", {"generated_by": "python -m geomopt claims", "rules": V.RULES,
                                         "interval_method": V.INTERVAL_METHOD, "failure_rule": V.FAILURE_RULE,
                                         "claims": recs})
    return recs


def read_registry(results: Path) -> list[dict]:
    path = results / "claims.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing; run `make claims` (python -m geomopt claims)")
    recs = read_json(path)["claims"]
    for r in recs:
        validate(r)
    return recs


def _cell(x: Any) -> str:
    return " ".join(str(x).split()).replace("|", "\\|")


def render_table(recs: list[dict], with_paper: bool = True, with_rule: bool = False) -> str:
    """The summary table claim → ours → paper → verdict → why (+ the verdict's rule), as markdown."""
    if not recs:
        return "_No claims yet: run `make reproduce-paperN` (or `make theory`), then `make claims`._"
    cols = (["paper"] if with_paper else []) + ["claim", "ours", "paper's number", "verdict", "why"] + \
        (["rule"] if with_rule else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in recs:
        cells = ([r["paper"]] if with_paper else []) + [
            r["statement"], r["ours"], f"{r['paper_value']} ({r['paper_source']})", f"**{r['verdict']}**",
            r["why"] or "—"] + ([r["rule"]] if with_rule else [])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if not with_rule:
        lines += ["", "Verdict rules (`geomopt.report.verdict`):",
                  *V.legend(sorted({r["verdict_word"] for r in recs}))]
    return "\n".join(lines)


def paper_summary(results: Path, paper: str) -> list[str]:
    """A REPORT's first-screen section, rendered from the registry (``results/claims.json``)."""
    recs = [r for r in write_registry(results) if r["paper"] == paper]
    return ["## Summary: claims and verdicts", "",
            "_Rendered from `results/claims.json` (`make claims`); intervals: " + V.INTERVAL_METHOD + "; "
            + V.FAILURE_RULE + "._", "", render_table(recs, with_paper=False, with_rule=True), ""]


def regime_of(cfg: dict, total_steps: int | None) -> dict:
    """{model, data, tokens, steps} of a run from its config (as stored in the run file's meta)."""
    if not cfg:
        return {}
    if cfg.get("task") == "gpt":
        model = f"GPT {cfg['n_layer']}L d={cfg['n_embd']}"
        per_step = cfg["batch_size"] * cfg["seq_len"]
    else:
        model = f"{cfg.get('model')} (width {cfg.get('width')})"
        per_step = cfg.get("batch_size", 0)
    tokens = total_steps * per_step if total_steps else None
    return {"model": model, "data": cfg.get("dataset"), "tokens": tokens, "steps": total_steps}


def results_parser(description: str, prog: str | None = None, holding: str = "") -> argparse.ArgumentParser:
    """The parser every report command starts from: ``--results``, the results root (``holding``: what it holds)."""
    ap = argparse.ArgumentParser(prog=prog, description=description.strip().splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO_ROOT / "results",
                    help=f"results root holding {holding} (quick mode: results/quick)" if holding else None)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = results_parser("Write results/claims.json from results/.", prog="geomopt claims").parse_args(argv)
    if not args.results.is_dir():
        print(f"claims: {args.results} is not a directory; give --results the results root", file=sys.stderr)
        return 2
    try:
        recs = write_registry(args.results)
    except ValueError as e:
        print(f"claims: {e}", file=sys.stderr)
        return 2
    print(f"claims: {len(recs)} record(s) written to {args.results / 'claims.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
