"""DDP work sharing for matrix optimizers (Muon, clip-then-Muon, SOAP, DeVA-S∞).

Under DDP every rank holds the same averaged gradients, so every rank would repeat every
Newton–Schulz iteration and eigendecomposition. Sharing (as modded-nanogpt distributes Muon):
each matrix gets one *owner* rank; a rank steps only the matrices it owns (their optimizer state
lives there only) and then every matrix is broadcast from its owner, so all ranks end with the
same parameters as one process would. Ownership balances the matrix work (≈ n·m·min(n, m) per
matrix, the cost of one Newton–Schulz/eigen step) greedily over ranks, in the same order on every
rank.

Opt in with ``opt.shard = True`` (an optimizer attribute, not a hyperparameter: it changes where
the work runs, not the math); the trainer does so for every matrix optimizer under DDP
(``geomopt.train.dist.share_matrix_work``) and gathers the state before each checkpoint. Off, or
without an initialised process group of more than one rank, the step is the single-process one. (clip-then-Muon shares through Muon's step; its
``position="momentum"`` variant runs its own loop and is not shared.) Because the state of a
matrix lives on its owner only, call ``gather_state(opt)`` on EVERY rank before saving ``opt.state_dict()`` from one of them.
``opt.matrix_steps`` counts the matrices this rank has stepped (tests check ≈ 1/world each).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def assign_owners(shapes: list[tuple[int, ...]], world_size: int) -> list[int]:
    """Owner rank of each matrix: largest first onto the least-loaded rank (deterministic)."""
    def cost(shape):
        n, m = shape[0], max(1, int(torch.Size(shape[1:]).numel()))
        return n * m * min(n, m)

    load = [0] * world_size
    owners = [0] * len(shapes)
    for i in sorted(range(len(shapes)), key=lambda i: (-cost(shapes[i]), i)):
        rank = min(range(world_size), key=lambda r: (load[r], r))
        owners[i] = rank
        load[rank] += cost(shapes[i])
    return owners


def sharing(opt: torch.optim.Optimizer) -> bool:
    return bool(getattr(opt, "shard", False)) and world()[1] > 1


def owners_of(opt: torch.optim.Optimizer, group: dict) -> list[int] | None:
    """Owner rank of each of the group's parameters (all of them, so that it does not depend on
    which have gradients); None when not sharing."""
    if not sharing(opt):
        return None
    return assign_owners([tuple(p.shape) for p in group["params"]], world()[1])


def my_share(opt: torch.optim.Optimizer, group: dict) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int] | None]:
    """(the group's parameters with gradients that this rank steps, all with gradients, their owners or None)."""
    owners = owners_of(opt, group)
    stepped = [(p, None if owners is None else owners[i]) for i, p in enumerate(group["params"]) if p.grad is not None]
    rank = world()[0]
    mine = [p for p, o in stepped if o is None or o == rank]
    return mine, [p for p, _ in stepped], None if owners is None else [o for _, o in stepped]


def count_steps(opt: torch.optim.Optimizer, n: int) -> None:
    opt.matrix_steps = getattr(opt, "matrix_steps", 0) + n


def broadcast_from_owners(params: list[torch.Tensor], owners: list[int] | None) -> None:
    """Every matrix from its owner to all ranks (no-op when not sharing)."""
    if owners is None:
        return
    works = [dist.broadcast(p.data, src=o, async_op=True) for p, o in zip(params, owners)]
    for w in works:
        w.wait()


def gather_state(opt: torch.optim.Optimizer) -> None:
    """Collective: copy every matrix's optimizer state from its owner to all ranks (before a
    checkpoint). Call on every rank; a no-op when not sharing."""
    if not sharing(opt):
        return
    for group in opt.param_groups:
        for p, owner in zip(group["params"], owners_of(opt, group)):
            box = [opt.state[p] if p in opt.state else {}]
            dist.broadcast_object_list(box, src=owner)
            if box[0]:
                opt.state[p] = {k: v.to(p.device) if torch.is_tensor(v) else v for k, v in box[0].items()}


def sum_over_ranks(values: list[torch.Tensor | float]) -> list[float]:
    """Collective: each value summed over the ranks (numbers or 0-d tensors; float64 on the default
    process group's device)."""
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()
