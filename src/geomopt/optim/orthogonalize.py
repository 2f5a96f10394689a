"""msign(X) ≈ UVᵀ (X = UΣVᵀ) by a quintic Newton–Schulz iteration: the two orthogonalizers in use.

Both run 5 steps of Y ← aY + (b·YYᵀ + c·(YYᵀ)²)Y in bf16 with (a, b, c) = (3.4445, −4.7750, 2.0315),
on the wide orientation (tall inputs are transposed), starting from Y = X/‖X‖_F. They differ in
one place (spec paper2 §0, §2.2):

- ``"newton_schulz"``: torch's Muon (``torch.optim._muon._zeropower_via_newtonschulz``), shared by
  our Muon, clip-then-Muon, AdaMuon and DeVA-S∞.
- ``"authors"``: the DeVA authors' ``msign`` (their optimizers/muon.py, used by their Muon, AdaMuon
  and DeVA-S∞): at the first iteration Y is further divided by n = ‖(YYᵀ)²‖_F^{1/4} = (Σσ⁸)^{1/8}
  (so YYᵀ by n², (YYᵀ)² by n⁴), and both norms carry ε = 1e-20 inside the root. Since Σσ² = 1
  after the Frobenius step, n ≤ 1: the iteration starts with larger singular values, and on
  Gaussian test matrices (3×9 to 128×128) its output differs from torch's by 11–47% in relative
  Frobenius norm, median 25% (the issue measured 21–32% on the toy's gradients).

Neither is an SVD: the output singular values land in roughly (0.7, 1.2), not at 1.
"""

from __future__ import annotations

import torch
from torch.optim._muon import DEFAULT_A, DEFAULT_B, DEFAULT_C, _zeropower_via_newtonschulz

NS_COEFFICIENTS = (DEFAULT_A, DEFAULT_B, DEFAULT_C)
ORTHOGONALIZERS = ("newton_schulz", "authors")


def check_orthogonalizer(name: str, owner: str) -> str:
    if name not in ORTHOGONALIZERS:
        raise ValueError(f"{owner}: orthogonalizer {name!r} unknown; choose one of: {', '.join(ORTHOGONALIZERS)}")
    return name


def msign_authors(x: torch.Tensor, ns_coefficients=NS_COEFFICIENTS, ns_steps: int = 5, eps: float = 1e-20,
                  dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """The DeVA authors' msign (see module doc), computed in ``dtype`` (bf16 as theirs; float64 for
    tests), returned in x's dtype."""
    a, b, c = ns_coefficients
    tall = x.size(-2) > x.size(-1)
    y = x.to(dtype)
    y = y.mT if tall else y
    y = y / (y.square().sum(dim=(-2, -1), keepdim=True) + eps) ** 0.5  # Y/‖Y‖_F
    for i in range(ns_steps):
        gram = y @ y.mT
        gram2 = gram @ gram
        if i == 0:  # the extra normalisation: n = (‖(YYᵀ)²‖²_F + ε)^{1/8}
            n = (gram2.square().sum(dim=(-2, -1), keepdim=True) + eps) ** 0.125
            y, gram, gram2 = y / n, gram / n ** 2, gram2 / n ** 4
        y = a * y + (b * gram + c * gram2) @ y
    return (y.mT if tall else y).to(x.dtype)


def msign(x: torch.Tensor, ns_coefficients=NS_COEFFICIENTS, ns_steps: int = 5,
          orthogonalizer: str = "newton_schulz") -> torch.Tensor:
    """≈ UVᵀ of the matrix x by the named orthogonalizer (bf16 inside), returned in x's dtype."""
    if orthogonalizer == "authors":
        return msign_authors(x, ns_coefficients, ns_steps)
    check_orthogonalizer(orthogonalizer, "msign")
    return _zeropower_via_newtonschulz(x, ns_coefficients, ns_steps, 1e-7).to(x.dtype)
