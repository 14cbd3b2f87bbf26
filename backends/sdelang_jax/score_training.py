"""Training a score network for any compiled JAX SDE module: losses, Adam, EMA of weights, a trainer
with resumable checkpoints (the JAX half of SCORE_API; everything pure and jittable, explicit keys).

Denoising score matching (Vincent 2011; Song et al. 2021) with the perturbation kernel
x_t | x_0 ~ N(m_t, Σ_t) that ``model.marginal()`` derives for an affine SDE. With t ~ U(t0 + t_min, t1)
(drawn first) and ε ~ N(0, I):
    diagonal kernel  x_t = m_t + σ_t ⊙ ε,  target ∇ log p(x_t | x_0) = -ε / σ_t;
    full kernel      x_t = m_t + L ε (Σ_t = L Lᵀ),  target -Σ_t⁻¹(x_t - m_t) = -L⁻ᵀ ε.
Per sample, with r = s_θ(x_t, t) - target, the loss is rᵀ Λ r for
    "sigma2"      Λ = Σ_t:      ||σ ⊙ s + ε||² (diagonal), ||Lᵀ s + ε||² (full)
    "likelihood"  Λ = D = G Gᵀ(t, x_t): Song et al. 2021's likelihood weighting
    "none"        Λ = I.
Its minimiser is the marginal score ∇ log p_t (DSM = Λ-weighted explicit score matching + a constant).

Sliced score matching (Song et al. 2019) needs no kernel: for x_t ~ p_t and projections v with
E[v vᵀ] = I,  E[vᵀ ∇_x(vᵀ (w² ⊙ s)) + ½ (vᵀ (w ⊙ s))²] = ½ E[(s - ∇log p_t)ᵀ W² (s - ∇log p_t)] + const
(integration by parts: E_p[sᵀ W² ∇log p] = -E_p[∇·(W² s)]), W = diag(w).

Random draws come from a ``key`` (a ``jax.random.PRNGKey``) or an integer ``seed``: the same key gives
the same t, ε and v, and with it "sigma2" / "likelihood" on a diagonal kernel equal the module's own
``module.dsm_loss(x0, key=key)``.
"""
from __future__ import annotations

import math
import os
import pickle
from typing import Any, Callable, Dict, List, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from .runtime import as_key, require_net

DSM_WEIGHTINGS = ("sigma2", "likelihood", "none")
SSM_WEIGHTINGS = ("none", "likelihood", "sigma2")


# ---------------------------------------------------------------------------------------- helpers
def score_of(module, score: Optional[Callable]) -> Callable:
    """The score callable: ``score`` if given, else the module's attached ``score`` net."""
    return score if score is not None else require_net(getattr(module, "score", None), "score")


def with_score(module, score: Optional[Callable]):
    """A new instance of ``module``'s generated class with the same parameters and nets, but
    ``score`` attached (``module`` itself is not modified: equinox modules are immutable)."""
    cls = type(module)
    if "score" not in cls.net_names:
        raise ValueError(f"{cls.model_name} has no 'score' network field")
    kwargs = module._shared_kwargs(cls)
    kwargs["score"] = score
    return cls(**kwargs)


def draw_times(module, key, batch_shape, t_min: float, dtype) -> jax.Array:
    """t ~ U(t0 + t_min, t1), of shape ``batch_shape``."""
    return jax.random.uniform(key, batch_shape, dtype, float(module.t0) + t_min, float(module.t1))


def has_kernel(module) -> bool:
    return bool(getattr(module, "has_kernel", False))


def has_diagonal_kernel(module) -> bool:
    return has_kernel(module) and bool(module.kernel_is_diagonal)


def kernel_wide(module, x0, t):
    """The perturbation kernel evaluated in float64 when x64 is enabled (a CLD covariance such as
    e^{-16t}(e^{16t} - 1 - 16t - 128t²) cancels catastrophically in float32), mean cast back to x0's
    dtype. Without x64 it is evaluated in x0's dtype: keep t_min ≳ 1e-3 for coupled kernels then."""
    wide = jnp.float64 if jax.config.jax_enable_x64 else x0.dtype
    mean, spread = module.perturbation_kernel(x0.astype(wide), jnp.asarray(t, wide))
    return mean.astype(x0.dtype), spread


