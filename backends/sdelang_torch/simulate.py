"""The fixed-step simulation loop behind ``module.simulate(x0, ts, dt, seed)``.

Between consecutive output times the interval is cut into k = ceil((ts[i+1] - ts[i]) / dt) equal
steps of size h = (ts[i+1] - ts[i]) / k (:func:`sdelang.step_plan.step_plan`). The plan is computed once on the host from a CPU copy of
``ts``; inside the loop time and h are Python floats, so there is no per-step host/device sync.
The increments dW ~ N(0, h I) come from a ``torch.Generator`` seeded with ``seed`` on x0's device,
drawn in blocks of several steps; each step calls the model's generated fused step
y <- y + f h + G dW (Euler for an ODE).
"""
from __future__ import annotations

import math

import torch

from sdelang.step_plan import step_plan

from .threads import intra_op_threads


NOISE_BLOCK_ELEMENTS = 1 << 18
"""Noise is drawn for several steps at once, in blocks of at most this many numbers (1 MiB in
float32), and at least one step per block: measured, ``normal_`` costs 4.1–4.4 ns a number up to
2^18 numbers and 8 ns at 2^20 (page faults of a fresh 4 MiB buffer)."""


def euler_maruyama(step, noise_shape, x0: torch.Tensor, ts, dt: float, seed: int = 0) -> torch.Tensor:
    """States at every time of ``ts``, shape (len(ts), *x0.shape); ``step(t, y, h, dW)`` advances one
    step; ``noise_shape`` is the increment's shape (None for an ODE: no noise is drawn).

    Per step the loop calls the generated step on a view of a pre-drawn noise block: the
    increments of up to ``NOISE_BLOCK_ELEMENTS // numel`` steps of an interval are drawn by one
    ``normal_(0, √h)`` (two dispatches per block instead of two per step; ``normal_`` scales inside
    its kernel, which runs on one thread, whereas a separate ``mul_`` on a block this size would
    enter torch's intra-op pool, ruinous on a busy CPU).
    On the CPU generator the numbers equal those of one draw per step whenever a step's numel is a
    multiple of 16 (torch fills normals in blocks of 16); otherwise they are a different, equally
    valid i.i.d. stream, still fixed by ``seed``. A fresh block is allocated each time (never
    refilled), so an autograd graph that saved an increment stays valid. Nothing syncs per step:
    times and h are Python floats. Runs under :func:`intra_op_threads` ``(x0.numel())`` (see
    threads.py: one intra-op thread for small batches unless ``SDELANG_TORCH_THREADS`` says
    otherwise)."""
    plan = step_plan(ts, dt)
    with intra_op_threads(x0.numel()):
        return _euler_maruyama(step, noise_shape, x0, plan, seed)


def _euler_maruyama(step, noise_shape, x0: torch.Tensor, plan, seed: int) -> torch.Tensor:
    generator = torch.Generator(device=x0.device)
    generator.manual_seed(int(seed))
    y = x0
    out = [x0]
    numel = math.prod(noise_shape) if noise_shape is not None else 0
    per_block = max(1, NOISE_BLOCK_ELEMENTS // max(numel, 1))
    for t_start, h, k in plan:
        sqrt_h = math.sqrt(h)
        j = 0
        while j < k:
            n = min(per_block, k - j)
            if noise_shape is None:
                for i in range(j, j + n):
                    y = step(t_start + i * h, y, h, None)
            else:
                block = torch.empty((n, *noise_shape), dtype=x0.dtype, device=x0.device)
                block.normal_(0.0, sqrt_h, generator=generator)
                for i, dW in enumerate(block.unbind(0), start=j):
                    y = step(t_start + i * h, y, h, dW)
            j += n
        out.append(y)
    return torch.stack(out)
