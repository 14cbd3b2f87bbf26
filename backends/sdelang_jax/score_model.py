"""A notebook-sized facade: a score-based generative model driven by any sdelang spec (JAX).

    model = ScoreModel("examples/vp.sde").fit(data, steps=2000)
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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .nets import ScoreMLP
from .runtime import CompiledModel
from .score_sampling import SampleResult, sample
from .score_training import ScoreTrainer, has_diagonal_kernel, kernel_wide, read_checkpoint, with_score


class KernelPreconditionedScore(eqx.Module):
    """s(x, t) = net(c_in x, t) / σ_t with c_in = 1 / √(a_t² σ_data² + σ_t²), where the diagonal
    perturbation kernel is x_t | x_0 ~ N(a_t x_0 + b_t, σ_t²): the network predicts -ε and sees
    inputs of unit scale at every t (as in NCSN/EDM preconditioning), for any affine spec.
    ``data_std`` (σ_data) is an array leaf behind ``stop_gradient``: checkpointed, never trained."""

    net: eqx.Module
    kernel_module: CompiledModel
    data_std: jax.Array

    def __init__(self, net, module, data_std: float = 1.0):
        if not has_diagonal_kernel(module):
            raise ValueError("KernelPreconditionedScore needs a diagonal perturbation kernel")
        self.net = net
        self.kernel_module = with_score(module, None)
        dtype = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))[0].dtype
        self.data_std = jnp.asarray(data_std, dtype)

    def coefficients(self, x, t):
        """(a_t, σ_t), broadcastable to x, from the module's generated kernel (in float64 when x64
        is enabled, see ``score_training.kernel_wide``)."""
        t = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:-1])
        mean_one, std = kernel_wide(self.kernel_module, jnp.ones_like(x), t)
        mean_zero, _ = kernel_wide(self.kernel_module, jnp.zeros_like(x), t)
        return mean_one - mean_zero, std.astype(x.dtype)

    def __call__(self, x, t):
        a, std = self.coefficients(x, t)
        sd = jax.lax.stop_gradient(self.data_std).astype(x.dtype)
        c_in = jax.lax.rsqrt(a**2 * sd**2 + std**2)
        return self.net(c_in * x, t) / std


def compiled_module(spec, params: dict):
    """A compiled JAX module from a .sde path, an sdelang Model, or an already compiled module."""
    if isinstance(spec, (str, os.PathLike, Path)):
        import sdelang

        return sdelang.load(os.fspath(spec), **params).compile("jax")
    if isinstance(spec, CompiledModel):
        if params:
            raise TypeError("parameter overrides need a spec or a Model, not a compiled module")
        return spec
    if hasattr(spec, "compile"):
        return spec.compile("jax", **params)
    raise TypeError(f"expected a .sde path, a sdelang Model or a compiled module, got {type(spec).__name__}")


class ScoreModel:
    """A score network for ``spec``'s SDE: ``fit`` (score matching), ``sample`` (EM / PC / ODE),
    ``log_prob`` (nats) and ``bits_per_dim``. ``net=None`` builds ``ScoreMLP(dim, width=hidden,
    depth=depth)`` from ``PRNGKey(seed)``; ``precondition="auto"`` wraps it in
    :class:`KernelPreconditionedScore` when the model's perturbation kernel is diagonal (True forces,
    False never). A user net(x, t) (an equinox module, or any callable when not training) replaces
    the default and is used as it is unless precondition=True."""

    def __init__(self, spec, net=None, *, loss: str = "dsm", weighting: str = "sigma2", t_min: float = 1e-3,
                 precondition: Union[str, bool] = "auto", hidden: int = 128, depth: int = 3, seed: int = 0,
                 dtype=jnp.float32, **params):
        self.module = with_score(compiled_module(spec, params), None)
        self.dim = self.module.dimension
        if net is None:
            if self.dim is None:
                raise ValueError("the state dimension is unknown: pass d=... or your own net")
            net = ScoreMLP(self.dim, key=jax.random.PRNGKey(seed), width=hidden, depth=depth, dtype=dtype)
            precondition = has_diagonal_kernel(self.module) if precondition == "auto" else precondition
        elif precondition == "auto":
            precondition = False
        if precondition:
            net = KernelPreconditionedScore(net, self.module)
        self.net = net
        self.dtype = dtype
        self.loss, self.weighting, self.t_min = loss, weighting, float(t_min)
        self.trainer: Optional[ScoreTrainer] = None

    # ---------------------------------------------------------------- training
    def fit(self, data, steps: int = 2000, *, batch_size: int = 256, lr: float = 2e-3, ema_decay: float = 0.999,
            seed: int = 0, checkpoint=None, checkpoint_every: int = 500, progress: bool = True,
            resume: bool = True, **loss_options) -> "ScoreModel":
        """Train until ``steps`` total steps (resuming from ``checkpoint`` when it exists)."""
        data = np.asarray(data)
        if self.trainer is None:
            if isinstance(self.net, KernelPreconditionedScore):
                self.net = eqx.tree_at(lambda m: m.data_std, self.net,
                                       jnp.asarray(float(data.std()), self.net.data_std.dtype))
            self.trainer = ScoreTrainer(self.module, self.net, loss=self.loss, weighting=self.weighting,
                                        t_min=self.t_min, lr=lr, batch_size=batch_size, ema_decay=ema_decay,
                                        seed=seed, loss_options=loss_options)
        self.trainer.fit(data, steps, progress=progress, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every, resume=resume)
        self.net = self.trainer.net
        return self

    @property
    def losses(self):
        return [] if self.trainer is None else self.trainer.losses

    @property
    def ema_net(self):
        """The EMA of the network's weights (the network itself before any training)."""
        return self.net if self.trainer is None else self.trainer.ema_net()

    def score_net(self, use_ema: bool = True):
        return self.ema_net if use_ema else self.net

    def save(self, path) -> None:
        if self.trainer is None:
            raise RuntimeError("nothing to save before fit()")
        self.trainer.save(path)

    def load(self, path) -> "ScoreModel":
        """Restore a checkpoint written by ``save`` / ``fit(checkpoint=...)`` (net, EMA, optimiser,
        step, key) into a trainer built from the checkpoint's config."""
        state = read_checkpoint(path)
        c = state["config"]
        self.trainer = ScoreTrainer(self.module, self.net, loss=c["loss"], weighting=c["weighting"],
                                    t_min=c["t_min"], lr=c["lr"], batch_size=c["batch_size"],
                                    ema_decay=c["ema_decay"], grad_clip=c["grad_clip"], seed=c["seed"],
                                    loss_options=c["loss_options"], steps_per_call=c["steps_per_call"])
        self.trainer.load_state_dict(state)
        self.net = self.trainer.net
        return self

    # ---------------------------------------------------------------- sampling and likelihood
    def sample(self, n: int, method: str = "em", steps: int = 500, *, seed=0, use_ema: bool = True,
               **options) -> SampleResult:
        """n samples at t0 + t_min by ``method`` ("em", "pc", "ode"); ``steps`` is ignored by "ode"."""
        if method != "ode":
            options["steps"] = steps
        options.setdefault("t_min", self.t_min)
        options.setdefault("dtype", self.dtype)
        return sample(self.module, n, method, seed=seed, score=self.score_net(use_ema), **options)

    def log_prob(self, x, *, exact: bool = True, rtol: float = 1e-5, atol: float = 1e-5, use_ema: bool = True,
                 t_min: Optional[float] = None, seed=0) -> jax.Array:
        """log p(x) in nats, shape (batch,), through the probability-flow ODE from t0 + t_min
        (Hutchinson's divergence estimate with a fixed Rademacher vector when ``exact=False``)."""
        x = jnp.asarray(np.asarray(x), dtype=self.dtype)
        module = with_score(self.module, self.score_net(use_ema))
        t_min = self.t_min if t_min is None else t_min
        return module.log_prob(x, exact=exact, rtol=rtol, atol=atol, t_min=t_min, seed=seed)

    def bits_per_dim(self, x, **options) -> jax.Array:
        """-log p(x) / (d ln 2), shape (batch,)."""
        x = jnp.asarray(np.asarray(x), dtype=self.dtype)
        return -self.log_prob(x, **options) / (x.shape[-1] * math.log(2))
