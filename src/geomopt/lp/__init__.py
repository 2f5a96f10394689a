"""ℓp geometry for paper 3 (Bai & Bullins, "Faster Acceleration for Steepest Descent"):
the closed-form ℓp steepest-descent step, the accelerated method HASD, its baselines and
convex test problems with known constants and optimum. numpy float64 throughout."""

from geomopt.lp.steepest import dual_exponent, lp_norm, lp_steepest_step, unscaled_direction
from geomopt.lp.hasd import HASDTrace, hasd
from geomopt.lp.baselines import Trace, agd, lp_steepest_descent
from geomopt.lp.problems import ConvexProblem, diagonal_quadratic, smoothed_linf_regression

__all__ = ["ConvexProblem", "HASDTrace", "Trace", "agd", "diagonal_quadratic", "dual_exponent", "hasd",
           "lp_norm", "lp_steepest_descent", "lp_steepest_step", "smoothed_linf_regression", "unscaled_direction"]
