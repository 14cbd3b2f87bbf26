"""Time arguments of generated functions: torchsde and torchdiffeq pass a 0-dim tensor, tests a
float or a (batch,) tensor; all become tensors of the state's dtype and device."""
from __future__ import annotations

import torch


def as_time(t, y: torch.Tensor, elementwise: bool) -> torch.Tensor:
    """``t`` as a tensor like ``y``; a (batch,) time in an elementwise model (y of shape
    (batch, d)) becomes (batch, 1) so that it broadcasts over components."""
    t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
    if elementwise and t.dim() == 1:
        t = t.unsqueeze(-1)
    return t


def net_time(t, y: torch.Tensor) -> torch.Tensor:
    """The time a network receives: a scalar, or (batch,) (undoing :func:`as_time`'s column)."""
    t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
    if t.dim() == 2:
        t = t.squeeze(-1)
    return t
