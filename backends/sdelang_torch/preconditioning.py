"""The kernel-preconditioned score network as an ``nn.Module`` (the mathematics is
:func:`sdelang.score.precondition.preconditioned_score`)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from sdelang.score.losses import has_diagonal_kernel
from sdelang.score.precondition import preconditioned_score


class KernelPreconditionedScore(nn.Module):
    """s(x, t) = net(c_in x, t) / σ_t, c_in = 1 / √(a_t² σ_data² + σ_t²) from the module's diagonal
    kernel; ``data_std`` (σ_data) is a buffer, so it is checkpointed and never trained."""

    def __init__(self, net: nn.Module, module, data_std: float = 1.0):
        super().__init__()
        if not has_diagonal_kernel(module):
            raise ValueError("KernelPreconditionedScore needs a diagonal perturbation kernel")
        self.net = net
        object.__setattr__(self, "kernel_module", module)  # not a submodule: not saved, not copied
        self.register_buffer("data_std", torch.tensor(float(data_std)))

    def __deepcopy__(self, memo):
        clone = KernelPreconditionedScore(copy.deepcopy(self.net, memo), self.kernel_module)
        clone.data_std = self.data_std.clone()
        return clone

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return preconditioned_score(self.net, self.kernel_module, self.data_std, x, t)
