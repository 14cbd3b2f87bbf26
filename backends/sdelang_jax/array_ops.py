"""JAX's implementation of :class:`sdelang.score.protocol.ArrayOps` (``module.ops`` of every
generated JAX module): ``lax.scan`` loops, ``jvp``/``linearize`` divergences, diffrax solves (the
ODE solver chosen by name, ``ODE_SOLVERS``), programs compiled once per static configuration with
``eqx.filter_jit``."""
from __future__ import annotations

import contextlib
from typing import Callable, ClassVar, Dict, Optional, Tuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from .random_stream import seeded_stream

MAX_ODE_STEPS = 65536


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge–Kutta method (fixed steps: its error estimate, against the
    midpoint stage, is only there to satisfy diffrax's tableau)."""

    tableau: ClassVar[diffrax.ButcherTableau] = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.array([1 / 6, 1 / 3 - 1, 1 / 3, 1 / 6]),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls: ClassVar[Callable] = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


#: solver name -> (diffrax solver class, adaptive, (evaluations per step, initial evaluations)):
#: NFE = per_step · num_steps + initial (rejected steps included in num_steps), measured against
#: the evaluations made (tests/test_score_facade.py): the FSAL tableaus (Tsit5, Dopri5, Dopri8)
#: reuse a step's last stage as the next one's first. (diffrax's Bosh3 is left out: its count
#: drifts from 3 · num_steps + 1 by a few evaluations.)
ODE_SOLVERS: Dict[str, Tuple[type, bool, Tuple[int, int]]] = {
    "tsit5": (diffrax.Tsit5, True, (6, 1)),
    "dopri5": (diffrax.Dopri5, True, (6, 1)),
    "dopri8": (diffrax.Dopri8, True, (13, 1)),
    "euler": (diffrax.Euler, False, (1, 0)),
    "heun": (diffrax.Heun, False, (2, 0)),
    "midpoint": (diffrax.Midpoint, False, (2, 0)),
    "ralston": (diffrax.Ralston, False, (2, 0)),
    "rk4": (RK4, False, (4, 0)),
}
TSIT5_EVALUATIONS = ODE_SOLVERS["tsit5"][2]   # 7 stages a step, the first shared with the step before


@eqx.filter_jit
def _diffrax_solve(field, args, y0, t_start, t_end, rtol, atol, solver, dt0, max_steps: int, evaluations: tuple,
                   shardings=None):
    """Adaptive (PID on rtol / atol) when dt0 is None, else constant steps of dt0. ``shardings``
    (the batch-sharded input's, :func:`sdelang_jax.sharding.batch_shardings`): the state, each
    vector-field evaluation and the output are constrained to them (diffrax's solve would return
    them replicated)."""
    if dt0 is None:
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
    else:
        controller = diffrax.ConstantStepSize()
    term = field
    if shardings is not None:
        from .sharding import constrain

        y0 = constrain(y0, shardings)

        def term(t, y, args):
            return constrain(field(t, constrain(y, shardings), args), shardings)
    # Sharded: no in-program error check (diffrax's error_if routes the state through one device's
    # host callback); solve_ode checks the returned result code instead.
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(term), solver, t_start, t_end, dt0, y0, args=args,
        stepsize_controller=controller, max_steps=max_steps, throw=shardings is None,
    )
    per_step, initial = evaluations
    out = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
    nfe = per_step * sol.stats["num_steps"] + initial
    if shardings is not None:
        return constrain(out, shardings), nfe, sol.result == diffrax.RESULTS.successful
    return out, nfe


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
    log = staticmethod(jnp.log)
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
    def concatenate(arrays):
        """The arrays joined along the first (batch) axis."""
        return jnp.concatenate(list(arrays), axis=0)

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

    @staticmethod
    def step_table(x):
        return x

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
        """``lax.fori_loop`` over a static count (a ``scan`` whose counter is in the carry): a
        ``scan`` over ``arange(steps)``, which slices the counter from an array each step, ran the
        1 000 x 2 predictor-corrector slower (README, Benchmarks)."""
        carry = jax.tree_util.tree_map(jnp.asarray, carry)
        return jax.lax.fori_loop(0, int(steps), body, carry)

    @staticmethod
    def no_grad():
        return contextlib.nullcontext()

    @staticmethod
    def threads(numel: int):
        """XLA keeps its own CPU thread pool: nothing to set."""
        return contextlib.nullcontext()

    @staticmethod
    def solve_ode(field: Callable, args, y0, t_start: float, t_end: float, *, rtol: float, atol: float,
                  method: Optional[str] = None, steps: Optional[int] = None, options: Optional[dict] = None):
        """(y(t_end), NFE) by ``diffrax.diffeqsolve`` with the solver named ``method`` (``ODE_SOLVERS``;
        Tsit5 by default): an adaptive one with a ``PIDController(rtol, atol)`` (``steps`` ignored),
        a fixed-step one with ``steps`` constant steps. NFE from the solver's step count
        (``ODE_SOLVERS``' evaluations). ``options``: ``max_steps`` (default ``MAX_ODE_STEPS``)."""
        name = "tsit5" if method is None else method
        if name not in ODE_SOLVERS:
            raise ValueError(f"the jax backend's ODE solvers are diffrax's {', '.join(ODE_SOLVERS)}; got {method!r}")
        solver_class, adaptive, evaluations = ODE_SOLVERS[name]
        options = dict(options or {})
        max_steps = int(options.pop("max_steps", MAX_ODE_STEPS))
        if options:
            raise TypeError(f"unknown ODE options for the jax backend: {sorted(options)}")
        dtype = jax.tree_util.tree_leaves(y0)[0].dtype
        as_array = lambda v: np.asarray(v, dtype)  # noqa: E731  (host scalars: no dispatch per call)
        dt0 = None
        if not adaptive:
            if steps is None:
                raise ValueError(f"the fixed-step ODE solver {name!r} needs its steps: pass steps= or dt=")
            dt0 = as_array((float(t_end) - float(t_start)) / int(steps))
            max_steps = max(max_steps, int(steps) + 1)
        from .sharding import batch_shardings

        shardings = batch_shardings(y0)
        solved = _diffrax_solve(field, args, y0, as_array(t_start), as_array(t_end), as_array(rtol), as_array(atol),
                                solver_class(), dt0, max_steps, evaluations, shardings)
        if shardings is None:
            return solved
        out, nfe, ok = solved
        if not bool(ok):
            raise RuntimeError(f"the {name} ODE solve did not reach t={float(t_end)} (max_steps={max_steps} "
                               "reached, or a non-finite state): raise options={'max_steps': ...} or loosen rtol/atol")
        return out, nfe

    # ------------------------------------------------------------------ modules and networks
    @staticmethod
    def prior_sample(module, n: int, seed, dtype, device):
        return module.prior_sample(n, seed=seed, dtype=dtype)

    @staticmethod
    def default_score_net(dim: int, *, hidden: int, depth: int, seed: int, dtype, image_shape=None,
                          num_classes=None):
        """``UNet(image_shape)`` for a (C, H, W) ``image_shape``, else ``ScoreMLP(dim, hidden, depth)``."""
        from .nets import ScoreMLP
        from .unet import UNet

        key = jax.random.PRNGKey(int(seed))
        if image_shape is not None:
            return UNet(image_shape, key=key, dtype=dtype, num_classes=num_classes)
        return ScoreMLP(dim, hidden=hidden, depth=depth, key=key, dtype=dtype, num_classes=num_classes)

    @staticmethod
    def preconditioned(net, module, parametrization: str = "eps"):
        from .preconditioning import KernelPreconditionedScore

        return KernelPreconditionedScore(net, module, parametrization=parametrization)

    def guided(self, net, labels, num_classes: int, guidance: float = 0.0):
        from .guidance import GuidedScore

        return GuidedScore(net, labels, num_classes, guidance, self)

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
    def net_device(net):
        """None: JAX arrays follow their inputs' placement."""
        return None

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

    # ------------------------------------------------------------------ data parallelism
    # JAX runs data-parallel inside one process over a device mesh (``ScoreModel(mesh=...)``,
    # :mod:`sdelang_jax.sharding`): one "rank", nothing to gather.
    @staticmethod
    def world():
        return 0, 1

    @staticmethod
    def distributed_device():
        return None

    @staticmethod
    def is_main_process() -> bool:
        return jax.process_index() == 0

    @staticmethod
    def barrier() -> None:
        return None

    @staticmethod
    def gather_rows(local, counts):
        return local

    @staticmethod
    def max_over_ranks(value: int) -> int:
        return int(value)

    @staticmethod
    def batch_mesh(mesh=None, devices=None):
        """A device mesh with a "batch" axis from ``mesh=`` or ``devices=`` (None for neither)."""
        from .sharding import batch_mesh

        return batch_mesh(mesh, devices)

    @staticmethod
    def shard_rows(x, mesh):
        """x with its rows split over the mesh's batch axis."""
        from .sharding import shard_rows

        return shard_rows(x, mesh)

    @staticmethod
    def shard_training(state, mesh) -> None:
        """The trainer state trains data-parallel over the mesh (parameters replicated)."""
        if state.mesh is not mesh:
            state.use_mesh(mesh)


JAX_OPS = JaxOps()
