import torch

from geomopt.noise.inject import cauchy_gradient_noise


def _model_with_grads(seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Linear(64, 32)
    for p in m.parameters():
        p.grad = torch.randn_like(p) * 0.01
    return m


def test_contamination_rate_scale_and_reproducibility():
    m = _model_with_grads()
    clean = m.weight.grad.clone()
    apply = cauchy_gradient_noise(m, eps=0.05, gamma=2.0, seed=3)
    state = apply.state_dict()
    apply(0)
    changed = (m.weight.grad != clean).float().mean().item()
    assert 0.02 < changed < 0.09  # about ε of the entries
    # same seed and state -> same draws
    m2 = _model_with_grads()
    again = cauchy_gradient_noise(m2, eps=0.05, gamma=2.0, seed=99)
    again.load_state_dict(state)
    again(0)
    assert torch.equal(m.weight.grad, m2.weight.grad)
    # heavy tail: the largest added entry dwarfs the clean gradient's RMS
    added = (m.weight.grad - clean).abs().max()
    assert added > 10 * clean.pow(2).mean().sqrt()


def test_eps_zero_changes_nothing_and_bad_args_raise():
    m = _model_with_grads()
    clean = [p.grad.clone() for p in m.parameters()]
    cauchy_gradient_noise(m, eps=0.0)(0)
    assert all(torch.equal(a, p.grad) for a, p in zip(clean, m.parameters()))
    import pytest

    with pytest.raises(ValueError, match="eps"):
        cauchy_gradient_noise(m, eps=1.5)
    with pytest.raises(ValueError, match="gamma"):
        cauchy_gradient_noise(m, gamma=0.0)
