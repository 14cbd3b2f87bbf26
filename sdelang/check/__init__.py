"""Numeric checks of what a model claims: ``run_numeric_check`` simulates a Langevin-type model from
its density p and tests, with two-sample statistics, that p stays stationary.

One concept per module: ``target`` (p as numbers, split into independent blocks), ``samplers``
(exact or reference draws from p), ``dynamics`` (the model's drift/diffusion as numpy),
``horizon`` (relaxation time), ``step_bias`` (Euler–Maruyama's stationary bias), ``two_sample``
(the tests), ``plot`` (the picture), ``numeric`` (the check itself). Neither torch nor jax is
imported here: a backend is loaded only by ``model.compile`` inside the check.
"""
from .numeric import NumericCheckResult, run_numeric_check

__all__ = ["NumericCheckResult", "run_numeric_check"]
