"""The kernel-preconditioned score network as an ``equinox.Module`` (the mathematics is
:func:`sdelang.score.precondition.preconditioned_score`)."""
from __future__ import annotations

import equinox as eqx
import jax

from sdelang.score.losses import has_diagonal_kernel
from sdelang.score.precondition import preconditioned_score


class KernelPreconditionedScore(eqx.Module):
    """s(x, t) = net(c_in x, t) / σ_t, c_in = 1 / √(a_t² σ_data² + σ_t²) from the module's diagonal
    kernel; ``data_std`` (σ_data) is an array leaf behind ``stop_gradient``: checkpointed, never
    trained."""

    net: eqx.Module
    kernel_module: eqx.Module
    data_std: jax.Array

    def __init__(self, net, module, data_std: float = 1.0):
        if not has_diagonal_kernel(module):
            raise ValueError("KernelPreconditionedScore needs a diagonal perturbation kernel")
        self.net = net
        self.kernel_module = module.with_score(None)
        dtype = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))[0].dtype
        self.data_std = jax.numpy.asarray(data_std, dtype)

    def __call__(self, x, t):
        return preconditioned_score(self.net, self.kernel_module, self.data_std, x, t)
