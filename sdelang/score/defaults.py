"""Defaults shared by both backends (one place, so torch and JAX cannot drift apart)."""
from __future__ import annotations

T_MIN = 1e-3            # samplers end, losses and log_prob start at t0 + T_MIN
EM_STEPS = 500
SNR = 0.16              # Langevin corrector's signal-to-noise ratio (score_sde's default for VP)
ODE_RTOL = 1e-5
ODE_ATOL = 1e-5
SAMPLER_SALT = 0x5EED   # the samplers' noise stream is the seed's stream folded with this salt
EXACT_TRACE_MAX_DIM = 16  # (1/n) tr ∂f/∂x exactly up to this n, by Hutchinson above it


def reverse_time_step(module, steps: int, t_min: float) -> float:
    """h = (t1 - t0 - t_min) / steps: ``steps`` equal steps from t1 down to t0 + t_min."""
    span = float(module.t1) - (float(module.t0) + float(t_min))
    if not span > 0:
        raise ValueError(f"need t0 + t_min < t1, got t0={float(module.t0)}, t_min={t_min}, t1={float(module.t1)}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return span / int(steps)
