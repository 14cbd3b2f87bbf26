"""A notebook-sized facade: a score-based generative model driven by any sdelang spec, on either
backend (written once; ``sdelang_torch.ScoreModel`` and ``sdelang_jax.ScoreModel`` fix the backend).

    model = ScoreModel("examples/vp.sde", backend="torch").fit(data, steps=2000)
    result = model.sample(2000, method="pc", steps=500)   # result.samples, result.nfe
    nll = -model.log_prob(x).mean();  bpd = model.bits_per_dim(x).mean()

Likelihoods are in nats (log p_{t0 + t_min} through the probability-flow ODE, the spec's prior at
t1); bits per dimension = -log p(x) / (d ln 2). For continuous toy data there is no dequantisation
term (that correction belongs to discrete data such as 8-bit images).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .defaults import ODE_ATOL, ODE_RTOL, T_MIN
from .likelihood import log_prob
from .losses import has_diagonal_kernel
from .result import SampleResult
from .samplers import default_steps, sample
from .trainer import ScoreTrainer


def compiled_module(spec, params: dict, backend: Optional[str]):
    """A compiled module from a .sde path, an sdelang Model, or an already compiled module."""
    if hasattr(spec, "ops") and hasattr(spec, "drift_fn"):
        if params:
            raise TypeError("parameter overrides need a spec or a Model, not a compiled module")
        if backend is not None and spec.ops.name != backend:
            raise TypeError(f"a {spec.ops.name} module cannot drive a {backend} ScoreModel")
        return spec
    if backend is None:
        raise TypeError("pass backend='torch' or backend='jax' (or use sdelang_torch/sdelang_jax.ScoreModel)")
    if isinstance(spec, (str, os.PathLike, Path)):
        import sdelang

        return sdelang.load(os.fspath(spec), **params).compile(backend)
    if hasattr(spec, "compile"):
        return spec.compile(backend, **params)
    raise TypeError(f"expected a .sde path, a sdelang Model or a compiled module, got {type(spec).__name__}")


class ScoreModel:
    """A score network for ``spec``'s SDE: ``fit`` (score matching), ``sample`` (EM / PC / ODE),
    ``log_prob`` (nats) and ``bits_per_dim``. ``net=None`` builds the backend's ``ScoreMLP(dim,
    hidden, depth)`` seeded by ``seed``; ``precondition="auto"`` wraps it in the backend's
    ``KernelPreconditionedScore`` when the model's perturbation kernel is diagonal (True forces,
    False never). A user net(x, t) replaces the default and is used as it is unless precondition=True.
    ``device`` (torch): where the network, the data, the samples and the likelihoods live."""

    backend: Optional[str] = None

    def __init__(self, spec, net=None, *, backend: Optional[str] = None, loss: str = "dsm",
                 weighting: Optional[str] = None, t_min: float = T_MIN, precondition: Union[str, bool] = "auto",
                 hidden: int = 128, depth: int = 3, seed: int = 0, dtype=None, device=None, **params):
        self.module = compiled_module(spec, params, backend or self.backend).with_score(None)
        self.ops = self.module.ops
        self.dim = self.module.dimension
        self.dtype = self.ops.default_dtype if dtype is None else dtype
        self.device = device
        if net is None:
            if self.dim is None:
                raise ValueError("the state dimension is unknown: pass d=... or your own net")
            net = self.ops.default_score_net(self.dim, hidden=hidden, depth=depth, seed=seed, dtype=self.dtype)
            precondition = has_diagonal_kernel(self.module) if precondition == "auto" else precondition
        elif precondition == "auto":
            precondition = False
        if precondition:
            if not has_diagonal_kernel(self.module):
                raise ValueError("preconditioning needs a diagonal perturbation kernel")
            net = self.ops.preconditioned(net, self.module)
        self.initial_net = self.ops.cast_net(net, self.dtype, device)
        self.loss, self.weighting, self.t_min = loss, weighting, float(t_min)
        self.trainer: Optional[ScoreTrainer] = None

    # ---------------------------------------------------------------- training
    def fit(self, data, steps: int = 2000, *, batch_size: int = 256, lr: float = 2e-3, ema_decay: float = 0.999,
            seed: int = 0, checkpoint=None, checkpoint_every: int = 500, progress: bool = True,
            resume: bool = True, **loss_options) -> "ScoreModel":
        """Train until ``steps`` total steps (resuming from ``checkpoint`` when it exists)."""
        if self.trainer is None:
            net = self.initial_net
            if self.ops.is_preconditioned(net):
                net = self.ops.with_data_std(net, float(np.std(self.ops.to_numpy(data))))
            self.trainer = ScoreTrainer(self.module, net, loss=self.loss, weighting=self.weighting, t_min=self.t_min,
                                        lr=lr, batch_size=batch_size, ema_decay=ema_decay, seed=seed,
                                        loss_options=loss_options)
        self.trainer.fit(data, steps, progress=progress, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every, resume=resume)
        return self

    @property
    def net(self):
        """The network being trained (the initial one before ``fit``)."""
        return self.initial_net if self.trainer is None else self.trainer.net

    @property
    def losses(self):
        return [] if self.trainer is None else self.trainer.losses

    @property
    def ema_net(self):
        """The EMA of the network's weights (the network itself before any training)."""
        return self.net if self.trainer is None else self.trainer.ema_net()

    def score_net(self, use_ema: bool = True):
        """The network used for sampling and likelihoods, in evaluation mode."""
        return self.ops.eval_net(self.ema_net if use_ema else self.net)

    def save(self, path) -> None:
        if self.trainer is None:
            raise RuntimeError("nothing to save before fit()")
        self.trainer.save(path)

    def load(self, path) -> "ScoreModel":
        """Restore a checkpoint written by ``save`` / ``fit(checkpoint=...)`` (net, EMA, optimiser,
        step, random stream) into a trainer built from the checkpoint's config."""
        self.trainer = ScoreTrainer.from_checkpoint(self.module, self.initial_net, path)
        return self

    # ---------------------------------------------------------------- sampling and likelihood
    def sample(self, n: int, method: str = "em", steps: Optional[int] = None, *, seed=0, use_ema: bool = True,
               **options) -> SampleResult:
        """n samples at t0 + t_min by ``method`` (:func:`sdelang.score.samplers.sample`: "em", "pc",
        "ode", "ddim", "dpm-solver", "dpm-solver++", "deis", "heun", "ancestral"; ``order=``,
        ``grid=`` for the few-step ones); ``steps`` defaults to the method's own (500 for em/pc,
        20 for the few-step samplers) and is ignored by the adaptive "ode"."""
        if method != "ode":
            options["steps"] = default_steps(method) if steps is None else steps
        options.setdefault("t_min", self.t_min)
        options.setdefault("dtype", self.dtype)
        options.setdefault("device", self.device)
        return sample(self.module, n, method, seed=seed, score=self.score_net(use_ema), **options)

    def log_prob(self, x, *, exact: bool = True, rtol: float = ODE_RTOL, atol: float = ODE_ATOL,
                 use_ema: bool = True, t_min: Optional[float] = None, seed=0, **options):
        """log p(x) in nats, shape (batch,), through the probability-flow ODE from t0 + t_min
        (Hutchinson's divergence estimate with a fixed Rademacher vector when ``exact=False``)."""
        x = self.ops.asarray(x, dtype=self.dtype, device=self.device)
        module = self.module.with_score(self.score_net(use_ema))
        t_min = self.t_min if t_min is None else t_min
        with self.ops.no_grad():
            return log_prob(module, x, exact=exact, rtol=rtol, atol=atol, t_min=t_min, seed=seed, **options)

    def bits_per_dim(self, x, **options):
        """-log p(x) / (d ln 2), shape (batch,)."""
        x = self.ops.asarray(x, dtype=self.dtype, device=self.device)
        return -self.log_prob(x, **options) / (x.shape[-1] * math.log(2))
