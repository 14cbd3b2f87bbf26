"""Few-step samplers of an affine SDE's score model: DDIM, DPM-Solver, DPM-Solver++, DEIS, EDM's
Heun and ancestral sampling, each a tableau of host-computed coefficients
(:mod:`~sdelang.score.exponential`, :mod:`~sdelang.score.heun`, :mod:`~sdelang.score.ancestral`)
run by the one loop of :mod:`~sdelang.score.tableau`.

``steps`` is the number of solver steps on the time grid (:mod:`~sdelang.score.time_grids`) from
t1 down to t0 + t_min; NFE = steps × stages (dpm-solver: ``order`` stages, heun: 2, the others 1),
plus 1 with ``denoise`` (a last Tweedie step x̂_0 = Φ⁻¹(x - m + Σ score) at t0 + t_min), counted by
the loop itself.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from .affine_schedule import AffineSchedule
from .ancestral import ancestral
from .counting import score_of
from .defaults import SAMPLER_SALT, T_MIN
from .exponential import ddim, deis, dpm_solver, dpm_solver_pp
from .heun import heun
from .initial_state import initial_state
from .result import SampleResult
from .tableau import tableau_loop
from .time_grids import EDM_RHO, time_grid
from .tweedie import tweedie_coefficients

FAST_STEPS = 20
ORDERS = {"ddim": (1,), "dpm-solver": (1, 2, 3), "dpm-solver++": (1, 2, 3), "deis": (1, 2, 3), "heun": (2,),
          "ancestral": (1, 2)}
DEFAULT_ORDER = {"ddim": 1, "dpm-solver": 3, "dpm-solver++": 2, "deis": 3, "heun": 2, "ancestral": 1}
#: The grid each method is run on by default on a diagonal kernel: the best at NFE 10-20 over VP,
#: sub-VP and VE with the exact score of eight Gaussians (energy distance; measured for issue 13).
DEFAULT_GRID = {"ddim": "uniform", "dpm-solver": "quadratic", "dpm-solver++": "quadratic", "deis": "log-snr",
                "heun": "uniform", "ancestral": "quadratic"}
#: On a coupled kernel: "quadratic" for every method (it beat the volume log-SNR grid for every
#: method on CLD with trained nets at NFE 10; benchmarks/results/sampler_quality.md has the result).
COUPLED_GRID = "quadratic"


def build_tableau(schedule: AffineSchedule, ts, method: str, order: int, churn: dict):
    if method == "ddim":
        return ddim(schedule, ts)
    if method == "dpm-solver":
        return dpm_solver(schedule, ts, order)
    if method == "dpm-solver++":
        return dpm_solver_pp(schedule, ts, order)
    if method == "deis":
        return deis(schedule, ts, order)
    if method == "heun":
        return heun(schedule, ts, **churn)
    return ancestral(schedule, ts, order)


def resolve_order(method: str, order: Optional[int]) -> int:
    order = DEFAULT_ORDER[method] if order is None else order
    if order not in ORDERS[method]:
        raise ValueError(f"method {method!r} has order {' or '.join(map(str, ORDERS[method]))}, got {order!r}")
    return int(order)


def sample_fast(module, n: int, method: str, steps: int = FAST_STEPS, *, order: Optional[int] = None,
                grid: Optional[str] = None, rho: float = EDM_RHO, t_min: float = T_MIN, seed=0, x_init=None,
                denoise: bool = False, score: Optional[Callable] = None, dtype=None, device=None,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf,
                s_noise: float = 1.0) -> SampleResult:
    """``steps`` steps of ``method`` (module docstring) from x_init or the prior at t1."""
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    order = resolve_order(method, order)
    ops = module.ops
    score = score_of(module, score)
    dtype = ops.default_dtype if dtype is None else dtype
    schedule = AffineSchedule(module)
    t_end = schedule.t0 + float(t_min)
    grid = grid or (DEFAULT_GRID[method] if schedule.diagonal else COUPLED_GRID)
    ts = time_grid(schedule, int(steps), t_end, grid, rho)
    tableau = build_tableau(schedule, ts, method, order,
                            dict(s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise))
    if denoise:
        tableau.final = tweedie_coefficients(schedule, t_end)
    y = initial_state(module, n, x_init, seed, dtype, device)
    layouts, arrays = [], []
    for part in tableau.parts():
        layout, coefficients = part.layout_and_arrays(schedule.n, not schedule.diagonal, tableau.history)
        layouts.append(layout)
        arrays.append({k: ops.asarray(v, dtype=ops.dtype_of(y), device=ops.device_of(y))
                       for k, v in coefficients.items()})
    stream = ops.stream(seed, salt=SAMPLER_SALT, device=ops.device_of(y))
    with ops.no_grad(), ops.threads(math.prod(y.shape)):
        samples, nfe = ops.jit(tableau_loop)(tuple(layouts), tuple(arrays), ops, score, y, stream)
    return SampleResult(samples, ops.to_int(nfe), method)
