"""The AdamW baseline of the CPU language-model task (experiments/presets/cpu/gpt_bpe.toml: a
4-layer d = 128 GPT on 8k byte-level BPE Shakespeare) at its three budgets: the full run (its
curve shows whether the loss has left its initial drop) and the 25% / 50% runs, each annealed
at its own end, branched off the full run at their decay starts (geomopt.train.budget).

    flock /tmp/geomopt-heavy.lock python experiments/lm/baseline.py   # train (~10 min, one thread) + summary
    python experiments/lm/baseline.py --summarize                     # summary of the existing run only
    python experiments/lm/baseline.py --quick                         # 20 steps -> results/quick/lm

Writes ``results/lm/runs/gpt_bpe_adamw_s0_b{25,50,100}.jsonl`` (the runs: config, commit, machine,
rows) and ``results/lm/gpt_bpe_baseline.json`` (the full run's losses at the budget fractions,
each budget's annealed loss, throughput). The figure
is ``make figures`` (figures/lm/gpt_bpe_baseline.png).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from geomopt.report.budget import eval_at, train_nll_at
from geomopt.results import REPO_ROOT, read_run, run_meta, write_json
from geomopt.train import load_config
from geomopt.train.budget import budget_tag, run_budgets

PRESET = REPO_ROOT / "experiments/presets/cpu/gpt_bpe.toml"
FRACTIONS = (0.25, 0.5, 1.0)
NAME = "gpt_bpe_adamw_s0"


def summarize(out_dir: Path) -> dict:
    run_path = out_dir / "runs" / f"{NAME}{budget_tag(1.0)}.jsonl"
    meta, rows = read_run(run_path)
    total = int(meta["total_steps"])
    cfg = meta["config"]
    step_time = rows.dropna(subset=["step_time"])["step_time"]
    step_time = step_time.iloc[len(step_time) // 10:]  # skip the first logged steps (warm-up of the allocator)
    budgets = []
    for f in FRACTIONS:
        val, step = eval_at(rows, f, total, "val_loss")
        bmeta, brows = read_run(out_dir / "runs" / f"{NAME}{budget_tag(f)}.jsonl")
        budgets.append({"fraction": f, "eval_step": step, "val_loss_full_run": val,
                        "train_loss_full_run_last_5pct": train_nll_at(rows, f, total, window=0.05),
                        "annealed_run": bmeta["config"]["name"], "annealed_status": bmeta["status"],
                        "annealed_steps": bmeta["total_steps"], "branched_from": bmeta.get("branched_from"),
                        "annealed_val_loss": float(brows.dropna(subset=["val_loss"])["val_loss"].iloc[-1])})
    val = rows.dropna(subset=["val_loss"])
    summary = {"meta": run_meta(cfg.get("seed"), None), "run": str(run_path.relative_to(REPO_ROOT)),
               "run_git_commit": meta["git_commit"], "run_status": meta["status"], "total_steps": total,
               "tokens": int(rows["tokens"].max()), "tokens_per_step": cfg["batch_size"] * cfg["seq_len"],
               "threads": meta["machine"]["torch_threads"],
               "tokens_per_second_median_step": cfg["batch_size"] * cfg["seq_len"] / float(step_time.median()),
               "initial_val_loss": float(val["val_loss"].iloc[0]), "budgets": budgets,
               "note": "val_loss_full_run: the full run read at a fraction of its budget (not annealed there); "
                       "annealed_val_loss: the run of that budget, annealed at its own end; "
                       "throughput on a 2-core machine shared with other jobs"}
    write_json(out_dir / "gpt_bpe_baseline.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 steps into results/quick/lm (a pipeline check)")
    ap.add_argument("--summarize", action="store_true", help="only summarize the existing run")
    args = ap.parse_args(argv)
    out_dir = REPO_ROOT / "results" / ("quick/lm" if args.quick else "lm")
    if not args.summarize:
        torch.set_num_threads(1)  # the budget is stated for one core
        over = [f"name={NAME}", f"out={out_dir}/runs/{{name}}.jsonl", f"checkpoint_dir=checkpoints/lm/{{name}}",
                "progress=false"] + (["total_tokens=0", "steps=20", "warmup_steps=4", "eval_every=20480", "eval_tokens=4096"]
                                     if args.quick else [])
        run_budgets(load_config(PRESET, over), FRACTIONS, command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))
    s = summarize(out_dir)
    print(f"{s['run']}: {s['tokens']:,} tokens, {s['tokens_per_second_median_step']:.0f} tokens/s "
          f"({s['threads']} thread), val loss {s['initial_val_loss']:.3f} at step 0")
    for b in s["budgets"]:
        print(f"  {b['fraction']:.0%} of the budget: full run (eval at step {b['eval_step']}) val loss "
              f"{b['val_loss_full_run']:.4f}, train loss {b['train_loss_full_run_last_5pct']:.4f}; "
              f"annealed at {b['annealed_steps']} steps: val loss {b['annealed_val_loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
