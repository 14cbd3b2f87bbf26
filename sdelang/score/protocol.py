"""What the score layer asks of a backend: a compiled module (:class:`CompiledSDE`), the
framework's array operations (:class:`ArrayOps`) and its random streams (:class:`RandomStream`).

The samplers, losses, trainer loop and likelihood in :mod:`sdelang.score` are written once against
these protocols, the way diffrax separates terms from solvers; ``sdelang_torch`` and ``sdelang_jax``
each implement them once (``module.ops`` is the backend's :class:`ArrayOps`). Arrays are torch
tensors or JAX arrays of shape (batch, n); times are Python floats, 0-d or (batch,) arrays.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Tuple, runtime_checkable

Array = Any


@runtime_checkable
class CompiledSDE(Protocol):
    """A compiled model, torch or JAX, with the same names in both backends."""

    ops: "ArrayOps"
    is_sde: bool
    has_prior: bool
    elementwise: bool
    diagonal_noise: bool            # G diagonal: ΔW shaped like the state
    kernel_kind: Optional[str]      # "diagonal" | "full" | None (no Gaussian perturbation kernel)

    @property
    def t0(self) -> float: ...
    @property
    def t1(self) -> float: ...
    @property
    def dimension(self) -> Optional[int]: ...
    @property
    def score_net(self) -> Optional[Callable]: ...

    def drift_fn(self, t, y: Array) -> Array:
        """f(t, y), shape (batch, n)."""

    def diffusion_matrix(self, t, y: Array) -> Array:
        """G(t, y): (batch, n, m) dense, or (batch, n) entries for an elementwise model."""

    def euler_maruyama_step(self, t, y: Array, h, dw: Array) -> Array:
        """y + f(t, y) h + G(t, y) ΔW, the generated fused step."""

    def noise_shape(self, state_shape) -> Tuple[int, ...]:
        """Shape of one ΔW for a state of shape ``state_shape``."""

    def perturbation_kernel(self, x0: Array, t) -> Tuple[Array, Array]:
        """(mean, std) of p(x_t | x0) for a diagonal kernel, (mean, cov) for a full one."""

    def prior_sample(self, batch: int, seed=0, dtype=None) -> Array: ...
    def simulate(self, x0: Array, ts, dt: float, seed=0) -> Array: ...
    def prior_log_prob(self, x: Array) -> Array: ...
    def reverse(self, score=None) -> "CompiledSDE": ...
    def probability_flow(self, score=None) -> "CompiledSDE": ...

    def with_score(self, score: Optional[Callable]) -> "CompiledSDE":
        """A new module of the same class, parameters and nets, with ``score`` attached."""


class RandomStream(Protocol):
    """Draws from one seeded stream (a torch ``Generator``; a JAX key split at each draw)."""

    def normal(self, shape, dtype, scale=1.0) -> Array:
        """scale · N(0, I) draws of ``shape``."""
    def uniform(self, shape, low, high, dtype) -> Array: ...
    def rademacher(self, shape, dtype) -> Array: ...
    def randint(self, low: int, high: int, shape) -> Array: ...

    def at(self, i) -> "RandomStream":
        """The stream of loop iteration ``i`` (JAX: the key folded with i; torch: the same stream)."""


@runtime_checkable
class ArrayOps(Protocol):
    """The array operations the score layer needs, per framework."""

    name: str                       # "torch" | "jax"
    default_dtype: Any              # float32

    # arrays
    def asarray(self, x, dtype=None, device=None, like=None) -> Array: ...
    def to_numpy(self, x: Array): ...
    def dtype_of(self, x: Array) -> Any: ...
    def device_of(self, x: Array) -> Any: ...
    def scalar(self, value: float, like: Array):
        """A time or step size as the framework's loop wants it (torch: a float; JAX: a host array)."""
    def is_scalar(self, t) -> bool: ...
    def wide(self, x) -> Array:
        """x in float64 where the framework allows it (JAX: only with x64 enabled)."""
    def cast(self, x: Array, dtype) -> Array: ...
    def sum(self, x: Array, axis=None) -> Array: ...
    def mean(self, x: Array) -> Array: ...
    def sqrt(self, x): ...
    def rsqrt(self, x: Array) -> Array: ...
    def exp(self, x): ...
    def log(self, x): ...
    def norm_rows(self, x: Array) -> Array:
        """‖x_b‖₂ per batch row b."""
    def where(self, condition, a, b): ...
    def concatenate(self, arrays) -> Array:
        """The arrays joined along the first (batch) axis."""
    def full(self, shape, value, like: Array) -> Array: ...
    def zeros(self, shape, like: Array) -> Array: ...
    def arange(self, count: int, like: Array) -> Array: ...
    def ones_like(self, x: Array) -> Array: ...
    def zeros_like(self, x: Array) -> Array: ...
    def einsum(self, subscripts: str, *operands) -> Array: ...
    def diagonal(self, matrix: Array) -> Array: ...
    def transpose(self, matrix: Array) -> Array:
        """The last two axes swapped."""
    def cholesky(self, matrix: Array) -> Array: ...
    def solve_upper(self, upper: Array, b: Array) -> Array:
        """x with U x = b for upper-triangular U (batched), b of shape (batch, n)."""
    def take_rows(self, path: Array, index: Array) -> Array:
        """path[index[b], b] for a path of shape (steps, batch, ...)."""
    def stop_gradient(self, x: Array) -> Array: ...
    def to_int(self, x) -> int: ...
    def to_floats(self, x: Array) -> list: ...
    def step_table(self, x: Array):
        """A per-step table (shape (steps, ...)) as a loop indexes it cheapest: torch a list of
        Python values (one copy before the loop, none per step), JAX the array (in-graph)."""

    # randomness
    def stream(self, seed, salt: int = 0, device=None) -> RandomStream: ...

    # calculus
    def divergence(self, f: Callable, x: Array, eps: Optional[Array] = None, has_aux: bool = False):
        """(f(x), ∇·f(x)) per row (exact when eps is None, else Hutchinson εᵀ (∂f/∂x) ε), plus
        f's auxiliary output when ``has_aux``."""

    # control flow and solvers
    def jit(self, fn: Callable) -> Callable:
        """``fn`` compiled once per static configuration (JAX: ``eqx.filter_jit``; torch: itself)."""
    def fori(self, body: Callable, carry, steps: int):
        """carry ← body(i, carry) for i = 0..steps-1 (JAX: ``lax.fori_loop``; torch: a Python loop)."""
    def solve_ode(self, field: Callable, args, y0, t_start: float, t_end: float, *, rtol: float,
                  atol: float, method: Optional[str] = None, steps: Optional[int] = None,
                  options: Optional[dict] = None) -> Tuple[Any, int]:
        """(y(t_end), NFE) for dy/dt = field(t, y, args) with the solver ``method`` (the backend's
        adaptive default when None; a fixed-step one takes ``steps`` equal steps)."""
    def no_grad(self):
        """A context in which no gradient graph is recorded."""
    def threads(self, numel: int):
        """A context with the framework's CPU threads set for work of ``numel`` elements per step."""

    # networks, training and checkpoints
    def prior_sample(self, module, n: int, seed, dtype, device) -> Array: ...
    def default_score_net(self, dim: int, *, hidden: int, depth: int, seed: int, dtype, image_shape=None,
                          num_classes=None): ...
    def guided(self, net, labels, num_classes: int, guidance: float = 0.0): ...
    def preconditioned(self, net, module, parametrization: str = "eps"): ...
    def is_preconditioned(self, net) -> bool: ...
    def with_data_std(self, net, value: float): ...
    def cast_net(self, net, dtype, device=None): ...
    def net_device(self, net):
        """Where the net's parameters live (None for a plain callable or a framework without devices)."""
    def eval_net(self, net): ...
    def training_state(self, module, net, config: dict):
        """The backend's trainer state: ``net``, ``stream``, ``as_data(data)``, ``run(data, k)`` (k
        optimiser steps, their losses as one array), ``ema_net()``, ``state_dict()``,
        ``load_state_dict(state)``."""
    def save(self, state: dict, path) -> None: ...
    def load(self, path) -> dict: ...

    # data parallelism across processes (torch.distributed under torchrun; JAX: one process, a mesh)
    def world(self) -> Tuple[int, int]:
        """(rank, world size); (0, 1) in a single process."""
    def distributed_device(self):
        """The device a rank's network defaults to (torch under torchrun on GPUs: cuda:LOCAL_RANK), else None."""
    def is_main_process(self) -> bool:
        """True on the rank that writes checkpoints (rank 0)."""
    def barrier(self) -> None:
        """Wait for every rank (nothing in one process)."""
    def gather_rows(self, local: Array, counts) -> Array:
        """Every rank's rows (rank r holds counts[r]) concatenated in rank order, on every rank."""
    def max_over_ranks(self, value: int) -> int: ...
    # data parallelism inside one process over a device mesh (JAX; torch raises TypeError for a mesh)
    def batch_mesh(self, mesh=None, devices=None):
        """The mesh with a "batch" axis that ``mesh=`` / ``devices=`` describe, or None for neither."""
    def shard_rows(self, x: Array, mesh) -> Array:
        """x with its rows split over the mesh's batch axis."""
    def shard_training(self, state, mesh) -> None:
        """The trainer state trains with each minibatch split over the mesh (parameters replicated)."""
