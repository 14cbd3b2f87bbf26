"""Training a score network: the loop, its configuration and the checkpoint format, written once.

The backend supplies a training state (``module.ops.training_state(module, net, config)``) that
holds the network, the optimiser (Adam with global-norm gradient clipping), the EMA of the weights
and one random stream, and runs ``k`` optimiser steps at a time (torch: a Python loop; JAX: one
jitted ``lax.scan``). Every random number (minibatch indices, t, ε, projections) comes from that
stream and the stream is checkpointed, so a resumed run reproduces an uninterrupted one bit for bit.
Losses are read back once per chunk of ``steps_per_call`` steps, never per step.
"""
from __future__ import annotations

import math
import os
from typing import List, Optional, Union

from .defaults import T_MIN
from .losses import LOSSES

PathLike = Union[str, os.PathLike]


DEFAULT_WEIGHTING = {"dsm": "sigma2", "ssm": "none"}


def training_config(*, loss: str = "dsm", weighting: Optional[str] = None, t_min: float = T_MIN, lr: float = 2e-3,
                    batch_size: int = 256, ema_decay: float = 0.999, grad_clip: Optional[float] = 1.0,
                    seed: int = 0, loss_options: Optional[dict] = None, steps_per_call: int = 50) -> dict:
    """The trainer's settings, checked, as stored in a checkpoint (``weighting=None``: the loss's
    default, λ = σ_t² for DSM and none for SSM, which needs no kernel)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    weighting = DEFAULT_WEIGHTING[loss] if weighting is None else weighting
    for name, value in (("batch_size", batch_size), ("steps_per_call", steps_per_call)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (float(lr) > 0 and 0 <= float(ema_decay) < 1 and float(t_min) >= 0):
        raise ValueError(f"need lr > 0, 0 ≤ ema_decay < 1 and t_min ≥ 0; got {lr}, {ema_decay}, {t_min}")
    return {"loss": loss, "weighting": weighting, "t_min": float(t_min), "lr": float(lr),
            "batch_size": int(batch_size), "ema_decay": float(ema_decay),
            "grad_clip": None if grad_clip is None else float(grad_clip), "seed": int(seed),
            "loss_options": dict(loss_options or {}), "steps_per_call": int(steps_per_call)}


def training_loss(module, net, x0, stream, config: dict):
    """The configured loss of ``net`` on the batch x0, drawing from ``stream``."""
    return LOSSES[config["loss"]](module, x0, t_min=config["t_min"], weighting=config["weighting"], stream=stream,
                                  score=net, **config["loss_options"])


class ScoreTrainer:
    """Adam on a score-matching loss (:mod:`sdelang.score.losses`) with gradient clipping, an EMA
    of weights and resumable checkpoints, for a torch or JAX module (``module.ops``)."""

    def __init__(self, module, net, **settings):
        self.config = training_config(**settings)
        self.module = module.with_score(None)
        self.ops = module.ops
        self.state = self.ops.training_state(self.module, net, self.config)
        self.step = 0
        self.losses: List[float] = []

    @property
    def net(self):
        return self.state.net

    def ema_net(self):
        """The network carrying the EMA weights (the training network is untouched)."""
        return self.state.ema_net()

    def loss(self, x0):
        """The configured loss of the current network on x0 (drawing from the trainer's stream)."""
        return training_loss(self.module, self.state.net, self.ops.asarray(x0), self.state.stream, self.config)

    def train_steps(self, data, target: int) -> List[float]:
        """Up to ``steps_per_call`` optimiser steps (never beyond the total ``target``); their losses."""
        count = min(self.config["steps_per_call"], int(target) - self.step)
        if count <= 0:
            return []
        with self.ops.threads(self.config["batch_size"] * math.prod(data.shape[1:])):
            values = self.ops.to_floats(self.state.run(data, count))
        self.step += count
        self.losses.extend(values)
        return values

    def fit(self, data, steps: int, *, progress: bool = True, checkpoint: Optional[PathLike] = None,
            checkpoint_every: int = 500, resume: bool = True) -> List[float]:
        """Train until ``self.step == steps`` (a TOTAL count: a trainer at step k does steps - k more).
        With ``checkpoint``: resume from it first when it exists (``resume``) and this trainer has not
        stepped, save every ``checkpoint_every`` steps and at the end. Returns all losses so far."""
        if int(checkpoint_every) < 1:
            raise ValueError(f"checkpoint_every must be ≥ 1, got {checkpoint_every}")
        if checkpoint is not None and resume and self.step == 0 and os.path.exists(checkpoint):
            self.load(checkpoint)
        data = self.state.as_data(data)
        steps = int(steps)
        remaining = max(0, steps - self.step)
        bar = None
        if progress and remaining:
            from tqdm.auto import tqdm

            bar = tqdm(total=remaining, desc=f"{self.config['loss']} training ({self.ops.name})", leave=False)
        while self.step < steps:
            target = steps
            if checkpoint is not None:
                target = min(steps, (self.step // checkpoint_every + 1) * checkpoint_every)
            new = self.train_steps(data, target)
            if bar is not None:
                bar.update(len(new))
                bar.set_postfix(loss=f"{new[-1]:.4f}")
            if checkpoint is not None and self.step % checkpoint_every == 0:
                self.save(checkpoint)
        if bar is not None:
            bar.close()
        if checkpoint is not None and remaining:
            self.save(checkpoint)
        return self.losses

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"training": self.state.state_dict(), "step": self.step, "losses": list(self.losses),
                "config": dict(self.config), "backend": self.ops.name}

    def load_state_dict(self, state: dict) -> None:
        if state.get("backend", self.ops.name) != self.ops.name:
            raise ValueError(f"a {state['backend']} checkpoint cannot be loaded by the {self.ops.name} backend")
        self.state.load_state_dict(state["training"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])

    def save(self, path: PathLike) -> None:
        """The state dict written to a temporary file, then renamed over ``path``, so an interrupted
        save leaves the old checkpoint intact."""
        tmp = f"{os.fspath(path)}.tmp"
        self.ops.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: PathLike) -> None:
        self.load_state_dict(self.ops.load(path))

    @classmethod
    def from_checkpoint(cls, module, net, path: PathLike) -> "ScoreTrainer":
        """A trainer built from a checkpoint's own config, with its state restored."""
        state = module.ops.load(path)
        trainer = cls(module, net, **state["config"])
        trainer.load_state_dict(state)
        return trainer
