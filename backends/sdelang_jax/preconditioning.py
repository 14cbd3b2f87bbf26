"""The EDM-preconditioned score network as an ``equinox.Module`` (the mathematics is
:mod:`sdelang.score.precondition`)."""
from __future__ import annotations

from typing import Tuple

import equinox as eqx
import jax

from sdelang.score.losses import has_diagonal_kernel
from sdelang.score.precondition import (check_parametrization, noise_range, preconditioned_loss_weight,
                                        preconditioned_score)


class KernelPreconditionedScore(eqx.Module):
    """s(x, t) from net(c_in x̃, c_noise(t)) with EDM's c_skip, c_out, c_in, c_noise read off the module's
    diagonal kernel (:mod:`sdelang.score.precondition`); ``parametrization`` says what the net predicts
    ("v", "eps", "x0" or "score"). ``data_std`` (σ_d) is an array leaf behind ``stop_gradient``:
    checkpointed, never trained."""

    net: eqx.Module
    kernel_module: eqx.Module
    data_std: jax.Array
    parametrization: str = eqx.field(static=True)
    log_range: Tuple[float, float] = eqx.field(static=True)

    def __init__(self, net, module, data_std: float = 1.0, parametrization: str = "eps"):
        if not has_diagonal_kernel(module):
            raise ValueError("KernelPreconditionedScore needs a diagonal perturbation kernel")
        self.net = net
        self.kernel_module = module.with_score(None)
        self.parametrization = check_parametrization(parametrization)
        self.log_range = noise_range(self.kernel_module, module.dimension)
        dtype = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))[0].dtype
        self.data_std = jax.numpy.asarray(data_std, dtype)

    def __call__(self, x, t, labels=None):
        return preconditioned_score(self.net, self.kernel_module, self.data_std, self.parametrization,
                                    self.log_range, x, t, labels)

    def loss_weight(self, x, t):
        """The per-component weight that makes DSM the net's own squared error."""
        return preconditioned_loss_weight(self.kernel_module, self.data_std, self.parametrization, x, t)
