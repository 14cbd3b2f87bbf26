"""Divergence of an ODE model's velocity, for the instantaneous change of variables

    d log p(x(t))/dt = -∇·v,   ∇·v = Σ_i ∂_i v_i.

Learned networks stay as explicit trace terms ``Derivative(NetOutput(...), x_i)`` (a backend
evaluates them by automatic differentiation or Hutchinson's estimator). For an elementwise model
(``state x[d]``) the trace is Σ_{i=1}^{d} ∂v(x_i)/∂x_i: ``d * ∂v/∂x`` when the per-component
derivative does not depend on the state, otherwise ``Sum(∂v/∂x at x[i], (i, 1, d))`` (a net's
per-component term reads ``Derivative(NetOutput(score, 0, t, x[i]), x[i])``: the Jacobian's i-th
diagonal entry).

An SDE model has no single velocity field: ``divergence()`` raises DerivationError there (take the
divergence of ``model.probability_flow()`` instead).
"""
from __future__ import annotations

import sympy

from ..errors import DerivationError
from .operators import elementwise_sum


def divergence(model) -> sympy.Expr:
    """∇·v of an ODE model dx/dt = v(x, t)."""
    if not model.is_ode:
        raise DerivationError(
            f"divergence() needs an ODE model, but {model.name} has noise; "
            "use model.probability_flow().divergence() for the ODE with the same marginals"
        )
    xs, v = model.states, model.drift
    if model.elementwise:
        return elementwise_sum(model, sympy.diff(v[0], xs[0]))
    return sum((sympy.diff(v[i], x) for i, x in enumerate(xs)), sympy.S.Zero)
