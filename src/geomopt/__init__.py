"""geomopt: reproductions of four geometry-aware optimization papers by Cedar Site Bai and coauthors.

Subpackages: ``optim`` (the optimizers as torch.optim classes), ``models``, ``data``,
``train`` (the one training loop), ``noise`` (paper 1 diagnostics), ``lp`` (paper 3),
``immunization`` (paper 4), ``report`` (results -> tables and figures).
"""

__version__ = "0.1.0"
