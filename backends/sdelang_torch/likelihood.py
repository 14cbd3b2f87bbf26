"""Log-likelihood through an ODE dx/dt = v(t, x) (instantaneous change of variables).

Along a trajectory d log p_t(x(t)) / dt = -∇·v(t, x(t)), so for x(t_start) = x

    log p_{t_start}(x) = log p_{t_end}(x(t_end)) + ∫_{t_start}^{t_end} ∇·v(t, x(t)) dt.

The pair (x, Δ) is integrated with torchdiffeq. ∇·v is exact (one backward pass per component, so
n passes) or Hutchinson's estimate εᵀ (∂v/∂x) ε with one Rademacher ε fixed for the whole solve.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch


def divergence(v: torch.Tensor, x: torch.Tensor, eps: Optional[torch.Tensor], create_graph: bool) -> torch.Tensor:
    """∇·v per batch row for v = v(x) of shape (batch, n): exact when ``eps`` is None (n vector–
    Jacobian products), else Hutchinson εᵀ (∂v/∂x) ε."""
    if not v.requires_grad:  # v does not depend on x (e.g. VE's zero drift)
        return torch.zeros_like(v[:, 0])
    if eps is not None:
        (vjp,) = torch.autograd.grad(v, x, eps, create_graph=create_graph, allow_unused=True,
                                     materialize_grads=True)
        return (vjp * eps).sum(-1)
    total = torch.zeros_like(v[:, 0])
    n = v.shape[1]
    for i in range(n):
        (row,) = torch.autograd.grad(v[:, i].sum(), x, create_graph=create_graph, retain_graph=True,
                                     allow_unused=True, materialize_grads=True)
        total = total + row[:, i]
    return total


def rademacher(shape, like: torch.Tensor, seed: int) -> torch.Tensor:
    """±1 entries with equal probability, from a generator seeded with ``seed``."""
    generator = torch.Generator(device=like.device)
    generator.manual_seed(int(seed))
    bits = torch.randint(0, 2, tuple(shape), generator=generator, device=like.device)
    return bits.to(like.dtype) * 2 - 1


def flow_log_prob(velocity: Callable, prior_log_prob: Callable, x: torch.Tensor, t_start: float, t_end: float,
                  *, exact: bool = True, rtol: float = 1e-5, atol: float = 1e-5, method: str = "dopri5",
                  seed: int = 0, options: Optional[dict] = None) -> torch.Tensor:
    """log p_{t_start}(x), shape (batch,): integrate (x, Δ) to t_end, add ``prior_log_prob``.

    Gradients flow to ``x`` and the velocity's parameters when grad mode is on at the call.
    """
    import torchdiffeq

    keep_graph = torch.is_grad_enabled()
    eps = None if exact else rademacher(x.shape, x, seed)

    def rhs(t, state):
        y, _ = state
        with torch.enable_grad():
            if not y.requires_grad:
                y = y.detach().requires_grad_(True)
            v = velocity(t, y)
            div = divergence(v, y, eps, create_graph=keep_graph)
        if not keep_graph:
            v, div = v.detach(), div.detach()
        return v, div

    times = torch.tensor([float(t_start), float(t_end)], dtype=x.dtype, device=x.device)
    start = (x, torch.zeros_like(x[:, 0]))
    xs, deltas = torchdiffeq.odeint(rhs, start, times, rtol=rtol, atol=atol, method=method, options=options)
    return prior_log_prob(xs[-1]) + deltas[-1]
