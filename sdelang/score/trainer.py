"""Training a score network: the loop, its configuration and the checkpoint format, written once.

The backend supplies a training state (``module.ops.training_state(module, net, config)``) that
holds the network, the optimiser (Adam or AdamW with global-norm gradient clipping, the learning
rate of :mod:`sdelang.score.lr_schedule`), the EMA of the weights and one random stream, and runs
``k`` optimiser steps at a time (torch: a Python loop; JAX: one jitted ``lax.scan``). Every random
number (minibatch indices, t, ε, projections) comes from that stream and the stream is checkpointed,
so a resumed run reproduces an uninterrupted one bit for bit. Under torchrun (WORLD_SIZE > 1) the torch
state trains data-parallel: each rank takes its slice of the same global minibatch (batch_size must
be divisible by the world size) and only rank 0 writes checkpoints (:mod:`sdelang_torch.distributed`). Losses are read back once per chunk
of ``steps_per_call`` steps, never per step. The validation loss (``fit(validation=...)``) is the
EMA network's loss under a fixed stream of its own (``VALIDATION_SALT``): it depends on the weights
only, not on how far the training stream has advanced.
"""
from __future__ import annotations

import difflib
import inspect
import math
import os
from typing import List, Optional, Tuple, Union

from .class_labels import check_num_classes, null_label
from .defaults import T_MIN, VALIDATION_SALT
from .losses import LOSSES
from .lr_schedule import LR_SCHEDULES, is_constant, lr_factor, schedule_of

PathLike = Union[str, os.PathLike]


DEFAULT_WEIGHTING = {"dsm": "sigma2", "ssm": "none"}
OPTIMIZERS = ("adam", "adamw")
PRECISIONS = ("float32", "bfloat16", "float16")


