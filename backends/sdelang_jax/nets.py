"""A default score network: an MLP on (y, time embedding), usable as ``score=ScoreMLP(n, key=...)``.

s_θ(y, t) = W_L σ(… σ(W_1 [y, φ(t)] + b_1) …) + b_L with the Fourier time embedding
φ(t) = [sin(ω_k t), cos(ω_k t)]_k of :func:`sdelang.score.time_features.fourier_frequencies`
(ω_k = π k, the same as the torch backend's) and σ = SiLU. Works on any leading batch shape; t is a
scalar or has the batch shape.
"""
from __future__ import annotations

from typing import List, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from sdelang.score.class_labels import check_num_classes, null_label
from sdelang.score.time_features import FREQUENCIES, fourier_frequencies


class ScoreMLP(eqx.Module):
    """MLP score network (see the module docstring)."""

    weights: List[jax.Array]
    biases: List[jax.Array]
    frequencies: tuple = eqx.field(static=True)
    num_classes: Optional[int] = eqx.field(static=True)

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, frequencies: int = FREQUENCIES, *, key,
                 dtype=None, num_classes: Optional[int] = None):
        dtype = dtype or jnp.result_type(float)
        self.num_classes = check_num_classes(num_classes)
        labels = 0 if num_classes is None else self.num_classes + 1
        sizes = [dim + 2 * frequencies + labels] + [hidden] * depth + [dim]
        keys = jax.random.split(key, len(sizes) - 1)
        self.weights = []
        self.biases = []
        for k, (a, b) in zip(keys, zip(sizes[:-1], sizes[1:])):
            self.weights.append(jax.random.normal(k, (a, b), dtype) / jnp.sqrt(a))
            self.biases.append(jnp.zeros((b,), dtype))
        self.frequencies = tuple(fourier_frequencies(frequencies))

    def embed(self, t, batch_shape):
        """φ(t) of shape (*batch, 2·frequencies)."""
        t = jnp.broadcast_to(jnp.asarray(t), batch_shape)[..., None]
        angle = jnp.asarray(self.frequencies) * t
        return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)

    def __call__(self, y, t, labels=None):
        parts = [y, self.embed(t, y.shape[:-1]).astype(y.dtype)]
        if self.num_classes is not None:
            parts.append(one_hot_labels(labels, y.shape[:-1], self.num_classes, y.dtype))
        elif labels is not None:
            raise ValueError("this ScoreMLP has no classes (num_classes=None): call it without labels")
        h = jnp.concatenate(parts, axis=-1)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = jax.nn.silu(h @ w + b)
        return h @ self.weights[-1] + self.biases[-1]


def one_hot_labels(labels, batch_shape, num_classes: int, dtype):
    """e_y ∈ R^{K+1}, shape (*batch, K+1); labels None: the null label ∅ = K everywhere."""
    if labels is None:
        labels = null_label(num_classes)
    labels = jnp.broadcast_to(jnp.asarray(labels, jnp.int32), batch_shape)
    return jax.nn.one_hot(labels, num_classes + 1, dtype=dtype)
