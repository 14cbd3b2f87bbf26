"""The trainer's learning-rate schedule, written once for both backends (torch's ``LambdaLR`` calls it
with Python ints, JAX's Adam with a traced step count and ``jnp``'s functions).

With k = the number of optimiser steps already taken (0 for the first step; torch's
``LambdaLR.last_epoch``, JAX's ``AdamState.count`` before the step), W = ``warmup_steps``,
S = ``schedule_steps``, r = ``min_lr_ratio``, the step uses lr · f(k) with

    f(k) = w(k) · (r + (1 - r) · d(p)),   w(k) = min(1, (k + 1) / W)  (w = 1 when W = 0),
    p = min(1, max(0, (k - W) / (S - W))),
    d(p) = 1 ("constant"),  1 - p ("linear"),  ½ (1 + cos π p) ("cosine").

So the n-th step (n = k + 1) of the warm-up uses n/W · lr (a linear ramp from 0 before the first step
to lr at step W), then lr decays from lr at k = W to r · lr at k = S (the last step of an S-step
run, k = S - 1, is one step short of the floor, as with ``torch.optim.lr_scheduler.CosineAnnealingLR``)
and stays there; "constant" with W = 0 is f = 1 exactly.
"""
from __future__ import annotations

import math
from typing import Optional

LR_SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(step, schedule: str = "constant", warmup_steps: int = 0, schedule_steps: Optional[int] = None,
              min_lr_ratio: float = 0.0, *, minimum=min, maximum=max, cos=math.cos):
    """f(k) of the module docstring at ``step`` = k. ``minimum``, ``maximum``, ``cos``: Python's (the
    default, for an int k) or the framework's for a traced k (``jnp.minimum``, ``jnp.maximum``,
    ``jnp.cos``). ``schedule_steps`` is needed (and must exceed ``warmup_steps``) unless the schedule
    is "constant"."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    warmup = int(warmup_steps)
    factor = 1.0 if warmup == 0 else minimum(1.0, (step + 1) / warmup)
    if schedule == "constant":
        return factor
    if schedule_steps is None or int(schedule_steps) <= warmup:
        raise ValueError(f"the {schedule!r} schedule needs schedule_steps > warmup_steps = {warmup}, "
                         f"got {schedule_steps!r}")
    progress = minimum(1.0, maximum(0.0, (step - warmup) / (int(schedule_steps) - warmup)))
    decay = 1 - progress if schedule == "linear" else 0.5 * (1 + cos(math.pi * progress))
    ratio = float(min_lr_ratio)
    return factor * (ratio + (1 - ratio) * decay)


def schedule_of(config: dict) -> dict:
    """The keywords of :func:`lr_factor` from a trainer's config."""
    return {"schedule": config["lr_schedule"], "warmup_steps": config["warmup_steps"],
            "schedule_steps": config["schedule_steps"], "min_lr_ratio": config["min_lr_ratio"]}


def is_constant(config: dict) -> bool:
    """True when the schedule is f = 1 at every step (the plain optimiser, no scheduler arithmetic)."""
    return config["lr_schedule"] == "constant" and int(config["warmup_steps"]) == 0
