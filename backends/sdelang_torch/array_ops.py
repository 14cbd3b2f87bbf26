"""torch's implementation of :class:`sdelang.score.protocol.ArrayOps` (``module.ops`` of every
generated torch module): eager Python loops, autograd divergences, torchdiffeq solves."""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import numpy as np
import torch

from .random_stream import seeded_stream

ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "tsit5")
#: torchdiffeq's fixed-grid solvers: they take ``steps`` equal steps (or options step_size / grid_constructor).
FIXED_STEP_METHODS = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams", "fixed_adams")
ODE_METHODS = ADAPTIVE_METHODS + FIXED_STEP_METHODS + ("scipy_solver",)


def uniform_grid(func, y0, t, *, steps: int):
    """``steps`` equal steps from t[0] to t[-1] (torchdiffeq's grid_constructor; torchdiffeq hands it
    the times negated for a backward solve), ending exactly on t[-1]."""
    k = torch.arange(steps + 1, dtype=t.dtype, device=t.device)
    grid = t[0] + (t[-1] - t[0]) * k / steps
    grid[0], grid[-1] = t[0], t[-1]
    return grid


class TorchOps:
    """Array operations on torch tensors (see the protocol for what each one means)."""

    name = "torch"
    default_dtype = torch.float32

    # ------------------------------------------------------------------ arrays
    @staticmethod
    def asarray(x, dtype=None, device=None, like=None):
        if like is not None:
            dtype = like.dtype if dtype is None else dtype
            device = like.device if device is None else device
        tensor = torch.as_tensor(x)
        if dtype is None and not tensor.is_floating_point():
            dtype = torch.get_default_dtype()
        return tensor.to(device=device if device is not None else tensor.device, dtype=dtype or tensor.dtype)

    @staticmethod
    def dtype_of(x):
        return x.dtype

    @staticmethod
    def device_of(x):
        return x.device

    @staticmethod
    def scalar(value: float, like=None) -> float:
        """A time or step size as the generated torch code wants it: a Python float."""
        return float(value)

    @staticmethod
    def is_scalar(t) -> bool:
        return not torch.is_tensor(t) or t.dim() == 0

    @staticmethod
    def wide(x):
        return torch.as_tensor(x).to(torch.float64)

    @staticmethod
    def cast(x, dtype):
        return x.to(dtype) if torch.is_tensor(x) and x.dtype != dtype else x

    @staticmethod
    def sum(x, axis=None):
        return x.sum() if axis is None else x.sum(axis)

    @staticmethod
    def mean(x):
        return x.mean()

    @staticmethod
    def sqrt(x):
        return torch.sqrt(x) if torch.is_tensor(x) else math.sqrt(x)

    @staticmethod
    def rsqrt(x):
        return torch.rsqrt(x)

    @staticmethod
    def exp(x):
        return torch.exp(x) if torch.is_tensor(x) else math.exp(x)

    @staticmethod
    def log(x):
        return torch.log(x) if torch.is_tensor(x) else math.log(x)

    @staticmethod
    def norm_rows(x):
        return (x if x.dim() == 2 else x.reshape(x.shape[0], -1)).norm(dim=-1)

    @staticmethod
    def where(condition, a, b):
        if isinstance(condition, bool):
            return a if condition else b
        return torch.where(condition, a, b)

    @staticmethod
    def full(shape, value, like):
        if torch.is_tensor(value):
            return value.to(dtype=like.dtype, device=like.device).expand(tuple(shape))
        return torch.full(tuple(shape), float(value), dtype=like.dtype, device=like.device)

    @staticmethod
    def ones_like(x):
        return torch.ones_like(x)

    @staticmethod
    def zeros_like(x):
        return torch.zeros_like(x)

    @staticmethod
    def zeros(shape, like):
        return torch.zeros(tuple(shape), dtype=like.dtype, device=like.device)

    @staticmethod
    def arange(count: int, like):
        return torch.arange(int(count), dtype=like.dtype, device=like.device)

    @staticmethod
    def einsum(subscripts, *operands):
        return torch.einsum(subscripts, *operands)

    @staticmethod
    def diagonal(matrix):
        return torch.diagonal(matrix, dim1=-2, dim2=-1)

    @staticmethod
    def transpose(matrix):
        return matrix.transpose(-1, -2)

    @staticmethod
    def cholesky(matrix):
        return torch.linalg.cholesky(matrix)

    @staticmethod
    def solve_upper(upper, b):
        return torch.linalg.solve_triangular(upper, b.unsqueeze(-1), upper=True).squeeze(-1)

    @staticmethod
    def concatenate(arrays):
        """The arrays joined along the first (batch) axis."""
        return torch.cat(list(arrays), dim=0)

    @staticmethod
    def take_rows(path, index):
        """path[index[b], b] for a path of shape (steps, batch, ...)."""
        return path[index, torch.arange(path.shape[1], device=path.device)]

    @staticmethod
    def stop_gradient(x):
        return x.detach() if torch.is_tensor(x) else x

    @staticmethod
    def to_int(x) -> int:
        return int(x)

    @staticmethod
    def to_floats(x):
        return [float(v) for v in torch.as_tensor(x).detach().cpu().tolist()]

    @staticmethod
    def step_table(x):
        """Python values: indexing a tensor and computing on the 0-d result costs a dispatch
        per op per step."""
        return x.detach().cpu().tolist()

    # ------------------------------------------------------------------ randomness
    stream = staticmethod(seeded_stream)

    # ------------------------------------------------------------------ calculus
    @staticmethod
    def divergence(f: Callable, x, eps=None, has_aux: bool = False):
        """(f(x), ∇·f(x)[, aux]) per row: exact (one backward pass per component) when ``eps`` is
        None, else Hutchinson εᵀ (∂f/∂x) ε (one vector–Jacobian product). Differentiable (graph
        kept) when grad mode is on at the call."""
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            out = f(x)
            v, aux = out if has_aux else (out, None)
            if not v.requires_grad:  # f does not depend on x (e.g. VE's zero drift)
                div = torch.zeros_like(v[:, 0])
            elif eps is not None:
                (vjp,) = torch.autograd.grad(v, x, eps, create_graph=keep_graph, allow_unused=True,
                                             materialize_grads=True)
                div = (vjp * eps).reshape(x.shape[0], -1).sum(-1)
            else:
                flat = v.reshape(v.shape[0], -1)
                div = torch.zeros_like(flat[:, 0])
                for i in range(flat.shape[1]):
                    (row,) = torch.autograd.grad(flat[:, i].sum(), x, create_graph=keep_graph, retain_graph=True,
                                                 allow_unused=True, materialize_grads=True)
                    div = div + row.reshape(row.shape[0], -1)[:, i]
        if not keep_graph:
            v, div = v.detach(), div.detach()
            aux = aux.detach() if torch.is_tensor(aux) else aux
        return (v, div, aux) if has_aux else (v, div)

    # ------------------------------------------------------------------ control flow and solvers
    @staticmethod
    def jit(fn: Callable) -> Callable:
        return fn

    @staticmethod
    def fori(body: Callable, carry, steps: int):
        for i in range(int(steps)):
            carry = body(i, carry)
        return carry

    @staticmethod
    def no_grad():
        return torch.no_grad()

    @staticmethod
    def threads(numel: int):
        """torch's intra-op threads for work of ``numel`` elements per step (``SDELANG_TORCH_THREADS``,
        see :mod:`sdelang_torch.threads`), restored afterwards."""
        from .threads import intra_op_threads

        return intra_op_threads(int(numel))

    @staticmethod
    def solve_ode(field: Callable, args, y0, t_start: float, t_end: float, *, rtol: float, atol: float,
                  method: Optional[str] = None, steps: Optional[int] = None, options: Optional[dict] = None):
        """(y(t_end), NFE) by ``torchdiffeq.odeint`` with ``method`` (dopri5 by default). An adaptive
        solver steps by rtol / atol (``steps`` ignored) and lands exactly on t_end (``step_t``)
        instead of stepping past it and interpolating back; a fixed-step one takes ``steps`` equal
        steps (or torchdiffeq's own ``step_size`` / ``grid_constructor`` option). NFE: the calls made."""
        import torchdiffeq

        method = method or "dopri5"
        if method not in ODE_METHODS:
            raise ValueError(f"the torch backend's ODE solvers are torchdiffeq's {', '.join(ODE_METHODS)}; "
                             f"got {method!r}")
        calls = [0]

        def rhs(t, y):
            calls[0] += 1
            return field(t, y, args)

        first = y0[0] if isinstance(y0, tuple) else y0
        ts = torch.tensor([float(t_start), float(t_end)], dtype=first.dtype, device=first.device)
        options = dict(options or {})
        if method in ADAPTIVE_METHODS:
            options.setdefault("step_t", ts[-1:])
        elif method in FIXED_STEP_METHODS:
            own = "step_size" in options or "grid_constructor" in options
            if steps is not None and own:
                raise ValueError("pass steps= / dt= or the option step_size / grid_constructor, not both")
            if steps is None and not own:
                raise ValueError(f"the fixed-step ODE solver {method!r} needs its steps: pass steps= or dt=")
            if steps is not None:
                options["grid_constructor"] = functools.partial(uniform_grid, steps=int(steps))
        out = torchdiffeq.odeint(rhs, y0, ts, rtol=rtol, atol=atol, method=method, options=options)
        end = tuple(o[-1] for o in out) if isinstance(y0, tuple) else out[-1]
        return end, calls[0]

    # ------------------------------------------------------------------ modules and networks
    @staticmethod
    def prior_sample(module, n: int, seed, dtype, device):
        return module.prior_sample(n, seed=seed, dtype=dtype, device="cpu" if device is None else device)

    @staticmethod
    def default_score_net(dim: int, *, hidden: int, depth: int, seed: int, dtype, image_shape=None,
                          num_classes=None):
        """``UNet(image_shape)`` for a (C, H, W) ``image_shape``, else ``ScoreMLP(dim, hidden, depth)``."""
        from .nets import ScoreMLP
        from .unet import UNet

        if image_shape is not None:
            return UNet(image_shape, seed=int(seed), dtype=dtype, num_classes=num_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return ScoreMLP(dim, hidden=hidden, depth=depth, num_classes=num_classes).to(dtype)

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
        net.data_std.fill_(float(value))
        return net

    @staticmethod
    def cast_net(net, dtype, device=None):
        return net.to(dtype=dtype, device=device) if isinstance(net, torch.nn.Module) else net

    @staticmethod
    def to_numpy(x):
        return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)

    @staticmethod
    def net_device(net):
        """The device of the net's first parameter or buffer (None for a plain callable)."""
        if isinstance(net, torch.nn.Module):
            for tensor in (*net.parameters(), *net.buffers()):
                return tensor.device
        return None

    @staticmethod
    def eval_net(net):
        return net.eval() if isinstance(net, torch.nn.Module) else net

    # ------------------------------------------------------------------ training and checkpoints
    @staticmethod
    def training_state(module, net, config: dict):
        from .training_state import TorchTrainingState

        return TorchTrainingState(module, net, config)

    @staticmethod
    def save(state: dict, path) -> None:
        torch.save(state, path)

    @staticmethod
    def load(path) -> dict:
        return torch.load(path, map_location="cpu", weights_only=False)

    # ------------------------------------------------------------------ data parallelism (torchrun)
    @staticmethod
    def world():
        """(rank, world size) of torch.distributed ((0, 1) in one process; see ``distributed``)."""
        from .distributed import world

        return world()

    @staticmethod
    def distributed_device():
        """cuda:LOCAL_RANK under torchrun on a GPU node, else None."""
        from .distributed import local_device

        return local_device()

    @staticmethod
    def is_main_process() -> bool:
        from .distributed import is_main_process

        return is_main_process()

    @staticmethod
    def barrier() -> None:
        from .distributed import barrier

        barrier()

    @staticmethod
    def gather_rows(local, counts):
        from .distributed import gather_rows

        return gather_rows(local, counts)

    @staticmethod
    def max_over_ranks(value: int) -> int:
        from .distributed import max_over_ranks

        return max_over_ranks(value)

    @staticmethod
    def batch_mesh(mesh=None, devices=None):
        """None: device meshes are JAX's; torch runs data-parallel under torchrun (WORLD_SIZE > 1)."""
        if mesh is not None or devices is not None:
            raise TypeError("mesh= / devices= are for the JAX backend; the torch backend runs data-parallel "
                            "under torchrun (torchrun --nproc_per_node=N script.py)")
        return None

    @staticmethod
    def shard_rows(x, mesh):
        raise TypeError("the torch backend has no device mesh (use torchrun)")

    @staticmethod
    def shard_training(state, mesh) -> None:
        raise TypeError("the torch backend has no device mesh (use torchrun)")


TORCH_OPS = TorchOps()
