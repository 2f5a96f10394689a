"""DDP work sharing: two gloo processes that each step half of the matrices give the
one-process result, and each rank does about half of the matrix work (counted)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geomopt.optim import shard
from geomopt.optim.clip_muon import ClipMuon
from geomopt.optim.deva import DevaSinf
from geomopt.optim.muon import Muon
from geomopt.optim.soap import SOAP

SHAPES = [(24, 8), (8, 8), (16, 8), (8, 32), (6, 2, 3, 3)]  # a conv filter too
OPTIMIZERS = {
    "muon": (Muon, dict(lr=0.02, momentum=0.95, weight_decay=0.01)),
    "clip_muon": (ClipMuon, dict(lr=0.02, momentum=0.95)),
    "soap": (SOAP, dict(lr=3e-3, precondition_frequency=2)),
    "deva_sinf": (DevaSinf, dict(lr=3e-3, precondition_frequency=2)),
}
STEPS = 5


def _train(name: str, sharded: bool):
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).requires_grad_(True) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(STEPS)]
    cls, hp = OPTIMIZERS[name]
    opt = cls(params, **hp)
    opt.shard = sharded
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    return [p.detach().clone() for p in params], getattr(opt, "matrix_steps", 0), opt


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = {}
        for name in OPTIMIZERS:
            params, count, opt = _train(name, sharded=True)
            shard.gather_state(opt)
            results[name] = (params, count, len(opt.state))
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_owners_balance_matrix_work():
    owners = shard.assign_owners([(64, 64), (64, 64), (8, 8), (8, 8)], 2)
    assert sorted(owners[:2]) == [0, 1] and sorted(owners[2:]) == [0, 1]
    assert shard.assign_owners([(4, 4)] * 3, 1) == [0, 0, 0]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_two_gloo_ranks_equal_one_process_and_split_the_work(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name in OPTIMIZERS:
        single, total, _ = _train(name, sharded=False)
        assert total == STEPS * len(SHAPES)
        for rank in ranks:
            params, _, n_state = rank[name]
            assert n_state == len(SHAPES)  # gather_state gave every rank every matrix's state
            for a, b in zip(params, single):
                assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-6, name
        counts = [rank[name][1] for rank in ranks]
        assert sum(counts) == total and max(counts) <= 0.6 * total, (name, counts)


def test_trainer_helper_turns_sharing_on_for_matrix_optimizers_under_ddp():
    from geomopt.train.dist import DistInfo, share_matrix_work

    params = [torch.zeros(4, 4, requires_grad=True)]
    opts = [Muon(params), SOAP(params), DevaSinf(params), torch.optim.AdamW(params)]
    share_matrix_work(opts, DistInfo())
    assert not any(getattr(o, "shard", False) for o in opts)
    share_matrix_work(opts, DistInfo(rank=0, world=2))
    assert [getattr(o, "shard", False) for o in opts] == [True, True, True, False]
    assert not shard.sharing(opts[0])  # no process group here: the single-process step
