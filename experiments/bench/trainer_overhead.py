"""Trainer overhead: tokens/s of ``Trainer.train_step`` ÷ tokens/s of a bare
forward/backward/AdamW loop on the same model and batch size (goal ≥ 0.9).

The trainer's step includes everything a real run pays per step: sampling the batch
from the Shakespeare stream, the loss sync used for logging and the NaN check, the
LR schedulers. The bare loop reuses one fixed batch (no data cost at all), so the
ratio is a lower bound on the trainer's efficiency.
"""

from __future__ import annotations

import copy
import tempfile

import torch
import torch.nn.functional as F

from geomopt.benchmark import Measurement, time_interleaved
from geomopt.results import REPO_ROOT
from geomopt.train import Trainer, load_config

NAME = "trainer_overhead"
DESCRIPTION = "GPT trainer step vs a bare forward/backward/AdamW loop (CPU preset model), tokens/s ratio"


def bench(quick: bool) -> Measurement:
    torch.set_num_threads(1)
    preset = "gpt.toml"  # the CPU preset model in both modes (the smoke model is all overhead)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(REPO_ROOT / "experiments" / "presets" / "cpu" / preset,
                          [f"out={tmp}/m.jsonl", f"checkpoint_dir={tmp}/ck", "steps=100000", "total_tokens=0",
                           "progress=false"])
        trainer = Trainer(cfg)
        bare_model = copy.deepcopy(trainer.model)
        bare_opt = torch.optim.AdamW(bare_model.parameters(), **{k: v for k, v in cfg.optim.items()})
        (x, y), = trainer.task.next_batch()

        def bare_step():
            logits = bare_model(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
            loss.backward()
            bare_opt.step()
            bare_opt.zero_grad(set_to_none=True)

        reps = 3 if quick else 20
        t = time_interleaved({"trainer": lambda: trainer.train_step(check=True), "bare": bare_step}, reps=reps)
    tokens = trainer.task.tokens_per_step
    ours, base = tokens / t["trainer"], tokens / t["bare"]
    return Measurement(
        numerator={"what": f"Trainer.train_step ({preset})", "tokens_per_s": ours, "seconds": t["trainer"]},
        denominator={"what": "bare fwd/bwd/AdamW", "tokens_per_s": base, "seconds": t["bare"]},
        ratio=ours / base, goal=">= 0.9",
        extra={"tokens_per_step": tokens, "reps": reps, "torch_threads": torch.get_num_threads()})
