"""The two orthogonalizers (geomopt.optim.orthogonalize) and the option that selects them in Muon,
clip-then-Muon, AdaMuon and DeVA-S∞."""

import math

import pytest
import torch

from geomopt.optim.adamuon import AdaMuon
from geomopt.optim.clip_muon import ClipMuon
from geomopt.optim.deva import DevaSinf
from geomopt.optim.muon import Muon
from geomopt.optim.orthogonalize import NS_COEFFICIENTS, msign, msign_authors

A, B, C = NS_COEFFICIENTS


def _authors_by_singular_values(x: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The authors' msign written through the SVD: Newton–Schulz maps X = UΣVᵀ to U φ(Σ) Vᵀ, with
    σ̂ = σ/‖σ‖₂ / (Σ(σ/‖σ‖₂)⁸)^{1/8} (the Frobenius step, then the extra first-iterate division by
    ‖(YYᵀ)²‖_F^{1/4}) and φ = p∘…∘p (``steps`` times), p(s) = a·s + b·s³ + c·s⁵."""
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    s = s / s.norm()
    s = s / s.pow(8).sum().pow(1 / 8)
    for _ in range(steps):
        s = A * s + B * s ** 3 + C * s ** 5
    return u @ torch.diag(s) @ vh


def _torch_by_singular_values(x: torch.Tensor, steps: int = 5) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    s = s / s.norm()
    for _ in range(steps):
        s = A * s + B * s ** 3 + C * s ** 5
    return u @ torch.diag(s) @ vh


@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (3, 3), (4, 6)])
def test_authors_msign_matches_its_formula_in_float64(shape):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(sum(shape)))
    got = msign_authors(x, dtype=torch.float64)
    torch.testing.assert_close(got, _authors_by_singular_values(x), rtol=1e-10, atol=1e-10)
    # One iteration by hand: Y0 = X/‖X‖_F, n = ‖(Y0Y0ᵀ)²‖_F^{1/4}, Y1 = a·Y + (b·YYᵀ + c·(YYᵀ)²)Y with Y = Y0/n.
    wide = x if shape[0] <= shape[1] else x.T
    y = wide / wide.norm()
    y = y / torch.linalg.matrix_norm(torch.linalg.matrix_power(y @ y.T, 2)) ** 0.25
    one = A * y + (B * (y @ y.T) + C * (y @ y.T) @ (y @ y.T)) @ y
    got_one = msign_authors(x, ns_steps=1, dtype=torch.float64)
    torch.testing.assert_close(got_one, one if shape[0] <= shape[1] else one.T, rtol=1e-12, atol=1e-12)


def test_bf16_orthogonalizers_follow_their_formulas_and_differ():
    x = torch.randn(6, 9, generator=torch.Generator().manual_seed(3))
    for bf16, exact in ((msign(x, orthogonalizer="authors"), _authors_by_singular_values(x.double())),
                        (msign(x), _torch_by_singular_values(x.double()))):
        assert bf16.dtype == x.dtype
        assert ((bf16.double() - exact).norm() / exact.norm()) < 0.03  # bf16 rounding only
    ours, theirs = msign(x), msign(x, orthogonalizer="authors")
    assert (ours - theirs).norm() / ours.norm() > 0.05  # two different maps, not rounding


def test_bad_orthogonalizer_is_rejected_everywhere():
    w = torch.zeros(3, 3, requires_grad=True)
    for make in (lambda: Muon([w], orthogonalizer="svd"), lambda: ClipMuon([w], orthogonalizer="svd"),
                 lambda: AdaMuon([w], orthogonalizer="svd"), lambda: DevaSinf([w], orthogonalizer="svd"),
                 lambda: msign(w.detach(), orthogonalizer="svd")):
        with pytest.raises(ValueError, match="orthogonalizer 'svd' unknown; choose one of: newton_schulz, authors"):
            make()


def test_muon_with_authors_msign_takes_that_step():
    torch.manual_seed(0)
    w0, g1, g2 = torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 6)
    w = w0.clone().requires_grad_(True)
    opt = Muon([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, orthogonalizer="authors")
    buf, ref = torch.zeros_like(w0), w0.clone()
    for g in (g1, g2):
        w.grad = g.clone()
        opt.step()
        buf = buf.lerp(g, 0.1)
        ref = ref * (1 - 0.1 * 0.01) - 0.1 * math.sqrt(max(1, 4 / 6)) * msign_authors(g.lerp(buf, 0.9))
    torch.testing.assert_close(w.detach(), ref)
    assert opt.param_groups[0]["orthogonalizer"] == "authors"
    state = opt.state_dict()
    again = Muon([w0.clone().requires_grad_(True)])
    again.load_state_dict(state)
    assert again.param_groups[0]["orthogonalizer"] == "authors"


def test_clip_muon_momentum_position_uses_the_option():
    torch.manual_seed(1)
    g = torch.randn(5, 3)
    runs = {}
    for ortho in ("newton_schulz", "authors"):
        w = torch.zeros(5, 3, requires_grad=True)
        opt = ClipMuon([w], lr=0.1, psi="hard", position="momentum", orthogonalizer=ortho)
        w.grad = g.clone()
        opt.step()
        runs[ortho] = w.detach().clone()
    assert not torch.allclose(runs["newton_schulz"], runs["authors"], rtol=0.02, atol=0)


def test_deva_sinf_and_adamuon_take_the_authors_msign():
    torch.manual_seed(2)
    g = torch.randn(3, 5)
    # Γ ≡ 1 and no first-step skip: the DeVA-S∞ update is 0.2·√max(n,m)·msign(G) (β1 = 0, no WD).
    w = torch.zeros(3, 5, requires_grad=True)
    opt = DevaSinf([w], lr=1.0, betas=(0.0, 0.9), weight_decay=0.0, gain="none", skip_first_step=False,
                   orthogonalizer="authors")
    w.grad = g.clone()
    opt.step()
    torch.testing.assert_close(w.detach(), -0.2 * math.sqrt(5) * msign_authors(g))
    # AdaMuon's first step: O = msign(sign(G)), V = (1−β2)O², Ô = O/(√V + ε), rescaled to RMS 0.2.
    w = torch.zeros(3, 5, requires_grad=True)
    opt = AdaMuon([w], lr=1.0, betas=(0.0, 0.9), eps=0.0, orthogonalizer="authors")
    w.grad = g.clone()
    opt.step()
    o = msign_authors(g.sign())
    adapted = o / (0.1 * o * o).sqrt()
    torch.testing.assert_close(w.detach(), -0.2 * math.sqrt(15) * adapted / adapted.norm())
