"""The EDM-preconditioned score network as an ``nn.Module`` (the mathematics is
:mod:`sdelang.score.precondition`)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from sdelang.score.losses import has_diagonal_kernel
from sdelang.score.precondition import (check_parametrization, noise_range, preconditioned_loss_weight,
                                        preconditioned_score)


class KernelPreconditionedScore(nn.Module):
    """s(x, t) from net(c_in x̃, c_noise(t)) with EDM's c_skip, c_out, c_in, c_noise read off the module's
    diagonal kernel (:mod:`sdelang.score.precondition`); ``parametrization`` says what the net predicts
    ("v", "eps", "x0" or "score"). ``data_std`` (σ_d) is a buffer: checkpointed, never trained."""

    def __init__(self, net: nn.Module, module, data_std: float = 1.0, parametrization: str = "eps"):
        super().__init__()
        if not has_diagonal_kernel(module):
            raise ValueError("KernelPreconditionedScore needs a diagonal perturbation kernel")
        self.net = net
        self.parametrization = check_parametrization(parametrization)
        object.__setattr__(self, "kernel_module", module)  # not a submodule: not saved, not copied
        self.log_range = noise_range(module, module.dimension)
        self.register_buffer("data_std", torch.tensor(float(data_std), dtype=torch.float64))

    def __deepcopy__(self, memo):
        clone = KernelPreconditionedScore(copy.deepcopy(self.net, memo), self.kernel_module,
                                          parametrization=self.parametrization)
        clone.data_std = self.data_std.clone()
        return clone

    def forward(self, x: torch.Tensor, t, labels=None) -> torch.Tensor:
        return preconditioned_score(self.net, self.kernel_module, self.data_std, self.parametrization,
                                    self.log_range, x, t, labels)

    def loss_weight(self, x: torch.Tensor, t) -> torch.Tensor:
        """The per-component weight that makes DSM the net's own squared error."""
        return preconditioned_loss_weight(self.kernel_module, self.data_std, self.parametrization, x, t)
