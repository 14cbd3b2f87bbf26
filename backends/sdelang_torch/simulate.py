"""The fixed-step simulation loop behind ``module.simulate(x0, ts, dt, seed)``.

Between consecutive output times the interval is cut into k = ceil((ts[i+1] - ts[i]) / dt) equal
steps of size h = (ts[i+1] - ts[i]) / k. The plan is computed once on the host from a CPU copy of
``ts``; inside the loop time and h are Python floats, so there is no per-step host/device sync.
Each step draws dW ~ N(0, h I) from a ``torch.Generator`` seeded with ``seed`` on x0's device and
calls the model's generated fused step y <- y + f h + G dW (Euler for an ODE).
"""
from __future__ import annotations

import math
from typing import List, Tuple

import torch


def substep_plan(ts, dt: float) -> List[Tuple[float, float, int]]:
    """[(t_start, h, k)] per interval of ``ts``: k equal steps of size h (k = 0 for a zero interval)."""
    if torch.is_tensor(ts):
        times = ts.detach().to("cpu", torch.float64).tolist()
    else:
        times = [float(v) for v in ts]
    if not all(math.isfinite(v) for v in times):
        raise ValueError(f"ts must be finite times, got {times}")
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be a positive finite number, got {dt}")
    plan = []
    for a, b in zip(times[:-1], times[1:]):
        if b < a:
            raise ValueError("ts must be non-decreasing (a reverse-time model runs forward in its own time s)")
        k = 0 if b == a else max(1, math.ceil((b - a) / dt * (1 - 1e-12)))
        plan.append((a, (b - a) / k if k else 0.0, k))
    return plan


def euler_maruyama(step, noise_shape, x0: torch.Tensor, ts, dt: float, seed: int = 0) -> torch.Tensor:
    """States at every time of ``ts``, shape (len(ts), *x0.shape); ``step(t, y, h, dW)`` advances one
    step; ``noise_shape`` is the increment's shape (None for an ODE: no noise is drawn)."""
    plan = substep_plan(ts, dt)
    generator = torch.Generator(device=x0.device)
    generator.manual_seed(int(seed))
    y = x0
    out = [x0]
    for t_start, h, k in plan:
        sqrt_h = math.sqrt(h)
        for j in range(k):
            if noise_shape is None:
                dW = None
            else:
                dW = torch.randn(noise_shape, generator=generator, dtype=x0.dtype, device=x0.device).mul_(sqrt_h)
            y = step(t_start + j * h, y, h, dW)
        out.append(y)
    return torch.stack(out)
