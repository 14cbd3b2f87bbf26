"""A default score network: an MLP on [x, time embedding], called as net(x, t).

Used only when a user asks for it (``score=ScoreMLP(dim)``); nothing is attached implicitly. The
time embedding is [sin(ω_k t), cos(ω_k t)] with ω_k = π k, k = 1..K
(:func:`sdelang.score.time_features.fourier_frequencies`, the same as the JAX backend's).
"""
from __future__ import annotations

import torch
from torch import nn

from sdelang.score.time_features import FREQUENCIES, fourier_frequencies


class ScoreMLP(nn.Module):
    """s_θ(x, t): R^dim × R -> R^dim, an MLP with SiLU activations on x and Fourier features of t."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, frequencies: int = FREQUENCIES):
        super().__init__()
        self.dim = dim
        self.register_buffer("freqs", torch.tensor(fourier_frequencies(frequencies), dtype=torch.float32))
        layers = []
        width = dim + 2 * frequencies
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        angles = t.reshape(-1, 1) * self.freqs.to(x.dtype)
        features = torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)
        return self.net(features)
