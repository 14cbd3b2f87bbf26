"""A notebook-sized facade: a score-based generative model driven by any sdelang spec.

    model = ScoreModel("examples/vp.sde").fit(data, steps=2000)
    result = model.sample(2000, method="pc", steps=500)   # result.samples, result.nfe
    nll = -model.log_prob(x).mean();  bpd = model.bits_per_dim(x).mean()

Likelihoods are in nats (log p_{t0 + t_min} through the probability-flow ODE, the spec's prior at
t1); bits per dimension = -log p(x) / (d ln 2). For continuous toy data there is no dequantisation
term (that correction belongs to discrete data such as 8-bit images).
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from .nets import ScoreMLP
from .score_sampling import SampleResult, sample, with_score
from .score_training import ScoreTrainer, has_diagonal_kernel


class KernelPreconditionedScore(nn.Module):
    """s(x, t) = net(c_in x, t) / σ_t with c_in = 1 / √(a_t² σ_data² + σ_t²), where the diagonal
    perturbation kernel is x_t | x_0 ~ N(a_t x_0 + b_t, σ_t²): the network predicts -ε and sees
    inputs of unit scale at every t (as in NCSN/EDM preconditioning), for any affine spec.
    ``data_std`` (a buffer, so it is checkpointed) is σ_data."""

    def __init__(self, net: nn.Module, module, data_std: float = 1.0):
        super().__init__()
        if not has_diagonal_kernel(module):
            raise ValueError("KernelPreconditionedScore needs a diagonal perturbation kernel")
        self.net = net
        object.__setattr__(self, "kernel_module", module)  # not a submodule: not saved, not copied
        self.register_buffer("data_std", torch.tensor(float(data_std)))

    def __deepcopy__(self, memo):
        clone = KernelPreconditionedScore(copy.deepcopy(self.net, memo), self.kernel_module)
        clone.data_std = self.data_std.clone()
        return clone

    def coefficients(self, x: torch.Tensor, t):
        """(a_t, σ_t), broadcastable to x, from the module's generated kernel (in float64)."""
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        ones = torch.ones(x.shape, dtype=torch.float64, device=x.device)
        mean_one, std = self.kernel_module.perturbation_kernel(ones, t)
        mean_zero, _ = self.kernel_module.perturbation_kernel(torch.zeros_like(ones), t)
        return (mean_one - mean_zero).to(x.dtype), std.to(x.dtype)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        a, std = self.coefficients(x, t)
        c_in = torch.rsqrt(a ** 2 * self.data_std.to(x.dtype) ** 2 + std ** 2)
        return self.net(c_in * x, t) / std


def compiled_module(spec, params: dict):
    """A compiled torch module from a .sde path, an sdelang Model, or an already compiled module."""
    if isinstance(spec, (str, os.PathLike, Path)):
        import sdelang

        return sdelang.load(os.fspath(spec), **params).compile("torch")
    if isinstance(spec, nn.Module) and hasattr(spec, "nets_by_name"):
        if params:
            raise TypeError("parameter overrides need a spec or a Model, not a compiled module")
        return spec
    if hasattr(spec, "compile"):
        return spec.compile("torch", **params)
    raise TypeError(f"expected a .sde path, a sdelang Model or a compiled module, got {type(spec).__name__}")


