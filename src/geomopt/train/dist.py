"""Process topology: one process, or DDP under ``torchrun`` (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed() -> DistInfo:
    """Join the process group when torchrun started several processes (idempotent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place; identity for one process)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def share_matrix_work(optimizers: list[torch.optim.Optimizer], info: DistInfo) -> None:
    """Under DDP, let each rank step only its share of the hidden matrices (Muon, clip-then-Muon,
    SOAP, DeVA-S∞; ``geomopt.optim.shard``). A checkpoint must then call ``gather_state`` on every
    rank before rank 0 saves the optimizers' state_dicts."""
    if not info.enabled:
        return
    from geomopt.optim.muon import Muon
    from geomopt.optim.soap import EigenbasisOptimizer

    for opt in optimizers:
        if isinstance(opt, (Muon, EigenbasisOptimizer)):
            opt.shard = True
