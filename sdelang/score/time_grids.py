"""Decreasing time grids t_0 = t1 > t_1 > ... > t_N = t0 + t_min for the few-step samplers.

- "uniform":   t_i = t1 - (i/N)(t1 - t_end);
- "quadratic": t_i = t_end + (t1 - t_end)(1 - i/N)², dense near the data (DDIM's quadratic);
- "log-snr":   uniform in the reference log-SNR λ = log(α/σ) (DPM-Solver's "logSNR");
- "edm":       Karras et al. (2022), eq. 5: ρ_i = (ρ_max^{1/r} + (i/N)(ρ_min^{1/r} - ρ_max^{1/r}))^r
               in the noise level ρ = σ/α = e^{-λ}, r = 7 by default.

The last two need a diagonal kernel (:class:`~sdelang.score.affine_schedule.AffineSchedule`);
their λ → t map is the schedule's inversion, so they hold for any schedule a spec writes.
"""
from __future__ import annotations

import numpy as np

GRIDS = ("uniform", "quadratic", "log-snr", "edm")
EDM_RHO = 7.0


def time_grid(schedule, steps: int, t_end: float, grid: str = "uniform", rho: float = EDM_RHO) -> np.ndarray:
    """The N + 1 = ``steps`` + 1 times (float64, decreasing) of ``grid`` from t1 down to ``t_end``."""
    t1 = schedule.t1
    if not t_end < t1:
        raise ValueError(f"need t0 + t_min < t1, got t_end={t_end}, t1={t1}")
    u = np.arange(int(steps) + 1) / int(steps)
    if grid == "uniform":
        ts = t1 - u * (t1 - t_end)
    elif grid == "quadratic":
        ts = t_end + (t1 - t_end) * (1 - u) ** 2
    elif grid in ("log-snr", "edm"):
        lam_start, lam_end = schedule.reference_log_snr(np.array([t1, t_end]))
        if grid == "log-snr":
            lams = lam_start + u * (lam_end - lam_start)
        else:
            r_max, r_min = np.exp(-lam_start / rho), np.exp(-lam_end / rho)
            lams = -rho * np.log(r_max + u * (r_min - r_max))
        ts = schedule.time_of_log_snr(lams)
    else:
        raise ValueError(f"grid must be one of {list(GRIDS)}, got {grid!r}")
    ts[0], ts[-1] = t1, t_end
    if not np.all(np.diff(ts) < 0):
        raise ValueError(f"the {grid} grid of {steps} steps is not strictly decreasing: take fewer steps or a "
                         "larger t_min")
    return ts
