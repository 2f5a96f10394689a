"""GPT and ResNets: shapes, causality, sizes, and the optimizer routing on them."""

import pytest
import torch

from geomopt.models import GPT, GPT_SIZES, GPTConfig, resnet18, resnet_small
from geomopt.optim import build_optimizers, route_params


def test_gpt_is_causal_and_shaped():
    torch.manual_seed(0)
    for opts in ({}, {"rotary": True, "norm": "rmsnorm", "activation": "relu2", "qk_norm": True}):
        m = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, **opts)).eval()
        idx = torch.randint(0, 11, (2, 8))
        logits = m(idx)
        assert logits.shape == (2, 8, 11)
        idx2 = idx.clone()
        idx2[:, 5:] = (idx2[:, 5:] + 1) % 11  # change the future
        assert torch.allclose(m(idx2)[:, :5], logits[:, :5], atol=1e-6)
        assert not torch.allclose(m(idx2)[:, 5:], logits[:, 5:])
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 9, dtype=torch.long))


def test_gpt2_124m_size():
    with torch.device("meta"):
        m = GPT(GPTConfig(vocab_size=50257, block_size=1024, **GPT_SIZES["gpt2-124m"], tie_weights=True))
    assert round(m.num_params(non_embedding=False) / 1e6) == 124  # GPT-2 small, tied as in GPT-2


def test_resnet_sizes_and_channels():
    assert round(sum(p.numel() for p in resnet18().parameters()) / 1e5) == 112  # 11.2M, CIFAR ResNet-18
    m = resnet_small(in_channels=1)
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def _expected_route(name: str, p: torch.Tensor) -> str:
    if name.startswith(("wte", "wpe", "lm_head", "fc.weight")):
        return "embed_head"
    if p.ndim == 1:
        return "no_decay"
    return "matrix"


@pytest.mark.parametrize("make", [
    lambda: GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=True)),
    lambda: resnet_small(in_channels=1),
])
def test_routing_on_our_models(make):
    m = make()
    routes = route_params(m)
    names = dict(m.named_parameters())
    assert set(routes.names) == set(names)
    for name, p in names.items():
        assert routes.names[name] == _expected_route(name, p), name
    matrices = {n for n, r in routes.names.items() if r == "matrix"}
    assert all(names[n].ndim in (2, 4) for n in matrices) and len(matrices) >= 4
    assert any(names[n].ndim == 4 for n in matrices) == isinstance(m, type(resnet_small()))


def test_tied_head_is_routed_once_as_embedding():
    m = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16, tie_weights=True))
    routes = route_params(m)
    assert m.lm_head.weight is m.wte.weight and routes.names["wte.weight"] == "embed_head"
    assert sum(p is m.wte.weight for p in routes.embed_head) == 1


def test_muon_steps_on_the_small_resnet():
    torch.manual_seed(0)
    m = resnet_small(in_channels=1, width=8)
    muon, adamw = build_optimizers("muon", m, {"lr": 0.02}, {"lr": 1e-3})
    assert any(p.ndim == 4 for p in muon.param_groups[0]["params"])
    before = m.conv1.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(m(torch.randn(4, 1, 12, 12)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    muon.step()
    adamw.step()
    assert not torch.equal(before, m.conv1.weight) and torch.isfinite(m.conv1.weight).all()
