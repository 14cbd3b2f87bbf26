"""A default score network: an MLP on [x, time embedding(, one-hot label)], called as net(x, t)
(or net(x, t, labels) for ``num_classes=K``: :mod:`sdelang.score.class_labels`).

Used only when a user asks for it (``score=ScoreMLP(dim)``); nothing is attached implicitly. The
time embedding is [sin(ω_k t), cos(ω_k t)] with ω_k = π k, k = 1..K
(:func:`sdelang.score.time_features.fourier_frequencies`, the same as the JAX backend's).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from sdelang.score.class_labels import check_num_classes, null_label
from sdelang.score.time_features import FREQUENCIES, fourier_frequencies


class ScoreMLP(nn.Module):
    """s_θ(x, t): R^dim × R -> R^dim, an MLP with SiLU activations on x and Fourier features of t."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, frequencies: int = FREQUENCIES,
                 num_classes: Optional[int] = None):
        super().__init__()
        self.dim = dim
        self.num_classes = check_num_classes(num_classes)
        self.register_buffer("freqs", torch.tensor(fourier_frequencies(frequencies), dtype=torch.float32))
        layers = []
        width = dim + 2 * frequencies + (0 if num_classes is None else self.num_classes + 1)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t, labels=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        angles = t.reshape(-1, 1) * self.freqs.to(x.dtype)
        parts = [x, torch.sin(angles), torch.cos(angles)]
        if self.num_classes is not None:
            parts.append(one_hot_labels(labels, x.shape[0], self.num_classes, x))
        elif labels is not None:
            raise ValueError("this ScoreMLP has no classes (num_classes=None): call it without labels")
        return self.net(torch.cat(parts, dim=-1))


def one_hot_labels(labels, batch: int, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """e_y ∈ R^{K+1} per row, shape (batch, K+1); labels None: the null label ∅ = K for every row."""
    if labels is None:
        labels = torch.full((batch,), null_label(num_classes), dtype=torch.long, device=like.device)
    labels = torch.as_tensor(labels, device=like.device).long().expand(batch)
    return torch.nn.functional.one_hot(labels, num_classes + 1).to(like.dtype)
