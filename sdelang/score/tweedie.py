"""Tweedie's denoiser as a last sampling step (score_sde's "noise removal").

For the kernel x_t | x_0 ~ N(Φ x_0 + m, Σ), E[x_0 | x_t = x] = Φ⁻¹(x - m + Σ ∇log p_t(x)): with the
network's score at the samplers' end time t0 + t_min this removes the noise left at that time
(σ(t_min) ≈ 0.01 on the VP SDE). The coefficients (U, u, V) of x̂_0 = U x + u + V score are
:func:`~sdelang.score.predictions.data_prediction`'s, per component or n × n.
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from .affine_schedule import AffineSchedule
from .predictions import data_prediction


def tweedie_coefficients(schedule: AffineSchedule, t: float) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(t, U, u, V) of x̂_0 = Φ(t)⁻¹(x - m(t) + Σ(t) score) at one time t, on the host."""
    U, u, V = (a[0] for a in data_prediction(schedule.moments([t])))
    return float(t), U, u, V


def tweedie_denoise(ops, score: Callable, x, coefficients):
    """x̂_0 = U x + u + V score(x, t) for ``coefficients`` = (t, U, u, V) (one score call)."""
    t, U, u, V = (ops.asarray(np.asarray(c), dtype=ops.dtype_of(x), device=ops.device_of(x)) for c in coefficients)
    s = score(x, t)
    if U.ndim == 2:
        return ops.einsum("ij,bj->bi", U, x) + u + ops.einsum("ij,bj->bi", V, s)
    return U * x + u + V * s
