"""Benchmarks report ratios, never absolute verdicts: our code timed against torch's fastest
path in the same process, interleaved.

Method (``across_processes``): in each of ≥ 3 fresh processes, at 1 and at 2 threads, every
candidate and its baseline step round-robin ≥ 10 times; a process's time for a candidate is its
*minimum* step time (the least disturbed by other load), its ratio is candidate ÷ baseline of
that process, and the reported ratio is the *median over processes* (the baseline's own time
varies from process to process on a shared machine, so one process can mislead).

A benchmark is a module under experiments/bench/ with ``NAME``/``DESCRIPTION``,
``measure(quick: bool) -> dict`` (one process: {"seconds": {candidate: s}, ...}) and
``bench(quick: bool) -> Measurement``; the runner writes ``results/bench/<name>.json`` =
{"name", "ratio", "numerator", "denominator", "ratios", "meta", ...} and, for the full run, the
README's performance table (``geomopt.benchmark.write_readme_section``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from geomopt.results import REPO_ROOT, run_meta, write_json

BENCH_DIR = REPO_ROOT / "experiments" / "bench"
RESULTS_DIR = REPO_ROOT / "results" / "bench"


@dataclass
class Measurement:
    numerator: dict[str, Any]  # {"what": ..., "seconds": ...} (or a throughput)
    denominator: dict[str, Any]
    ratio: float  # numerator / denominator, in the sense the benchmark's goal states
    goal: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def time_interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 2,
                     sync: Callable[[], None] = lambda: None, stat: Callable = statistics.median) -> dict[str, float]:
    """Seconds per call of each function (``stat`` of the reps: median, or min), timed
    round-robin so that drift in machine load hits every candidate alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: stat(v) for k, v in times.items()}


