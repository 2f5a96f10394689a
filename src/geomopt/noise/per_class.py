"""Gradient noise per parameter class, each statistic next to a Gaussian control.

For a model's minibatch noise N_b = g_b − ḡ (``gradient_noise``; b = 1..n samples) we
report, per class of ``classes.PARAM_CLASSES`` (spec §0, §3.6, §4 E1):

* α̂: Simsekli's tail index on the class's entries in a *random order*. In the stored
  order a block of consecutive entries is one row (one token's embedding, one output
  unit): its sum mixes one scale and correlated entries, and α̂ then reads 2.5–∞ on real
  noise. Shuffled, iid Gaussian reads 2, iid Cauchy 1.
* Hill's α̂ on the same entries (plateau median, ``hill_alpha``);
* L/L_G (``normalized_localization_ratio``) and two spectral-norm cuts ‖N‖₂ / ‖clip_c(N)‖₂
  by entry-wise clipping, per sample matrix (a vector is a 1×d matrix), mean over samples,
  entry-weighted median over the class's parameters: at c = 3·1.4826·MAD of the matrix (one threshold, as
  clip-then-Muon) and at c_ij = 3·s_ij, each entry's own scale (as ψ(g/√v̂) in ShrinkAdamW);
* every one of them again on a **Gaussian surrogate**: Z·s_ij with s_ij the entry's robust
  scale (``entry_scale``: robust row scale × robust column scale, over the samples).
  Unequal scales alone (rows of tokens of Zipfian frequencies, parameters of different sizes
  pooled in one class) push α̂ below 2 and raise the per-matrix clip cut; the surrogate has
  the same scales and no tails. When the scales are themselves spread like a power law (BPE
  embeddings: α̂ ≈ 1 for noise and surrogate alike) the raw α̂ saturates, so the tail
  *beyond* the scales is read on N/s, where the surrogate is exactly Gaussian (``alpha_std``).
  The scales are medians, not mean squares, on purpose: a mean square absorbs the very
  outliers it should expose (the surrogate of iid Cauchy noise would read α̂ ≈ 1 too).

The reading (``reading``) applies a stated rule to these numbers, see ``RULE``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor, nn

from geomopt.noise.classes import PARAM_CLASSES, parameter_classes
from geomopt.noise.gradient_noise import gradient_noise
from geomopt.noise.localization import gaussian_localization, spectral_norm
from geomopt.noise.tail_index import hill_alpha, simsekli_alpha
from geomopt.optim.grad_transforms import MAD_TO_SIGMA

GAUSSIAN_ALPHA = 2.0  # α̂ of iid Gaussian entries (the control reads 2.02)
ALPHA_MARGIN = 0.3  # heavy-tailed: α̂ at least this far below the surrogate's α̂
CUT_FACTOR = 1.5  # localized: clipping cuts ‖N‖₂ at least this many times more than the surrogate's
RULE = (f"heavy-tailed ⇔ α̂ of N/s ≤ the surrogate's − {ALPHA_MARGIN}; localized ⇔ the cut of ‖N‖₂ by clipping "
        f"at 3·s ≥ {CUT_FACTOR} × the surrogate's; entry-wise clipping is predicted to help where both hold; "
        f"heavy-tailed only through unequal scales ⇔ raw α̂ ≤ {GAUSSIAN_ALPHA} − {ALPHA_MARGIN} but not "
        "heavy-tailed (s: each entry's robust scale; last measured point)")


MAX_ENTRIES = 1 << 20  # tail estimators read a random subset of this many entries (sorting 10⁷ is slow)


def shuffled_alpha(x: Tensor, generator: torch.Generator) -> float:
    """Simsekli's α̂ on the entries of ``x`` in a random order."""
    v = torch.as_tensor(x).reshape(-1)
    return simsekli_alpha(v[torch.randperm(v.numel(), generator=generator)])


def random_entries(x: Tensor, generator: torch.Generator, limit: int = MAX_ENTRIES) -> Tensor:
    """The entries of ``x`` in a random order, at most ``limit`` of them (drawn with replacement
    beyond it: the estimators then read the same distribution at the same quantiles)."""
    v = x.reshape(-1)
    if v.numel() <= limit:
        return v[torch.randperm(v.numel(), generator=generator)]
    return v[torch.randint(v.numel(), (limit,), generator=generator)]


def _matrices(samples: Tensor) -> Tensor:
    """(n, *shape) -> (n, m, k): a vector is a 1×d matrix, a conv filter (out, in·kh·kw)."""
    n = samples.shape[0]
    if samples.ndim <= 2:
        return samples.reshape(n, 1, -1)
    return samples.reshape(n, samples.shape[1], -1)