def diagonal_diffusion(module, t, x) -> jax.Array:
    """The diagonal g(t, x) of G, shaped like x, for diagonal (or elementwise) noise."""
    if module.elementwise:
        return module.diffusion_matrix(t, x)
    if not module.diagonal_noise:
        raise NotImplementedError("this weighting needs diagonal noise (G diagonal)")
    return jnp.diagonal(module.diffusion_matrix(t, x), axis1=-2, axis2=-1)


def diffusion_quadratic(module, t, x, r) -> jax.Array:
    """rᵀ D r = ||Gᵀ r||² per sample, D = G Gᵀ at (t, x)."""
    G = module.diffusion_matrix(t, x)
    if module.elementwise:
        return jnp.sum((G * r) ** 2, axis=-1)
    return jnp.sum(jnp.einsum("...nm,...n->...m", G, r) ** 2, axis=-1)


def _key(key, seed):
    return as_key(seed) if key is None else key


# ---------------------------------------------------------------------------------------- DSM
def dsm_loss(module, x0, *, t_min: float = 1e-3, weighting: str = "sigma2", key=None, seed: int = 0,
             score: Optional[Callable] = None) -> jax.Array:
    """Denoising score-matching loss (module docstring), mean over the batch; t is drawn before ε
    (``k_t, k_ε = split(key)``)."""
    if weighting not in DSM_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {DSM_WEIGHTINGS}, got {weighting!r}")
    if not has_kernel(module):
        raise NotImplementedError("dsm_loss needs a Gaussian perturbation kernel (an affine SDE, "
                                  "model.marginal()); use ssm_loss for this model")
    score = score_of(module, score)
    x0 = jnp.asarray(x0)
    k_t, k_eps = jax.random.split(_key(key, seed))
    t = draw_times(module, k_t, x0.shape[:-1], t_min, x0.dtype)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    mean, spread = kernel_wide(module, x0, t)
    if module.kernel_is_diagonal:
        std = spread.astype(x0.dtype)
        xt = mean + std * eps
        s = score(xt, t)
        if weighting == "sigma2":
            per_sample = jnp.sum((std * s + eps) ** 2, axis=-1)
        else:
            r = s + eps / std
            per_sample = diffusion_quadratic(module, t, xt, r) if weighting == "likelihood" else jnp.sum(r**2, -1)
    else:
        chol = jnp.linalg.cholesky(spread)  # wide precision
        L = chol.astype(x0.dtype)
        xt = mean + jnp.einsum("...ij,...j->...i", L, eps)
        s = score(xt, t)
        if weighting == "sigma2":
            per_sample = jnp.sum((jnp.einsum("...ji,...j->...i", L, s) + eps) ** 2, axis=-1)
        else:
            lt = jnp.swapaxes(chol, -1, -2)
            target = -solve_triangular(lt, eps.astype(chol.dtype)[..., None], lower=False)[..., 0]
            r = s - target.astype(x0.dtype)
            per_sample = diffusion_quadratic(module, t, xt, r) if weighting == "likelihood" else jnp.sum(r**2, -1)
    return jnp.mean(per_sample)


