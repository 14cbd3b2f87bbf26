"""EDM's second-order Heun sampler (Karras et al. 2022, Algorithms 1-2) for any affine SDE, as a
tableau (:mod:`sdelang.score.tableau`).

Diagonal kernels: in x̃ = (x - m)/α and the noise level ρ = σ/α the probability flow is
dx̃/dρ = ε̂ (EDM's ODE with s(t) = α, σ(t) = ρ). A step from t_i to t_{i+1}:

    (churn)  γ = min(S_churn/N, √2 - 1) where S_tmin ≤ ρ_i ≤ S_tmax, t̂ with ρ(t̂) = (1 + γ) ρ_i,
             x̃̂ = x̃_i + √(ρ̂² - ρ_i²) S_noise z;
    Euler    x̃' = x̃̂ + (ρ_{i+1} - ρ̂) ε̂(x̂, t̂);
    Heun     x̃_{i+1} = x̃̂ + (ρ_{i+1} - ρ̂) (ε̂(x̂, t̂) + ε̂(x', t_{i+1}))/2.

S_churn = 0 is the deterministic sampler (NFE = 2 per step). Coupled kernels (CLD): the
exponential trapezoid of :mod:`sdelang.score.semilinear` (deterministic only).
"""
from __future__ import annotations

import math

import numpy as np

from .predictions import noise_prediction
from .semilinear import semilinear_trapezoid
from .tableau import Tableau, keys


def heun(schedule, ts, *, s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf,
         s_noise: float = 1.0) -> Tableau:
    s, t, ms, mt = schedule.step_moments(ts)
    steps, full = len(s), not schedule.diagonal
    key = keys(schedule, steps)
    if full:
        if s_churn:
            schedule.require_diagonal("heun with churn")
        return semilinear_trapezoid(schedule, ts)
    rho_s = np.exp(-schedule.reference_log_snr(s))
    gamma = np.where((rho_s >= s_tmin) & (rho_s <= s_tmax), min(s_churn / steps, math.sqrt(2) - 1), 0.0)
    t_hat = s.copy()
    churned = gamma > 0
    if churned.any():
        t_hat[churned] = schedule.time_of_log_snr(-np.log(rho_s[churned] * (1 + gamma[churned])))
    mh = schedule.moments(t_hat)
    rho = lambda m: m.sigma / m.alpha  # noqa: E731
    spread = np.sqrt(np.maximum(rho(mh) ** 2 - rho(ms) ** 2, 0.0)) * s_noise
    start = mh.offset + (mh.alpha / ms.alpha) * (key("x") - ms.offset) + (mh.alpha * spread) * key("z")
    carried = mt.offset + (mt.alpha / ms.alpha) * (key("x") - ms.offset) + (mt.alpha * spread) * key("z")
    d_rho = mt.alpha * (rho(mt) - rho(mh))
    euler = carried + d_rho * key("o0")
    final = carried + (0.5 * d_rho) * (key("o0") + key("o1"))
    return Tableau("heun", np.stack([t_hat, t], axis=1), [start, euler, final],
                   [noise_prediction(mh), noise_prediction(mt)])