def _count(name: str, value, minimum: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def training_config(*, loss: str = "dsm", weighting: Optional[str] = None, t_min: float = T_MIN, lr: float = 2e-3,
                    batch_size: int = 256, ema_decay: float = 0.999, grad_clip: Optional[float] = 1.0,
                    seed: int = 0, loss_options: Optional[dict] = None, steps_per_call: int = 50,
                    optimizer: str = "adam", weight_decay: float = 0.0, lr_schedule: str = "constant",
                    warmup_steps: int = 0, schedule_steps: Optional[int] = None, min_lr_ratio: float = 0.0,
                    precision: str = "float32", num_classes: Optional[int] = None, label_dropout: float = 0.1,
                    **unknown) -> dict:
    """The trainer's settings, checked, as stored in a checkpoint (``weighting=None``: the loss's
    default, λ = σ_t² for DSM and none for SSM, which needs no kernel).

    optimizer     "adam" (``torch.optim.Adam``) or "adamw" (``torch.optim.AdamW``), β = (0.9, 0.999),
                  eps = 1e-8, on both backends;
    weight_decay  λ ≥ 0: for "adamw" the decoupled decay θ ← θ - lr_k λ θ; for "adam" torch's L2 term
                  g ← g + λ θ (added after gradient clipping);
    lr_schedule   "constant", "cosine" or "linear" decay to ``min_lr_ratio`` · lr over ``schedule_steps``
                  steps, after a linear warm-up of ``warmup_steps`` steps (:mod:`sdelang.score.lr_schedule`);
                  ``schedule_steps=None``: the total ``steps`` of the first ``ScoreTrainer.fit`` call;
    precision     "float32"; "bfloat16" or "float16": torch autocasts the loss's forward pass (float16 with
                  a ``GradScaler``, CUDA only); JAX runs the loss with the parameters and the batch cast
                  to that dtype (the master parameters, gradients and optimiser state stay in the net's
                  dtype, no loss scaling);
    num_classes   K for a class-conditional net: the data is a pair (x, labels) and net(x, t, y) is
                  trained with each label replaced by the null label ∅ = K with probability
                  ``label_dropout`` (so the same net is also the unconditional score, for
                  classifier-free guidance: :mod:`sdelang.score.guidance`).
    Unknown settings are a TypeError naming them."""
    if unknown:
        known = [name for name in inspect.signature(training_config).parameters if name != "unknown"]
        hints = [f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                 for name in sorted(unknown) for close in [difflib.get_close_matches(name, known, 1)]]
        raise TypeError(f"unknown training option{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
                        f"the options are {', '.join(known)}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    weighting = DEFAULT_WEIGHTING[loss] if weighting is None else weighting
    for name, value in (("batch_size", batch_size), ("steps_per_call", steps_per_call)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (float(lr) > 0 and 0 <= float(ema_decay) < 1 and float(t_min) >= 0):
        raise ValueError(f"need lr > 0, 0 ≤ ema_decay < 1 and t_min ≥ 0; got {lr}, {ema_decay}, {t_min}")
    if grad_clip is not None and not float(grad_clip) > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}")
    _choice("optimizer", optimizer, OPTIMIZERS)
    _choice("lr_schedule", lr_schedule, LR_SCHEDULES)
    _choice("precision", precision, PRECISIONS)
    if not (math.isfinite(float(weight_decay)) and float(weight_decay) >= 0):
        raise ValueError(f"weight_decay must be a finite number ≥ 0, got {weight_decay!r}")
    if not 0 <= float(min_lr_ratio) <= 1:
        raise ValueError(f"min_lr_ratio must lie in [0, 1], got {min_lr_ratio!r}")
    if not 0 <= float(label_dropout) <= 1:
        raise ValueError(f"label_dropout must lie in [0, 1], got {label_dropout!r}")
    warmup_steps = _count("warmup_steps", warmup_steps, 0)
    schedule_steps = _count("schedule_steps", schedule_steps, 1, allow_none=True)
    config = {"loss": loss, "weighting": weighting, "t_min": float(t_min), "lr": float(lr),
              "batch_size": int(batch_size), "ema_decay": float(ema_decay),
              "grad_clip": None if grad_clip is None else float(grad_clip), "seed": int(seed),
              "loss_options": dict(loss_options or {}), "steps_per_call": int(steps_per_call),
              "optimizer": optimizer, "weight_decay": float(weight_decay), "lr_schedule": lr_schedule,
              "warmup_steps": warmup_steps, "schedule_steps": schedule_steps, "min_lr_ratio": float(min_lr_ratio),
              "precision": precision, "num_classes": check_num_classes(num_classes),
              "label_dropout": float(label_dropout)}
    if schedule_steps is not None:
        check_schedule(config)
    return config


def check_schedule(config: dict) -> None:
    """A ValueError unless the schedule can be evaluated (a decaying one needs schedule_steps > warmup_steps)."""
    if config["lr_schedule"] != "constant":
        lr_factor(0, **schedule_of(config))


def batch_rows(data) -> int:
    """The number of rows of data x or of a labelled pair (x, labels)."""
    return int((data[0] if isinstance(data, tuple) else data).shape[0])


def batch_width(data) -> int:
    """The numbers per row of x (of data x or of a pair (x, labels))."""
    return math.prod((data[0] if isinstance(data, tuple) else data).shape[1:])


class LabelledScore:
    """score(x, t) = net(x, t, labels) for fixed labels; the net's ``loss_weight`` (a preconditioned
    net's) passes through."""

    def __init__(self, net, labels):
        self.net, self.labels = net, labels
        if hasattr(net, "loss_weight"):
            self.loss_weight = net.loss_weight

    def __call__(self, x, t):
        return self.net(x, t, self.labels)


def dropped_labels(ops, labels, stream, probability: float, num_classes: int, dtype):
    """Each label replaced by the null label ∅ = K with probability p (one uniform per row)."""
    if probability == 0:
        return labels
    u = stream.uniform(tuple(labels.shape), 0.0, 1.0, dtype)
    return ops.where(u < probability, ops.full(labels.shape, null_label(num_classes), like=labels), labels)


def training_loss(module, net, batch, stream, config: dict):
    """The configured loss of ``net`` on the batch x0 (or, for a conditional net, the pair (x0, labels)
    with label dropout drawn first), drawing from ``stream``."""
    score = net
    if config.get("num_classes") is not None:
        batch, labels = batch
        score = LabelledScore(net, dropped_labels(module.ops, labels, stream, config["label_dropout"],
                                                  config["num_classes"], module.ops.dtype_of(batch)))
    return LOSSES[config["loss"]](module, batch, t_min=config["t_min"], weighting=config["weighting"], stream=stream,
                                  score=score, **config["loss_options"])


class ScoreTrainer:
    """Adam or AdamW on a score-matching loss (:mod:`sdelang.score.losses`) with a learning-rate
    schedule, gradient clipping, mixed precision, an EMA of weights, a validation loss and resumable
    checkpoints, for a torch or JAX module (``module.ops``); ``settings``: :func:`training_config`."""

    def __init__(self, module, net, **settings):
        self.config = training_config(**settings)
        self.module = module.with_score(None)
        self.ops = module.ops
        self.state = self.ops.training_state(self.module, net, self.config)
        self.step = 0
        self.losses: List[float] = []
        self.validation_losses: List[Tuple[int, float]] = []
        #: What the owner needs to rebuild the network from a checkpoint (ScoreModel: the data's shape).
        self.metadata: dict = {}

    @property
    def net(self):
        return self.state.net

    def ema_net(self):
        """The network carrying the EMA weights (the training network is untouched)."""
        return self.state.ema_net()

    def learning_rate(self) -> float:
        """The learning rate of the next optimiser step (read from the optimiser's state)."""
        return float(self.state.learning_rate())

    def loss(self, x0):
        """The configured loss of the current network on x0 (drawing from the trainer's stream)."""
        return training_loss(self.module, self.state.net, self.ops.asarray(x0), self.state.stream, self.config)

    def validation_loss(self, data) -> float:
        """The configured loss of the EMA network (evaluation mode, no gradients, the net's own dtype)
        on all of ``data``, in minibatches of ``batch_size`` rows in order, weighted by their sizes,
        with the fixed stream ``ops.stream(seed, salt=VALIDATION_SALT)`` drawn afresh at each call:
        equal weights give equal values, whatever the training stream has done."""
        data = self.state.as_data(data)
        rows, size = batch_rows(data), self.config["batch_size"]
        if rows < 1:
            raise ValueError("the validation data is empty")
        net = self.ops.eval_net(self.ema_net())
        stream = self.ops.stream(self.config["seed"], salt=VALIDATION_SALT, device=self.ops.net_device(net))
        total = 0.0
        with self.ops.no_grad(), self.ops.threads(size * batch_width(data)):
            for start in range(0, rows, size):
                batch = self.state.take(data, slice(start, min(rows, start + size)))
                value, stream = self.state.evaluate(net, batch, stream)
                total += float(value) * batch_rows(batch)
        return total / rows

    def train_steps(self, data, target: int) -> List[float]:
        """Up to ``steps_per_call`` optimiser steps (never beyond the total ``target``); their losses."""
        count = min(self.config["steps_per_call"], int(target) - self.step)
        if count <= 0:
            return []
        if self.config["lr_schedule"] != "constant" and self.config["schedule_steps"] is None:
            raise ValueError(f"the {self.config['lr_schedule']!r} schedule needs schedule_steps "
                             "(set by fit from its total steps, or given to the trainer)")
        with self.ops.threads(self.config["batch_size"] * batch_width(data)):
            values = self.ops.to_floats(self.state.run(data, count))
        self.step += count
        self.losses.extend(values)
        return values

    def fit(self, data, steps: int, *, progress: bool = True, checkpoint: Optional[PathLike] = None,
            checkpoint_every: int = 500, resume: bool = True, validation=None,
            validate_every: Optional[int] = None) -> List[float]:
        """Train until ``self.step == steps`` (a TOTAL count: a trainer at step k does steps - k more).
        With ``checkpoint``: resume from it first when it exists (``resume``) and this trainer has not
        stepped, save every ``checkpoint_every`` steps and at the end. ``schedule_steps=None`` becomes
        ``steps`` here (after a resume, the checkpoint's value), stored in the config and so in the
        checkpoint; to spread one schedule over several fit calls, give schedule_steps to the trainer.
        With ``validation`` data: :meth:`validation_loss` after every ``validate_every`` steps
        (None: ceil(steps / 10), ten evaluations per run) and after the last step, appended to
        ``validation_losses`` as (step, value) and shown in the progress bar. Returns all losses so far."""
        checkpoint_every = _count("checkpoint_every", checkpoint_every, 1)
        validate_every = _count("validate_every", validate_every, 1, allow_none=True)
        if checkpoint is not None and resume and self.step == 0 and os.path.exists(checkpoint):
            self.load(checkpoint)
        steps = _count("steps", steps, 0)
        if self.config["schedule_steps"] is None and steps > self.step:
            check_schedule({**self.config, "schedule_steps": steps})
            self.config["schedule_steps"] = steps
        data = self.state.as_data(data)
        if validation is not None:
            validation = self.state.as_data(validation)
            validate_every = int(validate_every or max(1, math.ceil(steps / 10)))
        remaining = max(0, steps - self.step)
        bar = None
        if progress and remaining:
            from tqdm.auto import tqdm

            bar = tqdm(total=remaining, desc=f"{self.config['loss']} training ({self.ops.name})", leave=False)
        while self.step < steps:
            target = steps
            if checkpoint is not None:
                target = min(target, (self.step // checkpoint_every + 1) * checkpoint_every)
            if validation is not None:
                target = min(target, (self.step // validate_every + 1) * validate_every)
            new = self.train_steps(data, target)
            if validation is not None and (self.step % validate_every == 0 or self.step == steps):
                self.validation_losses.append((self.step, self.validation_loss(validation)))
            if bar is not None:
                bar.update(len(new))
                bar.set_postfix(self._postfix(new[-1]))
            if checkpoint is not None and self.step % checkpoint_every == 0:
                self.save(checkpoint)
        if bar is not None:
            bar.close()
        if checkpoint is not None and remaining:
            self.save(checkpoint)
        return self.losses

    def _postfix(self, loss: float) -> dict:
        postfix = {"loss": f"{loss:.4f}"}
        if self.validation_losses:
            postfix["val"] = f"{self.validation_losses[-1][1]:.4f}"
        if not is_constant(self.config):
            postfix["lr"] = f"{self.learning_rate():.2e}"
        return postfix

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"training": self.state.state_dict(), "step": self.step, "losses": list(self.losses),
                "validation_losses": [list(item) for item in self.validation_losses],
                "metadata": dict(self.metadata),
                "config": dict(self.config), "backend": self.ops.name}

    def load_state_dict(self, state: dict) -> None:
        if state.get("backend", self.ops.name) != self.ops.name:
            raise ValueError(f"a {state['backend']} checkpoint cannot be loaded by the {self.ops.name} backend")
        saved = state.get("config", {}).get("schedule_steps")
        if self.config["schedule_steps"] is None:
            self.config["schedule_steps"] = saved
        elif saved is not None and saved != self.config["schedule_steps"]:
            raise ValueError(f"the checkpoint's schedule_steps={saved} differs from this trainer's "
                             f"{self.config['schedule_steps']}")
        self.state.load_state_dict(state["training"])
        self.step = int(state["step"])
        self.losses = list(state["losses"])
        self.validation_losses = [(int(step), float(value)) for step, value in state.get("validation_losses", [])]
        self.metadata = dict(state.get("metadata", {}))

    def save(self, path: PathLike) -> None:
        """The state dict written to a temporary file, then renamed over ``path``, so an interrupted
        save leaves the old checkpoint intact. Data-parallel (torchrun): rank 0 writes, the other
        ranks wait for it (their state is identical and independent of the world size, so the
        checkpoint resumes on any number of processes)."""
        if self.ops.is_main_process():
            tmp = f"{os.fspath(path)}.tmp"
            self.ops.save(self.state_dict(), tmp)
            os.replace(tmp, path)
        self.ops.barrier()

    def load(self, path: PathLike) -> None:
        self.load_state_dict(self.ops.load(path))

    @classmethod
    def from_checkpoint(cls, module, net, path: PathLike) -> "ScoreTrainer":
        """A trainer built from a checkpoint's own config, with its state restored."""
        state = module.ops.load(path)
        trainer = cls(module, net, **state["config"])
        trainer.load_state_dict(state)
        return trainer