# ---------------------------------------------------------------------------------------- SSM
def perturbed_samples(module, x0, t_min: float, key, sim_steps: int = 100):
    """(t, x_t) with x_t ~ p(x_t | x_0): from the kernel when the model has one (same draws as
    ``dsm_loss`` with this key), else the forward SDE simulated by Euler–Maruyama on a grid of
    ``sim_steps`` steps over [t0, t1], each row read at its own random grid time ≥ t0 + t_min."""
    x0 = jnp.asarray(x0)
    batch = x0.shape[:-1]
    if has_kernel(module):
        k_t, k_eps = jax.random.split(key)
        t = draw_times(module, k_t, batch, t_min, x0.dtype)
        eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
        mean, spread = kernel_wide(module, x0, t)
        if module.kernel_is_diagonal:
            return t, mean + spread.astype(x0.dtype) * eps
        L = jnp.linalg.cholesky(spread).astype(x0.dtype)
        return t, mean + jnp.einsum("...ij,...j->...i", L, eps)
    if len(batch) != 1:
        raise ValueError("the simulated path of ssm_loss needs x0 of shape (batch, n)")
    t0, t1 = float(module.t0), float(module.t1)
    h = (t1 - t0) / sim_steps
    ts = np.asarray([t0 + k * h for k in range(sim_steps + 1)])
    k_sim, k_index = jax.random.split(key)
    path = jax.lax.stop_gradient(module.simulate(x0, ts, dt=h, seed=k_sim))  # (sim_steps + 1, batch, n)
    first = min(sim_steps, max(1, math.ceil(t_min / h - 1e-9)))
    index = jax.random.randint(k_index, batch, first, sim_steps + 1)
    xt = path[index, jnp.arange(batch[0])]
    return jnp.asarray(ts, x0.dtype)[index], xt


def projections(key, shape, kind: str, dtype) -> jax.Array:
    """Random v with E[v vᵀ] = I: Rademacher (±1) or standard Gaussian."""
    if kind == "rademacher":
        return jax.random.rademacher(key, shape, dtype=dtype)
    if kind == "gaussian":
        return jax.random.normal(key, shape, dtype)
    raise ValueError(f"projection must be 'rademacher' or 'gaussian', got {kind!r}")


def ssm_weights(module, weighting: str, t, x, x0) -> jax.Array:
    """w of the W = diag(w) weighting at (t, x), broadcastable to x."""
    if weighting == "none":
        return jnp.ones_like(x[..., :1])
    if weighting == "likelihood":
        return diagonal_diffusion(module, t, x)
    if weighting == "sigma2":
        if not has_diagonal_kernel(module):
            raise NotImplementedError("ssm weighting 'sigma2' needs a diagonal perturbation kernel")
        return kernel_wide(module, x0, t)[1].astype(x.dtype)
    raise ValueError(f"weighting must be one of {SSM_WEIGHTINGS}, got {weighting!r}")


def ssm_loss(module, x0, *, t_min: float = 1e-3, weighting: str = "none", projection: str = "rademacher",
             sim_steps: int = 100, key=None, seed: int = 0, score: Optional[Callable] = None) -> jax.Array:
    """Sliced score-matching loss vᵀ ∇_x(vᵀ (w² ⊙ s)) + ½ (vᵀ (w ⊙ s))², mean over the batch
    (module docstring). vᵀ ∇_x(vᵀ u) = vᵀ (∂u/∂x) v is one Jacobian-vector product of
    u(x) = w(x)² ⊙ s(x) (the networks act on each batch row separately)."""
    if weighting not in SSM_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {SSM_WEIGHTINGS}, got {weighting!r}")
    score = score_of(module, score)
    x0 = jnp.asarray(x0)
    k_x, k_v = jax.random.split(_key(key, seed))
    t, xt = perturbed_samples(module, x0, t_min, k_x, sim_steps)
    v = projections(k_v, xt.shape, projection, xt.dtype)

    def weighted(z):
        s = score(z, t)
        w = ssm_weights(module, weighting, t, z, x0)
        return w * w * s, w * s

    (_, ws), (jv, _) = jax.jvp(weighted, (xt,), (v,))
    per_sample = jnp.sum(v * jv, axis=-1) + 0.5 * jnp.sum(v * ws, axis=-1) ** 2
    return jnp.mean(per_sample)


LOSSES: Dict[str, Callable] = {"dsm": dsm_loss, "ssm": ssm_loss}


# ---------------------------------------------------------------------------------------- Adam
def trainable(net):
    """The trainable leaves of a network: its inexact (floating) arrays, None elsewhere."""
    return eqx.filter(net, eqx.is_inexact_array)


