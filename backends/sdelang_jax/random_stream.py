"""The JAX random stream of the score layer (:class:`sdelang.score.protocol.RandomStream`)."""
from __future__ import annotations

import jax
import numpy as np

from .keys import as_key


@jax.tree_util.register_pytree_node_class
class JaxStream:
    """A key split at each draw; ``at(i)`` gives loop iteration i its own draws. A pytree (its key, or the seed it
    is made from, is the leaf), so it can enter a jitted program, where a seed becomes its key at no
    host cost: ``PRNGKey(seed)``, folded with ``salt`` when that is not 0."""

    def __init__(self, key, salt: int = 0, from_seed: bool = False):
        self.key, self.salt, self.from_seed = key, int(salt), bool(from_seed)

    def tree_flatten(self):
        return (self.key,), (self.salt, self.from_seed)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children[0], *aux)

    def current_key(self):
        if self.from_seed:
            key = jax.random.PRNGKey(self.key)
            self.key, self.from_seed = (jax.random.fold_in(key, self.salt) if self.salt else key), False
        return self.key

    def next_key(self):
        self.key, sub = jax.random.split(self.current_key())
        return sub

    def normal(self, shape, dtype, scale=1.0):
        z = jax.random.normal(self.next_key(), tuple(shape), dtype)
        return z if isinstance(scale, (int, float)) and scale == 1 else z * scale

    def uniform(self, shape, low, high, dtype):
        return jax.random.uniform(self.next_key(), tuple(shape), dtype, low, high)

    def rademacher(self, shape, dtype):
        return jax.random.rademacher(self.next_key(), tuple(shape), dtype=dtype)

    def randint(self, low: int, high: int, shape):
        return jax.random.randint(self.next_key(), tuple(shape), low, high)

    def spawn_seed(self):
        """A key for a nested seeded computation."""
        return self.next_key()

    def at(self, i) -> "IterationStream":
        return IterationStream(self.current_key(), i)


@jax.tree_util.register_pytree_node_class
class IterationStream(JaxStream):
    """The draws of loop iteration i: draw j uses fold_in(fold_in(key, j), i). fold_in(key, j) does
    not depend on i, so XLA hoists it out of the loop: one ``fold_in`` per draw, no ``split``."""

    def __init__(self, key, index, draws: int = 0):
        super().__init__(key)
        self.index, self.draws = index, int(draws)

    def tree_flatten(self):
        return (self.key, self.index), (self.draws,)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    def next_key(self):
        key = jax.random.fold_in(jax.random.fold_in(self.key, self.draws), self.index)
        self.draws += 1
        return key

    def at(self, i) -> "IterationStream":
        return IterationStream(self.next_key(), i)


def seeded_stream(seed, salt: int = 0, device=None) -> JaxStream:
    """The stream of ``seed`` (an int or a key), folded with ``salt`` when it is not 0; an int seed
    stays a host integer until the stream is first drawn from."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return JaxStream(np.asarray(seed, dtype=np.uint32), salt, from_seed=True)
    key = as_key(seed)
    return JaxStream(jax.random.fold_in(key, salt) if salt else key)