class ScoreModel:
    """A score network for ``spec``'s SDE: ``fit`` (score matching), ``sample`` (EM / PC / ODE),
    ``log_prob`` (nats) and ``bits_per_dim``. ``net=None`` builds ``ScoreMLP(dim, hidden, depth)``
    (seeded by ``seed``); ``precondition="auto"`` wraps it in :class:`KernelPreconditionedScore`
    when the model's perturbation kernel is diagonal (True forces, False never). A user ``nn.Module``
    net(x, t) replaces the default and is used as it is unless precondition=True."""

    def __init__(self, spec, net: Optional[nn.Module] = None, *, loss: str = "dsm", weighting: str = "sigma2",
                 t_min: float = 1e-3, precondition: Union[str, bool] = "auto", hidden: int = 128, depth: int = 3,
                 seed: int = 0, dtype=torch.float32, **params):
        self.module = compiled_module(spec, params)
        self.dim = self.module.dimension
        if net is None:
            if self.dim is None:
                raise ValueError("the state dimension is unknown: pass d=... or your own net")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = ScoreMLP(self.dim, hidden=hidden, depth=depth)
            precondition = has_diagonal_kernel(self.module) if precondition == "auto" else precondition
        elif precondition == "auto":
            precondition = False
        if precondition:
            net = KernelPreconditionedScore(net, self.module)
        self.net = net.to(dtype)
        self.dtype = dtype
        self.loss, self.weighting, self.t_min = loss, weighting, float(t_min)
        self.module.attach("score", self.net)
        self.trainer: Optional[ScoreTrainer] = None

    # ---------------------------------------------------------------- training
    def fit(self, data, steps: int = 2000, *, batch_size: int = 256, lr: float = 2e-3, ema_decay: float = 0.999,
            seed: int = 0, checkpoint=None, checkpoint_every: int = 500, progress: bool = True,
            resume: bool = True, **loss_options) -> "ScoreModel":
        """Train until ``steps`` total steps (resuming from ``checkpoint`` when it exists)."""
        data = torch.as_tensor(np.asarray(data), dtype=self.dtype)
        if self.trainer is None:
            if isinstance(self.net, KernelPreconditionedScore):
                self.net.data_std.fill_(float(data.std()))
            self.trainer = ScoreTrainer(self.module, self.net, loss=self.loss, weighting=self.weighting,
                                        t_min=self.t_min, lr=lr, batch_size=batch_size, ema_decay=ema_decay,
                                        seed=seed, loss_options=loss_options)
        self.trainer.fit(data, steps, progress=progress, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every, resume=resume)
        return self

    @property
    def losses(self):
        return [] if self.trainer is None else self.trainer.losses

    @property
    def ema_net(self) -> nn.Module:
        """The EMA of the network's weights (the network itself before any training)."""
        return self.net if self.trainer is None else self.trainer.ema_net()

    def score_net(self, use_ema: bool = True) -> nn.Module:
        net = self.ema_net if use_ema else self.net
        return net.eval()

    def save(self, path) -> None:
        if self.trainer is None:
            raise RuntimeError("nothing to save before fit()")
        self.trainer.save(path)

    def load(self, path) -> "ScoreModel":
        """Restore a checkpoint written by ``save`` / ``fit(checkpoint=...)`` (net, EMA, optimiser, step)."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        c = state["config"]
        self.trainer = ScoreTrainer(self.module, self.net, loss=c["loss"], weighting=c["weighting"], t_min=c["t_min"],
                                    lr=c["lr"], batch_size=c["batch_size"], ema_decay=c["ema_decay"],
                                    grad_clip=c["grad_clip"], seed=c["seed"], loss_options=c["loss_options"])
        self.trainer.load_state_dict(state)
        return self

    # ---------------------------------------------------------------- sampling and likelihood
    def sample(self, n: int, method: str = "em", steps: int = 500, *, seed: int = 0, use_ema: bool = True,
               **options) -> SampleResult:
        """n samples at t0 + t_min by ``method`` ("em", "pc", "ode"); ``steps`` is ignored by "ode"."""
        if method != "ode":
            options["steps"] = steps
        options.setdefault("t_min", self.t_min)
        return sample(self.module, n, method, seed=seed, score=self.score_net(use_ema), dtype=self.dtype, **options)

    def log_prob(self, x, *, exact: bool = True, rtol: float = 1e-5, atol: float = 1e-5, use_ema: bool = True,
                 **options) -> torch.Tensor:
        """log p(x) in nats, shape (batch,), through the probability-flow ODE from t0 + t_min;
        ``prior`` (a log-density at t1) defaults to the spec's prior."""
        x = torch.as_tensor(np.asarray(x), dtype=self.dtype)
        flow = with_score(self.module.probability_flow(), self.score_net(use_ema))
        options.setdefault("t_min", self.t_min)
        options.setdefault("prior", self.module.prior_log_prob)
        with torch.no_grad():
            return flow.log_prob(x, exact=exact, rtol=rtol, atol=atol, **options)

    def bits_per_dim(self, x, **options) -> torch.Tensor:
        """-log p(x) / (d ln 2), shape (batch,)."""
        x = torch.as_tensor(np.asarray(x), dtype=self.dtype)
        return -self.log_prob(x, **options) / (x.shape[-1] * math.log(2))
