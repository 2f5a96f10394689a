"""Benchmarks report ratios, never absolute verdicts: our code timed against a torch
baseline in the same process, interleaved, median of repeats.

A benchmark is a module under experiments/bench/ with ``NAME``/``DESCRIPTION`` and
``bench(quick: bool) -> Measurement``; the runner writes
``results/bench/<name>.json`` = {"name", "ratio", "numerator", "denominator", "meta", ...}.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
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
                     sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin so that drift in
    machine load hits every candidate alike."""
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
    return {k: statistics.median(v) for k, v in times.items()}


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
    args = ap.parse_args(argv)
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
    for name in names:
        module = _load(found[name])
        meta = run_meta()
        meta["quick"] = args.quick
        t0 = time.perf_counter()
        m: Measurement = module.bench(quick=args.quick)
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        record = {"name": name, "description": getattr(module, "DESCRIPTION", ""), "ratio": m.ratio,
                  "goal": m.goal, "numerator": m.numerator, "denominator": m.denominator, **m.extra, "meta": meta}
        write_json(args.out / f"{name}.json", record)
        print(f"bench: {name:24s} ratio {m.ratio:7.3f}  (goal {m.goal or '-'})  "
              f"{m.numerator.get('what', '')} / {m.denominator.get('what', '')}")
    return 0


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


@dataclass
class VersusAdamW:
    """Step times of some optimizers timed round-robin with torch's AdamW (foreach and for-loop) and
    one fp32 copy of all parameters, in the same run (``versus_torch_adamw``)."""

    seconds: dict[str, float]
    baseline: str  # the faster of "adamw_foreach" and "adamw_forloop"
    n_params: int

    def ratio(self, name: str) -> float:
        return self.seconds[name] / self.seconds[self.baseline]

    def in_param_copies(self) -> dict[str, float]:
        return {k: v / self.seconds["copy"] for k, v in self.seconds.items() if k != "copy"}


def versus_torch_adamw(make: Callable[..., tuple], candidates: dict[str, tuple], reps: int, **hp) -> VersusAdamW:
    """Time ``candidates`` (name → (optimizer, params) from ``make(opt_cls, **kwargs)``) against
    ``make(torch.optim.AdamW, foreach=True / False, **hp)`` and a copy of the parameters."""
    cands = {"adamw_foreach": make(torch.optim.AdamW, foreach=True, **hp),
             "adamw_forloop": make(torch.optim.AdamW, foreach=False, **hp), **candidates}
    params = cands["adamw_foreach"][1]
    dst = [torch.empty_like(p) for p in params]
    fns = {k: opt.step for k, (opt, _) in cands.items()}
    fns["copy"] = lambda: torch._foreach_copy_(dst, params)
    t = time_interleaved(fns, reps=reps)
    return VersusAdamW(t, min(("adamw_foreach", "adamw_forloop"), key=t.__getitem__), sum(p.numel() for p in params))
