"""Paper 1's noise science: localization of gradient noise, tail indices, noise samplers,
real minibatch gradient noise, its measurement per parameter class against a Gaussian
surrogate (``per_class``; the ``python -m geomopt noise`` diagnostic is ``diagnostic``), and
the Bayes-optimal entry-wise estimator (``bayes``, numpy/scipy, for the checks).

**Reconstructed (paper text not available)**: definitions follow spec §2.1–2.3, §3.6.
"""

from geomopt.noise.classes import PARAM_CLASSES, parameter_classes
from geomopt.noise.gradient_noise import gradient_noise, mean_gradient
from geomopt.noise.localization import (
    entrywise_clip,
    gaussian_localization,
    localization_ratio,
    mad_threshold,
    normalized_localization_ratio,
    spectral_norm,
    spectral_norms_around_clip,
)
from geomopt.noise.samplers import cauchy_contaminated, gaussian, student_t
from geomopt.noise.tail_index import hill_alpha, hill_curve, simsekli_alpha

__all__ = ["PARAM_CLASSES", "parameter_classes", "cauchy_contaminated", "entrywise_clip", "gaussian", "gaussian_localization", "gradient_noise",
           "hill_alpha", "hill_curve", "localization_ratio", "mad_threshold", "mean_gradient",
           "normalized_localization_ratio", "simsekli_alpha", "spectral_norm", "spectral_norms_around_clip",
           "student_t"]
