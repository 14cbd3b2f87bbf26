"""JAX's implementation of :class:`sdelang.score.protocol.ArrayOps` (``module.ops`` of every
generated JAX module): ``lax.scan`` loops, ``jvp``/``linearize`` divergences, diffrax solves,
programs compiled once per static configuration with ``eqx.filter_jit``."""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Optional

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from .random_stream import seeded_stream

MAX_ODE_STEPS = 65536
# Tsit5 makes 7 stages per step, the first shared with the step before (FSAL), plus the initial
# evaluation: NFE = 6 · num_steps + 1 (rejected steps included in num_steps).
TSIT5_EVALUATIONS = (6, 1)


@eqx.filter_jit
def _diffrax_solve(field, args, y0, t_start, t_end, rtol, atol, max_steps: int):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t_start, t_end, None, y0, args=args,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=max_steps,
    )
    per_step, initial = TSIT5_EVALUATIONS
    return jax.tree_util.tree_map(lambda a: a[-1], sol.ys), per_step * sol.stats["num_steps"] + initial


class JaxOps:
    """Array operations on JAX arrays (see the protocol for what each one means)."""

    name = "jax"
    default_dtype = jnp.float32
    _jitted: Dict[Callable, Callable] = {}

    # ------------------------------------------------------------------ arrays
    @staticmethod
    def asarray(x, dtype=None, device=None, like=None):
        if like is not None and dtype is None:
            dtype = like.dtype
        return jnp.asarray(x, dtype=dtype)

    @staticmethod
    def dtype_of(x):
        return x.dtype

    @staticmethod
    def device_of(x):
        return None

    @staticmethod
    def scalar(value: float, like):
        """A host (numpy) scalar of like's dtype: a dynamic input of a jitted program, no dispatch."""
        return np.asarray(value, dtype=like.dtype)

    @staticmethod
    def is_scalar(t) -> bool:
        return jnp.ndim(t) == 0

    @staticmethod
    def wide(x):
        x = jnp.asarray(x)
        return x.astype(jnp.float64) if jax.config.jax_enable_x64 else x

    @staticmethod
    def cast(x, dtype):
        return jnp.asarray(x).astype(dtype)

    @staticmethod
    def sum(x, axis=None):
        return jnp.sum(x, axis=axis)

    @staticmethod
    def mean(x):
        return jnp.mean(x)

    sqrt = staticmethod(jnp.sqrt)
    rsqrt = staticmethod(jax.lax.rsqrt)
    exp = staticmethod(jnp.exp)
    ones_like = staticmethod(jnp.ones_like)
    zeros_like = staticmethod(jnp.zeros_like)
    einsum = staticmethod(jnp.einsum)
    where = staticmethod(jnp.where)
    stop_gradient = staticmethod(jax.lax.stop_gradient)

    @staticmethod
    def zeros(shape, like):
        return jnp.zeros(tuple(shape), like.dtype)

    @staticmethod
    def arange(count: int, like):
        return jnp.arange(int(count), dtype=like.dtype)

    @staticmethod
    def norm_rows(x):
        return jnp.linalg.norm(x.reshape(x.shape[0], -1), axis=-1)

    @staticmethod
    def full(shape, value, like):
        return jnp.broadcast_to(jnp.asarray(value, like.dtype), tuple(shape))

    @staticmethod
    def diagonal(matrix):
        return jnp.diagonal(matrix, axis1=-2, axis2=-1)

    @staticmethod
    def transpose(matrix):
        return jnp.swapaxes(matrix, -1, -2)

    @staticmethod
    def cholesky(matrix):
        return jnp.linalg.cholesky(matrix)

    @staticmethod
    def solve_upper(upper, b):
        return solve_triangular(upper, b[..., None], lower=False)[..., 0]

    @staticmethod
    def take_rows(path, index):
        """path[index[b], b] for a path of shape (steps, batch, ...)."""
        return path[index, jnp.arange(path.shape[1])]

    @staticmethod
    def to_int(x) -> int:
        return int(x)

    @staticmethod
    def to_floats(x):
        return [float(v) for v in np.asarray(x).tolist()]

    # ------------------------------------------------------------------ randomness
    stream = staticmethod(seeded_stream)

    # ------------------------------------------------------------------ calculus
    @staticmethod
    def divergence(f: Callable, x, eps=None, has_aux: bool = False):
        """(f(x), ∇·f(x)[, aux]) along the last axis: exact (n JVPs of one linearisation) when
        ``eps`` is None, else Hutchinson εᵀ (∂f/∂x) ε (one JVP)."""
        if eps is not None:
            out = jax.jvp(f, (x,), (eps,), has_aux=has_aux)
            div = jnp.sum(eps * out[1], axis=-1)
            return (out[0], div, out[2]) if has_aux else (out[0], div)
        out = jax.linearize(f, x, has_aux=has_aux)
        v, jvp = out[0], out[1]
        n = x.shape[-1]
        basis = jnp.eye(n, dtype=x.dtype).reshape((n,) + (1,) * (x.ndim - 1) + (n,))
        columns = jax.vmap(jvp)(jnp.broadcast_to(basis, (n,) + x.shape))  # [i, ..., j] = ∂f_j/∂x_i
        div = jnp.trace(jnp.moveaxis(columns, 0, -1), axis1=-2, axis2=-1)
        return (v, div, out[2]) if has_aux else (v, div)

    # ------------------------------------------------------------------ control flow and solvers
    @classmethod
    def jit(cls, fn: Callable) -> Callable:
        """``eqx.filter_jit(fn)``, made once per function (so its compilation cache persists)."""
        if fn not in cls._jitted:
            cls._jitted[fn] = eqx.filter_jit(fn)
        return cls._jitted[fn]

    @staticmethod
    def fori(body: Callable, carry, steps: int):
        carry = jax.tree_util.tree_map(jnp.asarray, carry)

        def scanned(c, i):
            return body(i, c), None

        out, _ = jax.lax.scan(scanned, carry, jnp.arange(int(steps)))
        return out

    @staticmethod
    def no_grad():
        return contextlib.nullcontext()

    @staticmethod
    def threads(numel: int):
        """XLA keeps its own CPU thread pool: nothing to set."""
        return contextlib.nullcontext()

    @staticmethod
    def solve_ode(field: Callable, args, y0, t_start: float, t_end: float, *, rtol: float, atol: float,
                  method: Optional[str] = None, options: Optional[dict] = None):
        """(y(t_end), NFE) by diffrax ``Tsit5`` with a ``PIDController(rtol, atol)``; NFE from the
        solver's step count (``TSIT5_EVALUATIONS``). ``method`` must be None or "tsit5"."""
        if method not in (None, "tsit5"):
            raise ValueError(f"the jax backend integrates with diffrax Tsit5; method={method!r} is not available")
        options = dict(options or {})
        max_steps = int(options.pop("max_steps", MAX_ODE_STEPS))
        if options:
            raise TypeError(f"unknown ODE options for the jax backend: {sorted(options)}")
        dtype = jax.tree_util.tree_leaves(y0)[0].dtype
        as_array = lambda v: jnp.asarray(v, dtype)
        return _diffrax_solve(field, args, y0, as_array(t_start), as_array(t_end), as_array(rtol), as_array(atol),
                              max_steps)

    # ------------------------------------------------------------------ modules and networks
    @staticmethod
    def prior_sample(module, n: int, seed, dtype, device):
        return module.prior_sample(n, seed=seed, dtype=dtype)

    @staticmethod
    def default_score_net(dim: int, *, hidden: int, depth: int, seed: int, dtype):
        from .nets import ScoreMLP

        return ScoreMLP(dim, hidden=hidden, depth=depth, key=jax.random.PRNGKey(int(seed)), dtype=dtype)

    @staticmethod
    def preconditioned(net, module):
        from .preconditioning import KernelPreconditionedScore

        return KernelPreconditionedScore(net, module)

    @staticmethod
    def is_preconditioned(net) -> bool:
        from .preconditioning import KernelPreconditionedScore

        return isinstance(net, KernelPreconditionedScore)

    @staticmethod
    def with_data_std(net, value: float):
        return eqx.tree_at(lambda m: m.data_std, net, jnp.asarray(float(value), net.data_std.dtype))

    @staticmethod
    def cast_net(net, dtype, device=None):
        """The net as it is: JAX nets are built in their dtype (``ScoreMLP(..., dtype=)``)."""
        return net

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)

    @staticmethod
    def eval_net(net):
        return net

    # ------------------------------------------------------------------ training and checkpoints
    @staticmethod
    def training_state(module, net, config: dict):
        from .training_state import JaxTrainingState

        return JaxTrainingState(module, net, config)

    @staticmethod
    def save(state: dict, path) -> None:
        import pickle

        with open(path, "wb") as handle:
            pickle.dump(state, handle)

    @staticmethod
    def load(path) -> dict:
        import pickle

        with open(path, "rb") as handle:
            return pickle.load(handle)


JAX_OPS = JaxOps()
