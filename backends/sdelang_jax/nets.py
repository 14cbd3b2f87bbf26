"""A default score network: an MLP on (y, time embedding), usable as ``score=ScoreMLP(n, key=...)``.

s_θ(y, t) = W_L σ(… σ(W_1 [y, φ(t)] + b_1) …) + b_L, with the Fourier time embedding
φ(t) = [sin(2π ω_k t), cos(2π ω_k t)]_k (fixed frequencies ω_k = 2^k, k < n_freq) and σ = SiLU.
Works on any leading batch shape; t is a scalar or has the batch shape.
"""
from __future__ import annotations

from typing import List

import equinox as eqx
import jax
import jax.numpy as jnp


class ScoreMLP(eqx.Module):
    """MLP score network (see the module docstring)."""

    weights: List[jax.Array]
    biases: List[jax.Array]
    n_freq: int = eqx.field(static=True)

    def __init__(self, n: int, *, key, width: int = 64, depth: int = 2, n_freq: int = 4, dtype=None):
        dtype = dtype or jnp.result_type(float)
        sizes = [n + 2 * n_freq] + [width] * depth + [n]
        keys = jax.random.split(key, len(sizes) - 1)
        self.weights = []
        self.biases = []
        for k, (a, b) in zip(keys, zip(sizes[:-1], sizes[1:])):
            self.weights.append(jax.random.normal(k, (a, b), dtype) / jnp.sqrt(a))
            self.biases.append(jnp.zeros((b,), dtype))
        self.n_freq = n_freq

    def embed(self, t, batch_shape):
        """φ(t) of shape (*batch, 2·n_freq)."""
        freqs = 2.0 ** jnp.arange(self.n_freq)
        t = jnp.broadcast_to(jnp.asarray(t), batch_shape)[..., None]
        angle = 2 * jnp.pi * freqs * t
        return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)

    def __call__(self, y, t):
        h = jnp.concatenate([y, self.embed(t, y.shape[:-1]).astype(y.dtype)], axis=-1)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = jax.nn.silu(h @ w + b)
        return h @ self.weights[-1] + self.biases[-1]
