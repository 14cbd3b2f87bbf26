"""A default score network: an MLP on [x, time embedding], called as net(x, t).

Used only when a user asks for it (``score=ScoreMLP(dim)``); nothing is attached implicitly. The
time embedding is [sin(2π k t), cos(2π k t)] for k = 1..K (Fourier features of t on [0, 1]).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class ScoreMLP(nn.Module):
    """s_θ(x, t): R^dim × R -> R^dim, an MLP with SiLU activations on x and Fourier features of t."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, frequencies: int = 8):
        super().__init__()
        self.dim = dim
        self.register_buffer("freqs", 2 * math.pi * torch.arange(1, frequencies + 1, dtype=torch.float32))
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
