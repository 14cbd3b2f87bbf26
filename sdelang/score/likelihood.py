"""Log-likelihood through the probability-flow ODE dx/dt = v(t, x) (instantaneous change of
variables), written once for both backends:

    d/dt log p_t(x(t)) = -∇·v(t, x(t))   ⇒   log p_{t_start}(x) = log p_{t1}(x(t1)) + ∫_{t_start}^{t1} ∇·v dt,

with t_start = t0 + t_min. The pair (x, Δ) is integrated by the backend's ODE solver (``solver``:
adaptive by default; see :func:`sdelang.score.samplers.sample_ode`); ∇·v is exact (``exact=True``)
or Hutchinson's εᵀ (∂v/∂x) ε with one Rademacher ε (from ``seed``) fixed for the whole solve;
``exact=None`` (the default) is exact up to ``defaults.EXACT_TRACE_MAX_DIM`` (16) dimensions and
Hutchinson above. The networks must act on each batch row separately (no cross-batch layers). On
torch, gradients flow to x and the networks' parameters when grad mode is on at the call.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from .defaults import ODE_ATOL, ODE_RTOL, T_MIN, exact_trace, ode_solver, ode_steps


def change_of_variables_field(t, state, args):
    """d(x, Δ)/dt = (v(t, x), ∇·v(t, x))."""
    flow, eps = args
    x, _ = state
    return flow.ops.divergence(lambda z: flow.drift_fn(t, z), x, eps)


def velocity_module(module):
    """The ODE whose flow is integrated: the module itself for an ODE, else its probability flow."""
    return module.probability_flow() if module.is_sde else module


def log_prob(module, x, *, exact: Optional[bool] = None, rtol: float = ODE_RTOL, atol: float = ODE_ATOL,
             t_min: float = T_MIN, prior: Optional[Callable] = None, seed=0, solver: Optional[str] = None,
             steps: Optional[int] = None, dt: Optional[float] = None, method: Optional[str] = None,
             options: Optional[dict] = None):
    """log p_{t0 + t_min}(x), shape (batch,); ``prior`` (a log-density at t1) defaults to the
    flow's or the module's declared prior. ``solver`` (``method`` is its older alias), ``steps`` /
    ``dt`` (fixed-step solvers), ``rtol`` / ``atol`` (adaptive ones) and ``options`` as in
    :func:`sdelang.score.samplers.sample_ode`."""
    ops = module.ops
    flow = velocity_module(module)
    x = ops.asarray(x)
    t_start, t_end = float(module.t0) + float(t_min), float(module.t1)
    if not t_start < t_end:
        raise ValueError(f"need t0 + t_min < t1, got t_min={t_min}")
    solver = ode_solver(solver, method)
    steps = ode_steps(t_start, t_end, steps, dt)
    exact = exact_trace(exact, x.shape[-1])
    eps = None if exact else ops.stream(seed, device=ops.device_of(x)).rademacher(x.shape, x.dtype)
    start = (x, ops.zeros_like(ops.sum(x, axis=-1)))
    with ops.threads(math.prod(x.shape)):
        (x_end, delta), _ = ops.solve_ode(change_of_variables_field, (flow, eps), start, t_start, t_end,
                                          rtol=rtol, atol=atol, method=solver, steps=steps, options=options)
    if prior is None:
        prior = flow.prior_log_prob if flow.has_prior else module.prior_log_prob
    return prior(x_end) + delta
