"""The fixed-step schedule of ``simulate``, the same for every backend."""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

INTEGER_SLACK = 1e-9


def output_times(ts) -> List[float]:
    """``ts`` (a sequence, numpy array or CPU/GPU tensor of times) as Python floats, checked finite."""
    values = ts.tolist() if hasattr(ts, "tolist") else list(ts)
    if not isinstance(values, list) or any(isinstance(v, list) for v in values):
        raise ValueError("ts must be a 1-D sequence of times")
    times = [float(v) for v in values]
    if not times:
        raise ValueError("ts must hold at least one time")
    if not all(math.isfinite(v) for v in times):
        raise ValueError(f"ts must be finite times, got {times}")
    return times


def step_plan(ts: Sequence[float], dt: float) -> List[Tuple[float, float, int]]:
    """[(t_start, h, k)] for each interval [ts[i], ts[i+1]]: k = ceil((ts[i+1] - ts[i]) / dt) equal
    steps of h = (ts[i+1] - ts[i]) / k, where a ratio within 1e-9 (relative) of an integer counts
    as that integer (a ``linspace`` grid gains no sliver step); k = 0 and h = 0 for equal times.
    ``ts`` must be non-decreasing (a reverse-time model runs forward in its own time s)."""
    times = output_times(ts)
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be a positive finite number, got {dt}")
    plan = []
    for a, b in zip(times[:-1], times[1:]):
        if b < a:
            raise ValueError("ts must be non-decreasing (a reverse-time model runs forward in its own time s)")
        ratio = (b - a) / dt
        k = 0 if b == a else max(1, math.ceil(ratio - INTEGER_SLACK * max(1.0, ratio)))
        plan.append((a, (b - a) / k if k else 0.0, k))
    return plan
