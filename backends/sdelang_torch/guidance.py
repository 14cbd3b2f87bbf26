"""A class-conditional score network with its labels (and classifier-free guidance) fixed, called as
score(x, t) by every sampler (the mathematics is :mod:`sdelang.score.guidance`)."""
from __future__ import annotations

import torch
from torch import nn

from sdelang.score.class_labels import null_label
from sdelang.score.guidance import guided_score


class GuidedScore(nn.Module):
    """s̃(x, t) = (1 + w) net(x, t, y) - w net(x, t, ∅) for the labels y of the batch's rows."""

    def __init__(self, net: nn.Module, labels, num_classes: int, guidance: float, ops):
        super().__init__()
        self.ops = ops
        self.net = net
        self.register_buffer("labels", torch.as_tensor(labels, dtype=torch.long))
        self.null = null_label(num_classes)
        self.guidance = float(guidance)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return guided_score(self.ops, self.net, self.labels.to(x.device), self.null, self.guidance, x, t)