def discover(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    return {p.stem: p for p in sorted(bench_dir.glob("*.py"))
            if not p.stem.startswith("_") and p.stem != "run_all" and "def bench(" in p.read_text()}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench", description="Run the benchmarks (ratios against torch baselines).")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--out", type=Path, help="default results/bench (quick: results/quick/bench, so that a "
                    "quick run never replaces the full records)")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one process of across_processes
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        torch.set_num_threads(args.threads)
        print(json.dumps(_load(args.measure).measure(quick=args.quick)))
        return 0
    args.out = args.out or (REPO_ROOT / "results" / "quick" / "bench" if args.quick else RESULTS_DIR)
    found = discover()
    names = args.only or list(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        print(f"bench: unknown benchmark(s) {unknown}; choose from: {', '.join(found) or '(none yet)'}", file=sys.stderr)
        return 2
    if not names:
        print("bench: no benchmarks found under experiments/bench/")
        return 0
    stamp = run_meta()  # once, before any record is written (a later stamp would see them as changes)
    for name in names:
        module = _load(found[name])
        meta = {**stamp, "start_time": run_meta()["start_time"], "quick": args.quick}
        t0 = time.perf_counter()
        m: Measurement = module.bench(quick=args.quick)
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        record = {"name": name, "description": getattr(module, "DESCRIPTION", ""), "ratio": m.ratio,
                  "goal": m.goal, "numerator": m.numerator, "denominator": m.denominator, **m.extra, "meta": meta}
        write_json(args.out / f"{name}.json", record)
        print(f"bench: {name:24s} ratio {m.ratio:7.3f}  (goal {m.goal or '-'})  "
              f"{m.numerator.get('what', '')} / {m.denominator.get('what', '')}")
    if not args.quick and args.out == RESULTS_DIR and not args.only:
        write_readme_section()
    return 0


# ---------------------------------------------------------------- across processes
PROCESSES_ENV = "GEOMOPT_BENCH_PROCESSES"  # processes per thread count (default 3; tests use 1)


def across_processes(path: str | Path, quick: bool, threads: tuple[int, ...] = (1, 2), processes: int | None = None
                     ) -> dict[str, list[dict]]:
    """``measure(quick)`` of the bench module at ``path`` in ``processes`` fresh processes per
    thread count: {"1": [process records], "2": [...]}."""
    processes = processes or int(os.environ.get(PROCESSES_ENV, "3"))
    runs: dict[str, list[dict]] = {}
    for t in threads:
        env = {**os.environ, "OMP_NUM_THREADS": str(t), "MKL_NUM_THREADS": str(t)}
        cmd = [sys.executable, "-m", "geomopt.benchmark", "--measure", str(path), "--threads", str(t)]
        for _ in range(processes):
            out = subprocess.run(cmd + (["--quick"] if quick else []), env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"bench process {path} failed:\n{out.stderr[-3000:]}")
            runs.setdefault(str(t), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def median_ratios(runs: dict[str, list[dict]], baseline: dict[str, str]) -> dict[str, dict[str, dict]]:
    """Per thread count and candidate: the median over processes of candidate ÷ its baseline
    (``baseline[candidate]``), with each process's ratio."""
    table: dict[str, dict[str, dict]] = {}
    for t, procs in runs.items():
        for name, base in baseline.items():
            per = [p["seconds"][name] / p["seconds"][base] for p in procs]
            table.setdefault(t, {})[name] = {"ratio": statistics.median(per), "per_process": per,
                                             "seconds": statistics.median([p["seconds"][name] for p in procs]),
                                             "baseline": base}
    return table


def median_seconds(runs: dict[str, list[dict]], threads: str, name: str) -> float:
    return statistics.median([p["seconds"][name] for p in runs[threads]])


# ---------------------------------------------------------------- README performance table
README = REPO_ROOT / "README.md"
BENCH_BEGIN = "<!-- bench-table:begin (generated by `make bench` from results/bench/; do not edit) -->"
BENCH_END = "<!-- bench-table:end -->"


def bench_table(results_dir: Path = RESULTS_DIR) -> str:
    """The performance table: every ratio of every record in ``results_dir``."""
    rows = ["| bench | ours | against | ratio, 1 thread | ratio, 2 threads | goal | memory floor | when |",
            "|---|---|---|---|---|---|---|---|"]
    for path in sorted(results_dir.glob("*.json")):
        rec = json.loads(path.read_text())
        when = f"{rec['meta']['start_time'][:10]}, {rec['meta']['git_commit'][:7]}"
        if "ratios" not in rec:  # a single-ratio bench
            rows.append(f"| {rec['name']} | {rec['numerator']['what']} | {rec['denominator']['what']} | "
                        f"{rec['ratio']:.2f} | – | {rec.get('goal', '')} | – | {when} |")
            continue
        labels = rec.get("labels", {})
        for cand, one in rec["ratios"]["1"].items():
            two = rec["ratios"].get("2", {}).get(cand)
            two_text = f"{two['ratio']:.2f}" if two else "–"
            goal = rec.get("goals", {}).get(cand, "")
            floor = rec.get("floors", {}).get(cand)
            floor_text = f"{floor:.2f}" if floor is not None else "–"
            rows.append(f"| {rec['name']} | {labels.get(cand, cand)} | {labels.get(one['baseline'], one['baseline'])} | "
                        f"{one['ratio']:.2f} | {two_text} | {goal} | {floor_text} | {when} |")
    return "\n".join(rows)


def readme_with_section(text: str, table: str) -> str:
    if BENCH_BEGIN not in text or BENCH_END not in text:
        raise ValueError(f"README has no {BENCH_BEGIN!r} … {BENCH_END!r} markers; add them where the table goes")
    head, rest = text.split(BENCH_BEGIN, 1)
    _, tail = rest.split(BENCH_END, 1)
    return f"{head}{BENCH_BEGIN}\n{table}\n{BENCH_END}{tail}"


def write_readme_section(readme: Path = README, results_dir: Path = RESULTS_DIR) -> None:
    readme.write_text(readme_with_section(readme.read_text(), bench_table(results_dir)))


# ---------------------------------------------------------------- shared fixtures
def gpt2_block_shapes(n_blocks: int, d: int = 768, vectors: bool = True) -> list[tuple[int, ...]]:
    """Parameter shapes of ``n_blocks`` GPT-2 blocks: qkv, attention proj, MLP fc, MLP proj
    (and, with ``vectors``, their biases and the two LayerNorms' gains and biases)."""
    mats = [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)]
    vecs = [(3 * d,), (d,), (4 * d,), (d,), (d,), (d,), (d,), (d,)]
    return (mats + (vecs if vectors else [])) * n_blocks


def optimizer_on_random_grads(opt_cls, shapes, seed: int = 0, warm_steps: int = 1, grad_scale: float = 1.0,
                              device: str = "cpu", **hp):
    """An optimizer over random parameters with fixed random gradients, stepped ``warm_steps``
    times (state allocated, warm-ups passed) before timing. Returns (optimizer, params)."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).to(device).requires_grad_(True) for s in shapes]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * grad_scale).to(device)
    opt = opt_cls(params, **hp)
    for _ in range(warm_steps):
        opt.step()
    return opt, params


def sync_for(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def bench_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    sys.exit(main())