class AdamState(eqx.Module):
    """Adam's step count and first/second moment estimates (pytrees shaped like the parameters)."""

    count: jax.Array
    mu: Any
    nu: Any


class Adam(eqx.Module):
    """Adam (Kingma & Ba 2015) as in ``torch.optim.Adam``:
    m ← b1 m + (1-b1) g,  v ← b2 v + (1-b2) g²,  θ ← θ - lr · m̂ / (√v̂ + eps),
    m̂ = m / (1 - b1^k), v̂ = v / (1 - b2^k) at step k."""

    lr: float = eqx.field(static=True, default=2e-3)
    b1: float = eqx.field(static=True, default=0.9)
    b2: float = eqx.field(static=True, default=0.999)
    eps: float = eqx.field(static=True, default=1e-8)

    def init(self, params) -> AdamState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return AdamState(jnp.zeros((), jnp.int32), zeros, zeros)

    def update(self, grads, state: AdamState):
        """(updates to add to the parameters, new state)."""
        count = state.count + 1
        mu = jax.tree_util.tree_map(lambda m, g: self.b1 * m + (1 - self.b1) * g, state.mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: self.b2 * v + (1 - self.b2) * g * g, state.nu, grads)
        k = count.astype(jnp.float32)
        c1 = 1 - self.b1**k
        c2 = 1 - self.b2**k

        def step(m, v):
            return (-self.lr * (m / c1.astype(m.dtype)) / (jnp.sqrt(v / c2.astype(v.dtype)) + self.eps)).astype(m.dtype)

        return jax.tree_util.tree_map(step, mu, nu), AdamState(count, mu, nu)


def clip_by_global_norm(grads, max_norm: Optional[float]):
    """g · min(1, max_norm / (‖g‖₂ + 1e-6)) over all leaves (``torch.nn.utils.clip_grad_norm_``)."""
    if max_norm is None:
        return grads
    leaves = jax.tree_util.tree_leaves(grads)
    norm = jnp.sqrt(sum(jnp.sum(g.astype(jnp.float32) ** 2) for g in leaves))
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
    return jax.tree_util.tree_map(lambda g: (g * scale).astype(g.dtype), grads)


# ---------------------------------------------------------------------------------------- EMA
class EMA(eqx.Module):
    """Exponential moving average of a network's trainable leaves: θ̄ ← d θ̄ + (1 - d) θ after each
    step, with d = min(decay, (1 + k) / (10 + k)) at update k (so early random weights are forgotten
    in short runs). Immutable: ``update`` returns a new EMA (jittable)."""

    params: Any
    num_updates: jax.Array
    decay: float = eqx.field(static=True)

    def __init__(self, net, decay: float = 0.999, *, params=None, num_updates=None):
        self.params = trainable(net) if params is None else params
        self.num_updates = jnp.zeros((), jnp.int32) if num_updates is None else jnp.asarray(num_updates, jnp.int32)
        self.decay = float(decay)

    def update(self, net) -> "EMA":
        """The EMA after one more step with the weights of ``net`` (a network or its ``trainable``)."""
        k = self.num_updates + 1
        kf = k.astype(jnp.float32)
        d = jnp.minimum(self.decay, (1 + kf) / (10 + kf))
        new = jax.tree_util.tree_map(lambda e, p: (d * e + (1 - d) * p).astype(e.dtype), self.params, trainable(net))
        return EMA(None, self.decay, params=new, num_updates=k)

    def averaged(self, net):
        """``net`` carrying the averaged weights (``net`` itself is untouched)."""
        return eqx.combine(self.params, eqx.filter(net, eqx.is_inexact_array, inverse=True))


