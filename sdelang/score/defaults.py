"""Defaults shared by both backends (one place, so torch and JAX cannot drift apart)."""
from __future__ import annotations

import math
from typing import Optional

T_MIN = 1e-3            # samplers end, losses and log_prob start at t0 + T_MIN
EM_STEPS = 500
SNR = 0.16              # Langevin corrector's signal-to-noise ratio (score_sde's default for VP)
ODE_RTOL = 1e-5
ODE_ATOL = 1e-5
SAMPLER_SALT = 0x5EED   # the samplers' noise stream is the seed's stream folded with this salt
DEQUANTIZE_SALT = 0xDE0  # bits_per_dim's dequantisation noise: the seed's stream folded with this salt
VALIDATION_SALT = 0x7A1  # the trainer's validation loss: the same draws (t, ε) at every evaluation
#: Divergences (the Langevin corrector's (1/n) tr ∂f/∂x, log_prob's ∇·v) are computed exactly
#: (n derivative passes) up to this state dimension n and by Hutchinson's estimator (one
#: Rademacher vector, one pass) above it; ``log_prob(exact=None)`` follows this rule.
EXACT_TRACE_MAX_DIM = 16


def reverse_time_step(module, steps: int, t_min: float) -> float:
    """h = (t1 - t0 - t_min) / steps: ``steps`` equal steps from t1 down to t0 + t_min."""
    span = float(module.t1) - (float(module.t0) + float(t_min))
    if not span > 0:
        raise ValueError(f"need t0 + t_min < t1, got t0={float(module.t0)}, t_min={t_min}, t1={float(module.t1)}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return span / int(steps)


def exact_trace(exact: Optional[bool], dim: int) -> bool:
    """``exact``, or for None: exact up to EXACT_TRACE_MAX_DIM dimensions, Hutchinson above."""
    return int(dim) <= EXACT_TRACE_MAX_DIM if exact is None else bool(exact)


def ode_solver(solver: Optional[str], method: Optional[str]) -> Optional[str]:
    """The ODE solver's name from ``solver=`` or its older alias ``method=`` (None: the backend's
    adaptive default)."""
    if method is not None:
        if solver is not None and solver != method:
            raise TypeError(f"pass solver= (method= is its older name), not both: got solver={solver!r}, "
                            f"method={method!r}")
        return method
    return solver


def ode_steps(t_start: float, t_end: float, steps: Optional[int], dt: Optional[float]) -> Optional[int]:
    """The number of equal steps of a fixed-step ODE solver over [t_start, t_end] from ``steps`` or a
    step size ``dt`` (then ceil(|t_end - t_start| / dt) steps, each ≤ dt); None when neither is given
    (adaptive solvers ignore both)."""
    if steps is not None and dt is not None:
        raise ValueError(f"pass steps= or dt= for the ODE solver, not both (got steps={steps!r}, dt={dt!r})")
    if dt is not None:
        if not float(dt) > 0:
            raise ValueError(f"dt must be positive, got {dt!r}")
        return max(1, math.ceil(abs(float(t_end) - float(t_start)) / float(dt) - 1e-9))
    if steps is not None and (int(steps) != steps or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return None if steps is None else int(steps)
