"""Log-likelihood through the probability-flow ODE dx/dt = v(x, t) (instantaneous change of variables):

    d/dt log p_t(x(t)) = -∇·v(x(t), t)   ⇒   log p_{t_start}(x) = log p_{t1}(x(t1)) + ∫_{t_start}^{t1} ∇·v dt,

integrated jointly with x by diffrax ``Tsit5`` under a ``PIDController(rtol, atol)``; p_{t1} is the
spec's prior. ∇·v exactly (n Jacobian-vector products of one linearization: exact=True) or by
Hutchinson's estimator εᵀ (∂v/∂x) ε with one fixed Rademacher ε per solve (exact=False).
The networks must act on each batch element separately (no cross-batch layers).
"""
from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .runtime import as_key


def exact_divergence(velocity, x):
    """(v(x), ∇·v(x)): trace of the Jacobian from n JVPs with the basis vectors (batched over x)."""
    v, jvp = jax.linearize(velocity, x)
    n = x.shape[-1]
    basis = jnp.eye(n, dtype=x.dtype).reshape((n,) + (1,) * (x.ndim - 1) + (n,))
    columns = jax.vmap(jvp)(jnp.broadcast_to(basis, (n,) + x.shape))  # [i, ..., j] = ∂v_j/∂x_i
    return v, jnp.trace(jnp.moveaxis(columns, 0, -1), axis1=-2, axis2=-1)


def hutchinson_divergence(velocity, x, eps):
    """(v(x), εᵀ (∂v/∂x) ε), an unbiased estimate of ∇·v for Rademacher ε."""
    v, jv = jax.jvp(velocity, (x,), (eps,))
    return v, jnp.sum(eps * jv, axis=-1)


@eqx.filter_jit
def _integrate(flow, x, eps, t_start, t_end, rtol, atol, exact: bool):
    def field(t, state, args):
        flow_, eps_ = args
        xt, _ = state
        velocity = lambda z: flow_.drift(t, z, None)
        if exact:
            v, div = exact_divergence(velocity, xt)
        else:
            v, div = hutchinson_divergence(velocity, xt, eps_)
        return v, div

    y0 = (x, jnp.zeros(x.shape[:-1], x.dtype))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t_start, t_end, None, y0, args=(flow, eps),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=65536,
    )
    x_end, integral = sol.ys
    return x_end[0], integral[0]


def log_prob(module, x, *, exact=True, rtol=1e-5, atol=1e-5, t_min=1e-5, key=None, seed=0):
    """log p_{t0 + t_min}(x) for x of shape (*batch, n) (see the module docstring)."""
    x = jnp.asarray(x)
    flow = module.probability_flow()
    t_start = float(module.t0) + float(t_min)
    t_end = float(module.t1)
    key = as_key(seed) if key is None else key
    eps = jax.random.rademacher(key, x.shape, dtype=x.dtype)
    x_end, integral = _integrate(flow, x, eps, t_start, t_end, rtol, atol, bool(exact))
    return module.prior_log_prob(x_end) + integral
