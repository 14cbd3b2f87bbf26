"""The state the samplers start from at t1."""
from __future__ import annotations


def initial_state(module, n: int, x_init, seed, dtype, device):
    """x at t1: ``x_init``, or n draws from the spec's prior."""
    ops = module.ops
    if x_init is not None:
        return ops.asarray(x_init, dtype=dtype, device=device)
    try:
        return ops.prior_sample(module, int(n), seed, dtype, device)
    except NotImplementedError as error:
        raise ValueError("the spec has no `prior x ~ Normal(...)`: pass x_init (draws of p at t1)") from error