# ---------------------------------------------------------------------------------------- trainer
def _leaves(tree) -> List[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def _restore(template, leaves: List[np.ndarray]):
    structure = jax.tree_util.tree_structure(template)
    old = jax.tree_util.tree_leaves(template)
    if len(old) != len(leaves):
        raise ValueError(f"checkpoint has {len(leaves)} arrays where {len(old)} were expected")
    new = [jnp.asarray(v, dtype=o.dtype) for v, o in zip(leaves, old)]
    return jax.tree_util.tree_unflatten(structure, new)


class TrainSpec(eqx.Module):
    """The static part of a training step (hashed by ``filter_jit``: trainers with equal settings
    share one compiled program)."""

    loss: str = eqx.field(static=True)
    weighting: str = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    grad_clip: Optional[float] = eqx.field(static=True)
    steps_per_call: int = eqx.field(static=True)
    loss_options: tuple = eqx.field(static=True)
    optimizer: Adam

    def loss_value(self, base, net, x0, key) -> jax.Array:
        return LOSSES[self.loss](base, x0, t_min=self.t_min, weighting=self.weighting, key=key, score=net,
                                 **dict(self.loss_options))


def _train_step(spec: TrainSpec, base, static, carry, data, target):
    """One Adam step on a minibatch drawn with replacement; masked (carry unchanged) once
    step ≥ target. carry = (params, optimiser state, EMA, key, step)."""
    params, opt_state, ema, key, step = carry
    key_next, k_index, k_loss = jax.random.split(key, 3)
    index = jax.random.randint(k_index, (spec.batch_size,), 0, data.shape[0])
    x0 = data[index]
    value, grads = jax.value_and_grad(lambda p: spec.loss_value(base, eqx.combine(p, static), x0, k_loss))(params)
    updates, new_opt = spec.optimizer.update(clip_by_global_norm(grads, spec.grad_clip), opt_state)
    new_params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
    new_ema = ema.update(new_params)
    active = step < target
    keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, old)
    return keep((new_params, new_opt, new_ema, key_next, step + 1), carry), value


@eqx.filter_jit
def _train_chunk(params, static, base, spec: TrainSpec, opt_state, ema, key, step, target, data):
    """``spec.steps_per_call`` masked train steps in one ``lax.scan``."""
    def body(carry, _):
        return _train_step(spec, base, static, carry, data, target)

    return jax.lax.scan(body, (params, opt_state, ema, key, step), None, length=spec.steps_per_call)


