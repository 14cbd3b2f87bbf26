"""Data parallelism for the JAX backend: a batch sharded over a device mesh (``jax.sharding``).

One process drives every device (``XLA_FLAGS=--xla_force_host_platform_device_count=N`` on a CPU,
the GPUs of a node, or ``jax.distributed.initialize()`` across nodes). A batch (rows on the first
axis) is placed with ``NamedSharding(mesh, P("batch"))`` and the networks' parameters are
replicated (``P()``); jitted code then runs each device's rows on that device and XLA inserts the
collectives (the gradient's all-reduce in training, the error norm of an adaptive ODE solver).
Random draws inside jitted code are the same numbers whatever the sharding (JAX's partitionable
threefry), so sharded results equal unsharded ones up to floating-point reduction order.

What keeps the sharding where XLA's propagation alone would lose it:

* diffrax's ``diffeqsolve`` (the ODE sampler, ``log_prob``): its outputs come back replicated, so
  :func:`batch_shardings` reads the input's sharding and the solve constrains its state, every
  vector-field evaluation and its output to it (``with_sharding_constraint``);
* training: the minibatch cut from the (replicated) data inside the jitted step is constrained
  to the batch sharding, so the loss and its gradient are computed data-parallel.
"""
from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def batch_mesh(mesh: Optional[Mesh] = None, devices: Optional[Sequence] = None) -> Optional[Mesh]:
    """``mesh`` (which must have a "batch" axis), a one-axis mesh over ``devices`` (an int: the
    first that many of ``jax.devices()``; "all": all of them), or None when both are None."""
    if mesh is not None and devices is not None:
        raise TypeError("pass mesh= or devices=, not both")
    if mesh is not None:
        if not isinstance(mesh, Mesh) or BATCH_AXIS not in mesh.axis_names:
            raise ValueError(f"mesh must be a jax.sharding.Mesh with a {BATCH_AXIS!r} axis, got {mesh!r}")
        return mesh
    if devices is None:
        return None
    if devices == "all":
        devices = jax.devices()
    elif isinstance(devices, int) and not isinstance(devices, bool):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise ValueError(f"devices={devices}: there are {len(available)} JAX devices")
        devices = available[:devices]
    return Mesh(np.asarray(list(devices)), (BATCH_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows split over the mesh's batch axis."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def shard_rows(x, mesh: Mesh):
    """x (rows first) placed with its rows split over the mesh's batch axis."""
    size = mesh.shape[BATCH_AXIS]
    rows = int(x.shape[0])
    if rows % size:
        raise ValueError(f"{rows} rows cannot be split evenly over the mesh's {size} devices: "
                         f"use a number of rows (n, or batch_size) divisible by {size}")
    return jax.device_put(x, batch_sharding(mesh))


def replicate(tree, mesh: Mesh):
    """Every array leaf of ``tree`` copied to all the mesh's devices."""
    sharding = replicated(mesh)
    return jax.tree_util.tree_map(lambda leaf: jax.device_put(leaf, sharding) if isinstance(leaf, jax.Array)
                                  else leaf, tree)


def is_batch_sharded(leaf) -> bool:
    sharding = getattr(leaf, "sharding", None)
    return (isinstance(sharding, NamedSharding) and sharding.mesh.size > 1 and len(sharding.spec) > 0
            and sharding.spec[0] is not None and not isinstance(leaf, jax.core.Tracer))


def batch_shardings(tree):
    """The tree's leaf shardings when some leaf is a concrete array sharded on its first axis
    (a tuple, one per leaf, None for the others), else None."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not any(is_batch_sharded(leaf) for leaf in leaves):
        return None
    return tuple(leaf.sharding if is_batch_sharded(leaf) else None for leaf in leaves)


def constrain(tree, shardings):
    """``with_sharding_constraint`` on each leaf with a sharding in ``shardings`` (None: unchanged)."""
    if shardings is None:
        return tree
    leaves, structure = jax.tree_util.tree_flatten(tree)
    leaves = [leaf if s is None else jax.lax.with_sharding_constraint(leaf, s) for leaf, s in zip(leaves, shardings)]
    return jax.tree_util.tree_unflatten(structure, leaves)
