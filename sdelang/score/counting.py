"""Counting score evaluations (NFE) in the sampler's own loop, the same way on both backends."""
from __future__ import annotations

from typing import Callable


class CountingScore:
    """score(x, t) that counts its calls in ``calls``. A loop body reads the count before and after
    itself: at run time on torch, at trace time (once per compiled body) on JAX, and carries the
    difference as part of the loop state, so NFE is measured by the loop, not assumed, and costs
    no host synchronisation."""

    def __init__(self, score: Callable):
        self.score = score
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        return self.score(x, t)


def score_of(module, score) -> Callable:
    """The score callable: ``score`` if given, else the module's attached ``score`` net."""
    if score is not None:
        return score
    net = module.score_net
    if net is None:
        raise ValueError("no score network: pass score=net or attach one (compile(..., score=net))")
    return net
