"""The compiled (fused) steps equal the eager ones; the machinery compiles once per group and falls back."""

import pytest
import torch

from geomopt.optim import fused
from geomopt.optim.deva import DevaLinf
from geomopt.optim.lion import Lion
from geomopt.optim.shrink_adamw import ShrinkAdamW
from geomopt.optim.signsgd import SignSGD
from geomopt.optim.stacey import StaceyP2, StaceyPP

SHAPES = [(16, 8), (8,), (3, 4, 2)]
CASES = {
    "lion": (Lion, dict(lr=1e-2, weight_decay=0.1)),
    "signsgd": (SignSGD, dict(lr=1e-2, weight_decay=0.1)),
    "deva_linf": (DevaLinf, dict(lr=1e-2, weight_decay=0.1)),
    "deva_linf_bc_nesterov_gsq": (DevaLinf, dict(lr=1e-2, bias_correction=True, nesterov=True,
                                                 second_moment="gradient", eps=1e-8, eps_inside_sqrt=False)),
    "stacey_p2": (StaceyP2, dict(lr=1e-2, p=3.0, weight_decay=0.1)),
    "stacey_pp": (StaceyPP, dict(lr=1e-2, p=3.0, weight_decay=0.1)),
    # ShrinkAdamW: the main variant, the §2.6 reconstruction (no per-entry state: None lists) and post-clipping
    "shrink_adamw": (ShrinkAdamW, dict(lr=1e-2, weight_decay=0.1, warmup_steps=1, t=1.0)),
    "shrink_adamw_spec": (ShrinkAdamW, dict(lr=1e-2, warmup_steps=1, t=2.0, second_moment="shrunk", warmup="global")),
    "shrink_adamw_post": (ShrinkAdamW, dict(lr=1e-2, warmup_steps=1, psi="hard", t=0.5, position="post")),
}
# §2.6's v is fed the shrunk g, which is computed from v: that loop amplifies float32 rounding
# differences between the compiled and eager exp() in the state (the parameters stay within 1e-6)
STATE_RTOL = {"shrink_adamw_spec": 1e-5}
needs_compiler = pytest.mark.skipif(not fused.compiler_available("cpu"), reason="no C++ compiler for torch.compile")


def _run(opt_cls, hp, fused_flag, steps=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).requires_grad_(True) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(steps)]
    groups = [{"params": params[:2]}, {"params": params[2:], "weight_decay": 0.0}]
    opt = opt_cls(groups, fused=fused_flag, **hp)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))  # a new lr every step
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g
        opt.step()
        sched.step()
    return [p.detach() for p in params], opt


@needs_compiler
@pytest.mark.parametrize("name", list(CASES))
def test_compiled_step_equals_eager(name):
    opt_cls, hp = CASES[name]
    eager, eager_opt = _run(opt_cls, hp, False)
    before = fused.compiled_count()
    compiled, opt = _run(opt_cls, hp, True)
    assert fused.compiled_count() - before <= 2  # one compiled copy per group, whatever the lr schedule
    assert not fused._failed, fused._failed  # compiled indeed (a failed compile falls back to eager, with a warning)
    for a, b in zip(compiled, eager):
        assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-6
    # the state too, relative to the gradients' scale (O(1) here): Stacey's m is rebuilt from c with a
    # negative lerp weight (β1−β2)/β1, which cancels digits of a small m in the eager path as well
    for sa, sb in zip(opt.state.values(), eager_opt.state.values()):
        for k in sb:
            if torch.is_tensor(sb[k]):
                assert ((sa[k] - sb[k]).abs().max() / sb[k].abs().max().clamp(min=1.0)).item() <= STATE_RTOL.get(name, 1e-6), k


@needs_compiler
def test_one_compile_per_group_and_no_recompile_on_lr_change():
    torch._dynamo.utils.counters.clear()
    _run(Lion, dict(lr=1e-2, weight_decay=0.1), True, steps=5, seed=3)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2  # two groups, five lrs
    assert any(k.startswith("lion_update_") for k in fused.compile_seconds())


def test_env_forces_eager_and_missing_compiler_falls_back(monkeypatch):
    t = [torch.zeros(fused.AUTO_MIN_NUMEL)]
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    assert not fused.use_fused(True, t) and not fused.use_fused(None, t)
    monkeypatch.setenv(fused.FUSED_ENV, "2")
    with pytest.raises(ValueError, match="GEOMOPT_FUSED"):
        fused.use_fused(None, t)
    monkeypatch.delenv(fused.FUSED_ENV)
    monkeypatch.setitem(fused._available, "cpu", False)
    with pytest.warns(UserWarning, match="no compiler"):
        assert not fused.use_fused(True, t)
    eager, _ = _run(Lion, dict(lr=1e-2), None)
    with pytest.warns(UserWarning):
        fallback, _ = _run(Lion, dict(lr=1e-2), True)
    assert all(torch.equal(a, b) for a, b in zip(eager, fallback))


def test_auto_rule_compiles_only_large_groups(monkeypatch):
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    monkeypatch.setitem(fused._available, "cpu", True)
    assert not fused.use_fused(None, [torch.zeros(10)])
    assert fused.use_fused(None, [torch.zeros(fused.AUTO_MIN_NUMEL)])
    assert not fused.use_fused(False, [torch.zeros(fused.AUTO_MIN_NUMEL)])


@needs_compiler
def test_zero_nonfinite_compiled_is_the_eager_map():
    """Under torch.compile zero_nonfinite_ is a compare (Inductor's CPU isnan is a scalar loop): the same map."""
    from geomopt.optim.shrink import zero_nonfinite_

    x = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.0, 3.4e38, -3.4e38, 1e-45, 0.0])
    compiled = torch.compile(lambda t: zero_nonfinite_(t.clone()), fullgraph=True, dynamic=False)
    assert torch.equal(compiled(x), zero_nonfinite_(x.clone()))


@needs_compiler
@pytest.mark.parametrize("position", ["grad", "momentum"])
def test_clip_muon_compiled_shrink_equals_eager(position):
    """Clip-then-Muon's shrink (scales, clip, copies) compiled equals it eager, non-finite entries included."""
    from geomopt.optim.clip_muon import ClipMuon

    def run(fused_flag):
        gen = torch.Generator().manual_seed(0)
        params = [torch.randn(s, generator=gen).requires_grad_(True) for s in [(16, 8), (8, 24), (6, 2, 3, 3)]]
        opt = ClipMuon(params, lr=0.02, position=position, fused=fused_flag)
        for k in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen) * torch.rand(p.shape[0], *[1] * (p.ndim - 1), generator=gen)
                p.grad.view(-1)[k] = float("nan") if k % 2 else 50.0
            opt.step()
        return [p.detach() for p in params]

    from geomopt.optim.clip_muon import shrink_copies

    for a, b in zip(run(True), run(False)):
        assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-6
    assert shrink_copies not in fused._failed and any(k.startswith("shrink_copies(") for k in fused.compile_seconds())