class ScoreTrainer:
    """Adam on a score-matching loss with gradient clipping, an EMA of weights and resumable
    checkpoints. One PRNG key (``PRNGKey(seed)``, split at every step into the next key, the
    minibatch indices' key and the loss's key) draws every random number, and it is checkpointed,
    so a resumed run reproduces an uninterrupted one bit for bit. Steps run ``steps_per_call`` at a
    time inside one jitted ``lax.scan`` (steps past the target are masked out, so every call is the
    same compiled program)."""

    def __init__(self, module, net, *, loss: str = "dsm", weighting: str = "sigma2", t_min: float = 1e-3,
                 lr: float = 2e-3, batch_size: int = 256, ema_decay: float = 0.999,
                 grad_clip: Optional[float] = 1.0, seed: int = 0, loss_options: Optional[dict] = None,
                 steps_per_call: int = 50):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.base = with_score(module, None)
        self.net = net
        self.config = {"loss": loss, "weighting": weighting, "t_min": float(t_min), "lr": float(lr),
                       "batch_size": int(batch_size), "ema_decay": float(ema_decay), "grad_clip": grad_clip,
                       "seed": int(seed), "loss_options": dict(loss_options or {}),
                       "steps_per_call": int(steps_per_call)}
        self.optimizer = Adam(lr=float(lr))
        self.opt_state = self.optimizer.init(trainable(net))
        self.ema = EMA(net, ema_decay)
        self.key = jax.random.PRNGKey(int(seed))
        self.step = 0
        self.losses: List[float] = []
        self.spec = TrainSpec(loss, weighting, float(t_min), int(batch_size), grad_clip, int(steps_per_call),
                              tuple(sorted(self.config["loss_options"].items())), self.optimizer)

    @property
    def module(self):
        """The forward module with the current network attached as its ``score``."""
        return with_score(self.base, self.net)

    def loss(self, net, x0, key) -> jax.Array:
        """The configured loss of ``net`` on a batch x0 with the given key."""
        return self.spec.loss_value(self.base, net, x0, key)

    def train_steps(self, data, target: int) -> List[float]:
        """Up to ``steps_per_call`` steps (never beyond the total ``target``); returns their losses."""
        params, static = eqx.partition(self.net, eqx.is_inexact_array)
        (params, self.opt_state, self.ema, self.key, step), values = _train_chunk(
            params, static, self.base, self.spec, self.opt_state, self.ema, self.key,
            jnp.asarray(self.step, jnp.int32), jnp.asarray(target, jnp.int32), data)
        done = int(step) - self.step
        self.net = eqx.combine(params, static)
        self.step = int(step)
        new = [float(v) for v in np.asarray(values)[:done]]
        self.losses.extend(new)
        return new

    def as_data(self, data) -> jax.Array:
        dtype = jax.tree_util.tree_leaves(trainable(self.net))[0].dtype
        return jnp.asarray(np.asarray(data), dtype=dtype)

    def fit(self, data, steps: int, *, progress: bool = True, checkpoint: Optional[Union[str, os.PathLike]] = None,
            checkpoint_every: int = 500, resume: bool = True) -> List[float]:
        """Train until ``self.step == steps`` (a TOTAL count: a trainer at step k does steps - k more).
        With ``checkpoint``: resume from it first when it exists (``resume``) and this trainer has not
        stepped, save every ``checkpoint_every`` steps and at the end. Returns all losses so far."""
        if checkpoint is not None and resume and self.step == 0 and os.path.exists(checkpoint):
            self.load(checkpoint)
        data = self.as_data(data)
        steps = int(steps)
        remaining = max(0, steps - self.step)
        bar = None
        if progress and remaining:
            from tqdm.auto import tqdm

            bar = tqdm(total=remaining, desc=f"{self.config['loss']} training (jax)", leave=False)
        while self.step < steps:
            target = steps
            if checkpoint is not None:
                target = min(steps, (self.step // checkpoint_every + 1) * checkpoint_every)
            before = self.step
            new = self.train_steps(data, target)
            if bar is not None:
                bar.update(self.step - before)
                bar.set_postfix(loss=f"{new[-1]:.4f}")
            if checkpoint is not None and self.step % checkpoint_every == 0:
                self.save(checkpoint)
        if bar is not None:
            bar.close()
        if checkpoint is not None and remaining:
            self.save(checkpoint)
        return self.losses

    def ema_net(self):
        """The network with the EMA weights."""
        return self.ema.averaged(self.net)

    def state_dict(self) -> dict:
        """Numpy leaves of net, EMA, optimiser state, plus step, key, losses and config."""
        return {"net": _leaves(trainable(self.net)), "ema": _leaves(self.ema.params),
                "ema_updates": int(self.ema.num_updates), "optimizer": _leaves(self.opt_state),
                "step": self.step, "key": np.asarray(self.key), "losses": list(self.losses),
                "config": dict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        params, static = eqx.partition(self.net, eqx.is_inexact_array)
        self.net = eqx.combine(_restore(params, state["net"]), static)
        self.ema = EMA(None, self.ema.decay, params=_restore(self.ema.params, state["ema"]),
                       num_updates=state["ema_updates"])
        self.opt_state = _restore(self.opt_state, state["optimizer"])
        self.step = int(state["step"])
        self.key = jnp.asarray(state["key"], dtype=jnp.uint32)
        self.losses = list(state["losses"])

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Pickle of ``state_dict()`` (numpy arrays only), written to a temporary file and renamed,
        so an interrupted save leaves the old checkpoint intact."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "wb") as handle:
            pickle.dump(self.state_dict(), handle)
        os.replace(tmp, path)

    def load(self, path: Union[str, os.PathLike]) -> None:
        with open(path, "rb") as handle:
            self.load_state_dict(pickle.load(handle))


def read_checkpoint(path: Union[str, os.PathLike]) -> dict:
    """The raw state dict of a checkpoint (its ``config`` rebuilds a matching trainer)."""
    with open(path, "rb") as handle:
        return pickle.load(handle)
