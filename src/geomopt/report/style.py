"""One figure style for every plot: seaborn theme, a fixed colour and label per optimizer,
PNG at 150 dpi plus PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

# Fixed colour and display label per optimizer/method name used anywhere in results/.
_PALETTE = sns.color_palette("tab20", 20)
OPTIMIZER_STYLE: dict[str, tuple[str, tuple]] = {
    "sgd": ("SGD", _PALETTE[14]),
    "sgd_nesterov": ("SGD-Nesterov", _PALETTE[14]),
    "adamw": ("AdamW", _PALETTE[0]),
    "adam": ("Adam", _PALETTE[0]),
    "muon": ("Muon", _PALETTE[2]),
    "soap": ("SOAP", _PALETTE[4]),
    "lion": ("Lion", _PALETTE[8]),
    "shrink_adamw": ("AdamW + smooth shrinkage", _PALETTE[6]),
    "clip_muon": ("Clip → Muon", _PALETTE[3]),
    "clipnorm_adamw": ("AdamW + global-norm clip", _PALETTE[1]),
    "spectra_adamw": ("AdamW + spectral soft clip", _PALETTE[5]),
    "deva_linf": ("DeVA-ℓ∞", _PALETTE[10]),
    "deva_sinf": ("DeVA-S∞", _PALETTE[12]),
    "signsgd": ("signSGD", _PALETTE[15]),
    "adamuon": ("AdaMuon", _PALETTE[17]),
    "stacey_p2": ("Stacey(p,2)", _PALETTE[18]),
    "stacey_pp": ("Stacey(p,p)", _PALETTE[7]),  # not tab20[19]: too close to Stacey(p,2)
    "gd": ("GD", _PALETTE[14]),
    "hasd": ("HASD", _PALETTE[6]),
    "lp_steepest": ("ℓp steepest descent", _PALETTE[15]),
    "agd_Lp": ("AGD (1/L_p)", _PALETTE[1]),
    "agd_L2": ("AGD (1/L₂)", _PALETTE[0]),
    "identity": ("identity", _PALETTE[15]),
    "ours": ("Ours (immunization, Alg. 1)", _PALETTE[6]),
    "rill_only": ("R_ill Only", _PALETTE[16]),
    "opt_kappa": ("Opt κ", _PALETTE[9]),
}
_EXTRA = sns.color_palette("husl", 12)


def optimizer_style(name: str) -> tuple[str, tuple]:
    """(label, colour) for an optimizer name; unknown names get a stable extra colour."""
    if name in OPTIMIZER_STYLE:
        return OPTIMIZER_STYLE[name]
    return name, _EXTRA[sum(map(ord, name)) % len(_EXTRA)]


def apply_theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig, out_base: str | Path) -> list[Path]:
    """Save ``fig`` as ``<out_base>.png`` (150 dpi) and ``.pdf``; returns the paths."""
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_base.with_suffix(".png"), out_base.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})  # reproducible bytes
    plt.close(fig)
    return paths
