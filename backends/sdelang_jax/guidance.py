"""A class-conditional score network with its labels (and classifier-free guidance) fixed, called as
score(x, t) by every sampler (the mathematics is :mod:`sdelang.score.guidance`)."""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from sdelang.score.class_labels import null_label
from sdelang.score.guidance import guided_score


class GuidedScore(eqx.Module):
    """s̃(x, t) = (1 + w) net(x, t, y) - w net(x, t, ∅) for the labels y of the batch's rows; the labels
    are an array leaf (new labels reuse the compiled sampler), w is static."""

    net: eqx.Module
    labels: jax.Array
    null: int = eqx.field(static=True)
    guidance: float = eqx.field(static=True)
    ops: object = eqx.field(static=True)

    def __init__(self, net, labels, num_classes: int, guidance: float, ops):
        self.ops = ops
        self.net = net
        self.labels = jnp.asarray(labels, jnp.int32)
        self.null = null_label(num_classes)
        self.guidance = float(guidance)

    def __call__(self, x, t):
        return guided_score(self.ops, self.net, self.labels, self.null, self.guidance, x, t)

