"""The torch half of the trainer (:mod:`sdelang.score.trainer`): network, Adam/AdamW with the
learning-rate schedule (``LambdaLR``), autocast and ``GradScaler``, EMA, stream; under torchrun
(WORLD_SIZE > 1) the network trains inside ``DistributedDataParallel`` on a per-rank slice of each
global minibatch (:mod:`sdelang_torch.distributed`)."""
from __future__ import annotations

import contextlib
import copy
from typing import Dict

import torch
from torch import nn

from sdelang.score.ema import ema_decay
from sdelang.score.lr_schedule import lr_factor, schedule_of
from sdelang.score.trainer import batch_rows, training_loss

from . import distributed
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


AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class TorchTrainingState:
    """Adam or AdamW (``torch.optim.Adam`` / ``AdamW``, ``weight_decay`` as there) with global-norm
    clipping on the configured loss, the learning rate lr · f(k) of :mod:`sdelang.score.lr_schedule`
    through ``LambdaLR``, the loss's forward pass under ``torch.autocast`` for a bfloat16 / float16
    ``precision`` (float16 with a ``GradScaler``, CUDA only), the EMA and one generator on the
    network's device; ``run`` takes k steps and returns their losses as one tensor (no host
    synchronisation inside the chunk, except the GradScaler's inf check under float16)."""

    def __init__(self, module, net: nn.Module, config: dict):
        if not isinstance(net, nn.Module):
            raise TypeError(f"a torch score net to train must be an nn.Module, got {type(net).__name__}")
        self.module, self.net, self.config = module, net, config
        first = next(iter(net.parameters()), None)
        if first is None:
            raise ValueError("the score network has no parameters to train")
        self.device, self.dtype = first.device, first.dtype
        precision = config["precision"]
        if precision == "float16" and self.device.type != "cuda":
            raise ValueError(f"precision='float16' (autocast with a GradScaler) needs a CUDA network; this one is on "
                             f"{self.device.type}: use precision='bfloat16' there")
        optimizer = torch.optim.AdamW if config["optimizer"] == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(net.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._factor)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "float16" else None
        self.ema = EMA(net, config["ema_decay"])
        self.stream = seeded_stream(config["seed"], device=self.device)
        self.rank, self.world_size = distributed.world(self.device)
        self.train_net, self.train_stream, self.rows = net, self.stream, slice(None)
        if self.world_size > 1:
            self.rows = distributed.local_rows(config["batch_size"], self.rank, self.world_size)
            self.train_net = distributed.data_parallel(net, self.device)
            self.train_stream = distributed.SlicedStream(self.stream, self.rank, self.world_size,
                                                         config["batch_size"] // self.world_size)

    def _factor(self, k: int) -> float:
        """f(k) of the schedule; before ``fit`` has set schedule_steps only k ≤ warmup_steps is asked for
        (``LambdaLR``'s construction), where f does not depend on it."""
        settings = schedule_of(self.config)
        if settings["schedule_steps"] is None and settings["schedule"] != "constant" and k <= settings["warmup_steps"]:
            settings["schedule_steps"] = settings["warmup_steps"] + 1
        return lr_factor(k, **settings)

    def as_data(self, data):
        """x in the net's dtype on its device, or the pair (x, labels as int64) of a conditional net."""
        if isinstance(data, tuple):
            x, labels = data
            return self.as_data(x), torch.as_tensor(labels, dtype=torch.long, device=self.device)
        return torch.as_tensor(data).to(device=self.device, dtype=self.dtype)

    @staticmethod
    def take(data, rows):
        """The rows ``rows`` (indices or a slice) of the data (x, or both of (x, labels)): the one
        place minibatches are cut."""
        if isinstance(data, tuple):
            return tuple(part[rows] for part in data)
        return data[rows]

    def autocast(self):
        dtype = AUTOCAST_DTYPES.get(self.config["precision"])
        return contextlib.nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def step(self, data: torch.Tensor) -> torch.Tensor:
        """One optimiser step on a minibatch drawn with replacement; the loss (a 0-d tensor). Under
        DDP: the global minibatch's indices drawn on every rank alike, this rank's slice of them,
        t and ε drawn at the global batch shape and sliced (``SlicedStream``), the loss this slice's
        mean (DDP averages the gradients over the ranks)."""
        index = self.stream.randint(0, batch_rows(data), (self.config["batch_size"],))[self.rows]
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            value = training_loss(self.module, self.train_net, self.take(data, index), self.train_stream, self.config)
        if value.dtype != self.dtype:
            value = value.to(self.dtype)
        if self.scaler is None:
            value.backward()
            if self.config["grad_clip"] is not None:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.config["grad_clip"])
            self.optimizer.step()
        else:
            self.scaler.scale(value).backward()
            if self.config["grad_clip"] is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.net.parameters(), self.config["grad_clip"])
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.scheduler.step()
        self.ema.update(self.net)
        return value.detach()

    def run(self, data: torch.Tensor, count: int) -> torch.Tensor:
        """k steps; their losses (under DDP the global-batch losses: the slice losses averaged over
        the ranks, one all-reduce per chunk)."""
        self.net.train()
        return distributed.mean_over_ranks(torch.stack([self.step(data) for _ in range(int(count))]))

    @torch.no_grad()
    def evaluate(self, net: nn.Module, x0: torch.Tensor, stream):
        """(the configured loss of ``net`` on x0 in the net's own dtype, the stream after its draws)."""
        return training_loss(self.module, net, x0, stream, self.config), stream

    def learning_rate(self) -> float:
        """The learning rate the next step uses."""
        return self.optimizer.param_groups[0]["lr"]

    def ema_net(self) -> nn.Module:
        return self.ema.averaged(self.net)

    def state_dict(self) -> dict:
        state = {"net": self.net.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "generator": self.stream.get_state()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.stream.set_state(state["generator"])
