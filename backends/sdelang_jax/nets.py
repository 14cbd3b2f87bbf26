"""A default score network: an MLP on (y, time embedding), usable as ``score=ScoreMLP(n, key=...)``.

s_θ(y, t) = W_L σ(… σ(W_1 [y, φ(t)] + b_1) …) + b_L with the Fourier time embedding
φ(t) = [sin(ω_k t), cos(ω_k t)]_k of :func:`sdelang.score.time_features.fourier_frequencies`
(ω_k = π k, the same as the torch backend's) and σ = SiLU. Works on any leading batch shape; t is a
scalar or has the batch shape.
"""
from __future__ import annotations

from typing import List

import equinox as eqx
import jax
import jax.numpy as jnp

from sdelang.score.time_features import FREQUENCIES, fourier_frequencies


class ScoreMLP(eqx.Module):
    """MLP score network (see the module docstring)."""

    weights: List[jax.Array]
    biases: List[jax.Array]
    frequencies: tuple = eqx.field(static=True)

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, frequencies: int = FREQUENCIES, *, key,
                 dtype=None):
        dtype = dtype or jnp.result_type(float)
        sizes = [dim + 2 * frequencies] + [hidden] * depth + [dim]
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

    def __call__(self, y, t):
        h = jnp.concatenate([y, self.embed(t, y.shape[:-1]).astype(y.dtype)], axis=-1)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = jax.nn.silu(h @ w + b)
        return h @ self.weights[-1] + self.biases[-1]
