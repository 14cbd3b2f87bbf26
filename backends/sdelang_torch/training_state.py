"""The torch half of the trainer (:mod:`sdelang.score.trainer`): network, Adam, EMA, stream."""
from __future__ import annotations

import copy
from typing import Dict

import torch
from torch import nn

from sdelang.score.ema import ema_decay
from sdelang.score.trainer import training_loss

from .random_stream import seeded_stream


class EMA:
    """Exponential moving average of a network's floating parameters, θ̄ ← d_k θ̄ + (1 - d_k) θ with
    the schedule of :func:`sdelang.score.ema.ema_decay`; buffers are copied as they are."""

    def __init__(self, net: nn.Module, decay: float = 0.999):
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: Dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.num_updates += 1
        d = ema_decay(self.decay, self.num_updates)
        params = dict(net.named_parameters())
        for name, value in net.state_dict().items():
            if name in params and value.dtype.is_floating_point:
                self.shadow[name].mul_(d).add_(value.detach(), alpha=1 - d)
            else:
                self.shadow[name].copy_(value)

    def averaged(self, net: nn.Module) -> nn.Module:
        """A deep copy of ``net`` carrying the averaged weights (``net`` is untouched)."""
        clone = copy.deepcopy(net)
        clone.load_state_dict(self.shadow)
        return clone

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k] = v.clone().to(self.shadow[k].device) if k in self.shadow else v.clone()


class TorchTrainingState:
    """Adam (``torch.optim.Adam``) with global-norm clipping on the configured loss, the EMA and
    one generator on the network's device; ``run`` takes k steps and returns their losses as one
    tensor (no host synchronisation inside the chunk)."""

    def __init__(self, module, net: nn.Module, config: dict):
        if not isinstance(net, nn.Module):
            raise TypeError(f"a torch score net to train must be an nn.Module, got {type(net).__name__}")
        self.module, self.net, self.config = module, net, config
        first = next(iter(net.parameters()), None)
        if first is None:
            raise ValueError("the score network has no parameters to train")
        self.device, self.dtype = first.device, first.dtype
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config["lr"])
        self.ema = EMA(net, config["ema_decay"])
        self.stream = seeded_stream(config["seed"], device=self.device)

    def as_data(self, data) -> torch.Tensor:
        return torch.as_tensor(data).to(device=self.device, dtype=self.dtype)

    def step(self, data: torch.Tensor) -> torch.Tensor:
        """One optimiser step on a minibatch drawn with replacement; the loss (a 0-d tensor)."""
        index = self.stream.randint(0, data.shape[0], (self.config["batch_size"],))
        self.optimizer.zero_grad(set_to_none=True)
        value = training_loss(self.module, self.net, data[index], self.stream, self.config)
        value.backward()
        if self.config["grad_clip"] is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config["grad_clip"])
        self.optimizer.step()
        self.ema.update(self.net)
        return value.detach()

    def run(self, data: torch.Tensor, count: int) -> torch.Tensor:
        self.net.train()
        return torch.stack([self.step(data) for _ in range(int(count))])

    def ema_net(self) -> nn.Module:
        return self.ema.averaged(self.net)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.stream.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.set_state(state["generator"])
