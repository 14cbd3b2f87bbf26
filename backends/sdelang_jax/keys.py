"""Random keys from seeds (a leaf module: the runtime, simulate and the score ops import it)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def as_key(seed):
    """A ``jax.random`` key: ``seed`` itself when it is a key, else ``PRNGKey(seed)``."""
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if hasattr(seed, "dtype") and seed.dtype == jnp.uint32 and getattr(seed, "shape", None) == (2,):
        return seed
    return jax.random.PRNGKey(jnp.asarray(seed, dtype=jnp.uint32))
