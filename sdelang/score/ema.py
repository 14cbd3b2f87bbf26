"""The EMA schedule of the network's weights, for both backends."""
from __future__ import annotations


def ema_decay(decay: float, update, minimum=min):
    """d_k = min(decay, (1 + k) / (10 + k)) at update k ≥ 1 (θ̄ ← d_k θ̄ + (1 - d_k) θ): early random
    weights are forgotten in short runs. ``minimum``: ``min``, or the framework's for a traced k."""
    return minimum(float(decay), (1 + update) / (10 + update))