def _median(x: Tensor, dim: int) -> Tensor:
    """The median along ``dim`` (the mean of the two middle values for an even count)."""
    a = x.sort(dim=dim).values
    n = a.shape[dim]
    mid = a.narrow(dim, n // 2, 1)
    if n % 2 == 0:
        mid = 0.5 * (mid + a.narrow(dim, n // 2 - 1, 1))
    return mid.squeeze(dim)


def entry_scale(samples: Tensor) -> Tensor:
    """Each entry's robust scale s_ij = r_i·c_j, from samples (n, *shape) of one parameter viewed
    as matrices (n, m, k): r_i = 1.4826·median_{b,j} |N_b,ij| (a row: one token, one unit) and
    c_j = 1.4826·median_{b,i} |N_b,ij| / r_i over rows with r_i > 0. σ_ij for Gaussian noise of
    separable scales. Each median runs over many entries, so the surrogate has no scale noise of
    its own: per-entry medians over 8 samples make a Gaussian's surrogate read L/L_G ≈ 1.45 where
    the Gaussian reads 0.98. A row that is zero in most samples (a rare token) gets r_i ≈ 0."""
    a = _matrices(samples.abs())
    n, m, k = a.shape
    r = MAD_TO_SIGMA * _median(a.transpose(0, 1).reshape(m, n * k), 1)
    live = r > 0
    if not bool(live.any()):
        return torch.zeros(samples.shape[1:], dtype=samples.dtype)
    ratio = (a[:, live] / r[live, None]).permute(2, 0, 1).reshape(k, -1)
    c = MAD_TO_SIGMA * _median(ratio, 1)
    return (r[:, None] * c[None, :]).reshape(samples.shape[1:])


def _mean(values: list[float]) -> float:
    """Mean without NaN (nothing measured); inf stays: clipping removed all of a sample's norm."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def spectral_stats(samples: Tensor, scale: Tensor, k: float = 3.0) -> dict[str, float]:
    """Mean over samples of L/L_G and of two cuts of ‖N‖₂ by entry-wise clipping: ``clip_cut`` at
    c = k·1.4826·MAD of each sample matrix (one threshold per matrix, as clip-then-Muon;
    ``spectral_norms_around_clip``, batched) and ``clip_cut_entry`` at c_ij = k·s_ij, each
    entry's own scale (as a ψ applied to g/√v̂ in ShrinkAdamW). NaN when there is nothing to
    measure (a single entry, noise that is all zero); inf when clipping removes everything (more
    than half the entries exactly 0, as the rows of tokens absent from a batch: MAD = 0)."""
    mats = _matrices(samples)
    n, m, cols = mats.shape
    if m * cols < 2:
        return {"L_over_LG": math.nan, "clip_cut": math.nan, "clip_cut_entry": math.nan}
    before = spectral_norm(mats)
    c = (k * MAD_TO_SIGMA * mats.abs().reshape(n, -1).median(1).values)[:, None, None]
    after = spectral_norm(torch.clamp(mats, -c, c))
    c_entry = k * scale.reshape(1, m, cols)
    after_entry = spectral_norm(torch.maximum(torch.minimum(mats, c_entry), -c_entry))
    loc = mats.abs().amax((1, 2)) / before / gaussian_localization(m, cols)
    return {"L_over_LG": _mean(loc.tolist()), "clip_cut": _mean((before / after).tolist()),
            "clip_cut_entry": _mean((before / after_entry).tolist())}


def _tail(entries: Tensor, generator: torch.Generator) -> dict[str, float]:
    """Shuffled Simsekli α̂ and Hill's α̂ on (a random subset of) the entries."""
    v = random_entries(entries, generator)
    if (v != 0).sum() < 16:  # too few entries for either estimator
        return {"alpha": math.nan, "hill": math.nan}
    return {"alpha": simsekli_alpha(v), "hill": hill_alpha(v)}


def _weighted_median(values: list[float], weights: list[int]) -> float:
    """The value at half the total weight (NaN dropped): a class's typical *entry*, so that the
    8k-row token table decides the embeddings' value rather than the 128-row position table."""
    pairs = sorted((v, w) for v, w in zip(values, weights) if not math.isnan(v))
    if not pairs:
        return math.nan
    half, acc = sum(w for _, w in pairs) / 2, 0
    for v, w in pairs:
        acc += w
        if acc >= half:
            return v
    return pairs[-1][0]


def _with_surrogate(real: dict, surrogate: dict) -> dict:
    return {**real, **{f"{k}_surrogate": v for k, v in surrogate.items()}}


def noise_table(noise: dict[str, Tensor], classes: dict[str, str], generator: torch.Generator) -> dict[str, Any]:
    """Per-parameter and per-class statistics of noise samples ``noise[name]`` of shape (n, *shape),
    each with its ``*_surrogate`` twin. ``alpha_std`` is α̂ of N/s (entries with s > 0): the
    tail beyond each entry's own scale, where the surrogate is exactly Gaussian.
    Returns ``{"classes": {cls: row}, "params": {name: row}}``."""
    params, pooled = {}, {c: ([], [], [], []) for c in PARAM_CLASSES}
    for name, samples in noise.items():
        cls = classes[name]
        samples = samples.detach().double()
        scale = entry_scale(samples)
        z = torch.randn(samples.shape, generator=generator, dtype=samples.dtype)
        surrogate = z * scale  # Gaussian with the same per-entry scales
        live = (scale > 0).expand_as(samples)
        std, std_surrogate = torch.where(live, samples / scale.clamp_min(1e-300), 0.0), torch.where(live, z, 0.0)
        params[name] = {"class": cls, "shape": list(samples.shape[1:]),
                        **_with_surrogate(_tail(samples, generator), _tail(surrogate, generator)),
                        **_with_surrogate(spectral_stats(samples, scale), spectral_stats(surrogate, scale))}
        for store, t in zip(pooled[cls], (samples, surrogate, std, std_surrogate)):
            store.append(t.reshape(samples.shape[0], -1))
    table = {}
    for cls in PARAM_CLASSES:
        names = [n for n, p in params.items() if p["class"] == cls]
        if not names:
            continue
        real, surr, std, std_surr = (torch.cat(parts, 1) for parts in pooled[cls])
        row = {"params": len(names), "entries": real.shape[1],
               **_with_surrogate(_tail(real, generator), _tail(surr, generator)),
               "alpha_std": _tail(std, generator)["alpha"], "alpha_std_surrogate": _tail(std_surr, generator)["alpha"]}
        if real.shape[0] >= 8:  # C1's "survives averaging": α̂ of the mean of 4 samples
            k = real.shape[0] // 4 * 4
            row["alpha_avg4"] = _tail(real[:k].reshape(-1, 4, real.shape[1]).mean(1), generator)["alpha"]
            row["alpha_std_avg4"] = _tail(std[:k].reshape(-1, 4, std.shape[1]).mean(1), generator)["alpha"]
        sizes = [math.prod(params[n]["shape"]) for n in names]
        for key in ("L_over_LG", "clip_cut", "clip_cut_entry"):
            row[key] = _weighted_median([params[n][key] for n in names], sizes)
            row[f"{key}_surrogate"] = _weighted_median([params[n][f"{key}_surrogate"] for n in names], sizes)
        table[cls] = {**row, **classify(row)}
    return {"classes": table, "params": params}


def classify(row: dict[str, float]) -> dict[str, bool]:
    """The rule of ``RULE`` on one class's row (a NaN comparison is False: not shown)."""
    heavy = row["alpha_std"] <= row["alpha_std_surrogate"] - ALPHA_MARGIN
    localized = row["clip_cut_entry"] >= CUT_FACTOR * row["clip_cut_entry_surrogate"]
    scales_only = not heavy and row["alpha"] <= GAUSSIAN_ALPHA - ALPHA_MARGIN
    return {"heavy_tailed": bool(heavy), "localized": bool(localized), "clipping_helps": bool(heavy and localized),
            "heavy_by_scales_only": bool(scales_only)}


def reading(classes: dict[str, dict]) -> str:
    """One line from the class rows of one point: where clipping is predicted to help, and why."""
    groups: dict[str, list[str]] = {}
    for cls, row in classes.items():
        if row["clipping_helps"]:
            key = "heavy-tailed and localized: entry-wise clipping predicted to help there"
        elif row["heavy_tailed"]:
            key = "heavy-tailed but not localized (clipping cuts ‖N‖₂ no more than for Gaussian noise of the same scales)"
        elif row["localized"]:
            key = "localized but not heavy-tailed (α̂ close to its Gaussian surrogate's)"
        elif row["heavy_by_scales_only"]:
            key = ("heavy-tailed only through unequal entry scales (a Gaussian of the same scales reads the same): "
                   "no gain predicted from entry-wise clipping beyond per-entry scaling")
        else:
            key = "Gaussian-like: no gain predicted from entry-wise clipping"
        groups.setdefault(key, []).append(
            f"{cls} (α̂ of N/s {row['alpha_std']:.2f} vs {row['alpha_std_surrogate']:.2f}, raw {row['alpha']:.2f}, "
            f"cut at 3·s {row['clip_cut_entry']:.2f}× vs {row['clip_cut_entry_surrogate']:.2f}×)")
    order = sorted(groups, key=lambda k: not k.startswith("heavy-tailed and"))
    return "; ".join(f"{' and '.join(groups[k])} {k}" for k in order)


def measure(model: nn.Module, loss_fn: Callable[[nn.Module, Any], Tensor], draw: Callable[[], Any],
            large: int = 8, samples: int = 8, seed: int = 0) -> dict[str, Any]:
    """The per-class noise table of ``model`` now: ``samples`` minibatches from ``draw()`` against
    the mean gradient of ``large`` others (eval mode: no dropout; ``.grad`` untouched)."""
    if samples < 4 or large < 1:
        raise ValueError(f"need samples >= 4 and large >= 1, got samples={samples}, large={large}")
    was_training = model.training
    model.eval()
    try:
        noise = gradient_noise(model, loss_fn, [draw() for _ in range(samples)], [draw() for _ in range(large)])
    finally:
        model.train(was_training)
    return noise_table(noise, parameter_classes(model), torch.Generator().manual_seed(seed))
