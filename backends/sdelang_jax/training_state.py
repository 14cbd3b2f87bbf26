"""The JAX half of the trainer (:mod:`sdelang.score.trainer`): Adam / AdamW with the learning-rate
schedule, the dtype policy, EMA and the key, pure and jitted; ``steps_per_call`` steps run inside
one ``lax.scan`` (steps past the requested count are masked out, so every call is the same compiled
program). On a device mesh (``use_mesh``, ``ScoreModel(mesh=...)``): parameters, optimiser state,
EMA, key and data replicated, each minibatch split over the mesh's batch axis inside the step
(:mod:`sdelang_jax.sharding`), so XLA computes the loss and gradient data-parallel and all-reduces
the gradient; the draws are those of one device."""
from __future__ import annotations

from typing import Any, List, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sdelang.score.ema import ema_decay
from sdelang.score.lr_schedule import is_constant, lr_factor, schedule_of
from sdelang.score.trainer import batch_rows, training_loss

from .random_stream import JaxStream


def trainable(net):
    """The trainable leaves of a network: its inexact (floating) arrays, None elsewhere."""
    return eqx.filter(net, eqx.is_inexact_array)


class AdamState(eqx.Module):
    """Adam's step count and first/second moment estimates (pytrees shaped like the parameters)."""

    count: jax.Array
    mu: Any
    nu: Any


class Adam(eqx.Module):
    """Adam (Kingma & Ba 2015) as in ``torch.optim.Adam`` / ``torch.optim.AdamW``: at step k = count + 1,
    with lr_k = lr · f(count) (``schedule``: the keywords of :func:`sdelang.score.lr_schedule.lr_factor`
    as sorted pairs; None: f = 1),
        Adam (L2, ``decoupled=False``):  g ← g + wd θ,
        m ← b1 m + (1-b1) g,  v ← b2 v + (1-b2) g²,  m̂ = m / (1 - b1^k), v̂ = v / (1 - b2^k),
        θ ← θ - lr_k · m̂ / (√v̂ + eps)  - lr_k · wd · θ  (the last term for AdamW, ``decoupled=True``)."""

    lr: float = eqx.field(static=True, default=2e-3)
    b1: float = eqx.field(static=True, default=0.9)
    b2: float = eqx.field(static=True, default=0.999)
    eps: float = eqx.field(static=True, default=1e-8)
    weight_decay: float = eqx.field(static=True, default=0.0)
    decoupled: bool = eqx.field(static=True, default=False)
    schedule: Optional[tuple] = eqx.field(static=True, default=None)

    def init(self, params) -> AdamState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return AdamState(jnp.zeros((), jnp.int32), zeros, zeros)

    def learning_rate(self, count):
        """lr · f(count): a Python float for a constant schedule, else an array of the default float dtype."""
        if self.schedule is None:
            return self.lr
        k = jnp.asarray(count).astype(jnp.result_type(float))
        return self.lr * lr_factor(k, **dict(self.schedule), minimum=jnp.minimum, maximum=jnp.maximum, cos=jnp.cos)

    def update(self, grads, state: AdamState, params=None):
        """(updates to add to the parameters, new state); ``params`` are needed for weight decay."""
        wd = self.weight_decay
        if wd and params is None:
            raise ValueError("weight decay needs the parameters: update(grads, state, params)")
        if wd and not self.decoupled:
            grads = jax.tree_util.tree_map(lambda g, p: g + wd * p, grads, params)
        count = state.count + 1
        mu = jax.tree_util.tree_map(lambda m, g: self.b1 * m + (1 - self.b1) * g, state.mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: self.b2 * v + (1 - self.b2) * g * g, state.nu, grads)
        k = count.astype(jnp.float32)
        c1 = 1 - self.b1**k
        c2 = 1 - self.b2**k
        lr = self.learning_rate(state.count)

        def step(m, v, p=None):
            rate = lr if isinstance(lr, float) else lr.astype(m.dtype)
            u = -rate * (m / c1.astype(m.dtype)) / (jnp.sqrt(v / c2.astype(v.dtype)) + self.eps)
            if p is not None:
                u = u - rate * wd * p
            return u.astype(m.dtype)

        if wd and self.decoupled:
            updates = jax.tree_util.tree_map(step, mu, nu, params)
        else:
            updates = jax.tree_util.tree_map(step, mu, nu)
        return updates, AdamState(count, mu, nu)


def optimizer_of(config: dict) -> Adam:
    """The Adam / AdamW of a trainer's config."""
    schedule = None if is_constant(config) else tuple(sorted(schedule_of(config).items()))
    return Adam(lr=config["lr"], weight_decay=config["weight_decay"], decoupled=config["optimizer"] == "adamw",
                schedule=schedule)


COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def policy_loss(module, params, static, x0, stream, settings: dict):
    """The configured loss under the dtype policy of ``settings["precision"]``: float32 runs as it is;
    bfloat16 / float16 cast the floating parameters and the batch to that dtype for the forward pass
    (so the loss's draws t, ε are in it too) and the loss back to the batch's dtype; the gradient
    w.r.t. the master ``params`` comes back in their dtype through the casts."""
    compute = COMPUTE_DTYPES[settings["precision"]]
    if compute is None:
        return training_loss(module, eqx.combine(params, static), x0, stream, settings)
    cast = jax.tree_util.tree_map(lambda p: p.astype(compute), params)
    x, labels = x0 if isinstance(x0, tuple) else (x0, None)
    batch = x.astype(compute) if labels is None else (x.astype(compute), labels)
    value = training_loss(module, eqx.combine(cast, static), batch, stream, settings)
    return value.astype(x.dtype)


def clip_by_global_norm(grads, max_norm: Optional[float]):
    """g · min(1, max_norm / (‖g‖₂ + 1e-6)) over all leaves (``torch.nn.utils.clip_grad_norm_``)."""
    if max_norm is None:
        return grads
    leaves = jax.tree_util.tree_leaves(grads)
    norm = jnp.sqrt(sum(jnp.sum(g.astype(jnp.float32) ** 2) for g in leaves))
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
    return jax.tree_util.tree_map(lambda g: (g * scale).astype(g.dtype), grads)


class EMA(eqx.Module):
    """Exponential moving average of a network's trainable leaves, θ̄ ← d_k θ̄ + (1 - d_k) θ with the
    schedule of :func:`sdelang.score.ema.ema_decay`. Immutable: ``update`` returns a new EMA."""

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
        d = ema_decay(self.decay, k.astype(jnp.float32), minimum=jnp.minimum)
        new = jax.tree_util.tree_map(lambda e, p: (d * e + (1 - d) * p).astype(e.dtype), self.params, trainable(net))
        return EMA(None, self.decay, params=new, num_updates=k)

    def averaged(self, net):
        """``net`` carrying the averaged weights (``net`` itself is untouched)."""
        return eqx.combine(self.params, eqx.filter(net, eqx.is_inexact_array, inverse=True))


class TrainStep(eqx.Module):
    """The static part of a training step (hashed by ``filter_jit``: equal settings share one
    compiled program)."""

    config: tuple = eqx.field(static=True)
    optimizer: Adam

    @property
    def settings(self) -> dict:
        settings = dict(self.config)
        settings["loss_options"] = dict(settings["loss_options"])
        return settings


def take(data, rows):
    """The rows ``rows`` (indices or a slice) of the data (x, or both of (x, labels)): the one place
    minibatches are cut."""
    if isinstance(data, tuple):
        return tuple(part[rows] for part in data)
    return data[rows]


def _train_step(spec: TrainStep, module, static, carry, data, count, sharding=None):
    """One Adam step on a minibatch drawn with replacement, masked (carry unchanged) once the
    chunk's step index reaches ``count``. carry = (params, optimiser state, EMA, key, index).
    ``sharding``: the minibatch's rows are constrained to it (data-parallel on a mesh)."""
    settings = spec.settings
    params, opt_state, ema, key, index = carry
    key_next, key_step = jax.random.split(key)
    stream = JaxStream(key_step)
    rows = stream.randint(0, batch_rows(data), (settings["batch_size"],))
    x0 = take(data, rows)
    if sharding is not None:
        x0 = jax.tree_util.tree_map(lambda part: jax.lax.with_sharding_constraint(part, sharding), x0)
    value, grads = jax.value_and_grad(lambda p: policy_loss(module, p, static, x0, stream, settings))(params)
    updates, new_opt = spec.optimizer.update(clip_by_global_norm(grads, settings["grad_clip"]), opt_state, params)
    new_params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
    active = index < count
    keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, old)
    new = keep((new_params, new_opt, ema.update(new_params), key_next), (params, opt_state, ema, key))
    return new + (index + 1,), value


@eqx.filter_jit
def _train_chunk(spec: TrainStep, module, params, static, opt_state, ema, key, data, count, length: int,
                 sharding=None):
    def body(carry, _):
        return _train_step(spec, module, static, carry, data, count, sharding)

    (params, opt_state, ema, key, _), values = jax.lax.scan(
        body, (params, opt_state, ema, key, jnp.zeros((), jnp.int32)), None, length=length)
    return params, opt_state, ema, key, values


@eqx.filter_jit
def _evaluate(spec: TrainStep, module, net, x0, stream):
    return training_loss(module, net, x0, stream, spec.settings), stream


def _leaves(tree) -> List[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def _restore(template, leaves: List[np.ndarray]):
    structure = jax.tree_util.tree_structure(template)
    old = jax.tree_util.tree_leaves(template)
    if len(old) != len(leaves):
        raise ValueError(f"checkpoint has {len(leaves)} arrays where {len(old)} were expected")
    return jax.tree_util.tree_unflatten(structure, [jnp.asarray(v, dtype=o.dtype) for v, o in zip(leaves, old)])


def _hashable(config: dict) -> tuple:
    items = dict(config)
    items["loss_options"] = tuple(sorted(items["loss_options"].items()))
    return tuple(sorted(items.items()))


class JaxTrainingState:
    """Network, Adam state, EMA and key of a JAX trainer; ``run`` takes k ≤ steps_per_call steps
    in one compiled ``lax.scan`` and returns their losses as one array."""

    def __init__(self, module, net, config: dict):
        if not jax.tree_util.tree_leaves(trainable(net)):
            raise ValueError("the score network has no floating-point arrays to train (an equinox module is needed)")
        self.module, self.net, self.config = module, net, config
        self.opt_state = optimizer_of(config).init(trainable(net))
        self.ema = EMA(net, config["ema_decay"])
        self.key = jax.random.PRNGKey(config["seed"])
        self.mesh = None

    def use_mesh(self, mesh) -> None:
        """Train data-parallel over ``mesh``'s batch axis (batch_size divisible by its size):
        network, optimiser state, EMA and key replicated there, as is the data (``as_data``)."""
        from .sharding import BATCH_AXIS

        size = mesh.shape[BATCH_AXIS]
        if self.config["batch_size"] % size:
            raise ValueError(f"batch_size={self.config['batch_size']} must be divisible by the mesh's {size} devices")
        self.mesh = mesh
        self._place()

    def _place(self) -> None:
        if self.mesh is not None:
            from .sharding import replicate

            self.net, self.opt_state, self.ema, self.key = replicate((self.net, self.opt_state, self.ema, self.key),
                                                                     self.mesh)

    @property
    def optimizer(self) -> Adam:
        return optimizer_of(self.config)

    @property
    def spec(self) -> TrainStep:
        """The static step of the current config (the trainer's ``fit`` may set schedule_steps after
        construction; equal configs hash equal and share one compiled program)."""
        return TrainStep(_hashable(self.config), self.optimizer)

    @property
    def stream(self) -> JaxStream:
        """A stream from the current key (for evaluating the loss outside training)."""
        return JaxStream(self.key)

    def as_data(self, data):
        """x in the net's dtype, or the pair (x, labels as int32) of a conditional net."""
        if isinstance(data, tuple):
            x, labels = data
            labels = jnp.asarray(np.asarray(labels), jnp.int32)
            if self.mesh is not None:
                from .sharding import replicate

                labels = replicate(labels, self.mesh)
            return self.as_data(x), labels
        dtype = jax.tree_util.tree_leaves(trainable(self.net))[0].dtype
        x = jnp.asarray(np.asarray(data), dtype=dtype)
        if self.mesh is not None:
            from .sharding import replicate

            x = replicate(x, self.mesh)
        return x

    take = staticmethod(take)

    def evaluate(self, net, x0, stream):
        """(the configured loss of ``net`` on x0 in the net's own dtype, the stream after its draws), jitted
        (the stream enters as its key, so every minibatch of one shape shares one compiled program)."""
        return _evaluate(self.spec, self.module, net, x0, JaxStream(stream.current_key()))

    def learning_rate(self) -> float:
        """The learning rate the next step uses (from the optimiser state's step count)."""
        return float(self.optimizer.learning_rate(self.opt_state.count))

    def run(self, data, count: int):
        params, static = eqx.partition(self.net, eqx.is_inexact_array)
        params, self.opt_state, self.ema, self.key, values = _train_chunk(
            self.spec, self.module, params, static, self.opt_state, self.ema, self.key, data,
            jnp.asarray(count, jnp.int32), self.config["steps_per_call"], self._batch_sharding())
        self.net = eqx.combine(params, static)
        return values[:count]

    def _batch_sharding(self):
        if self.mesh is None:
            return None
        from .sharding import batch_sharding

        return batch_sharding(self.mesh)

    def ema_net(self):
        return self.ema.averaged(self.net)

    def state_dict(self) -> dict:
        """Numpy leaves of net, EMA, optimiser state, and the key."""
        return {"net": _leaves(trainable(self.net)), "ema": _leaves(self.ema.params),
                "ema_updates": int(self.ema.num_updates), "optimizer": _leaves(self.opt_state),
                "key": np.asarray(self.key)}

    def load_state_dict(self, state: dict) -> None:
        params, static = eqx.partition(self.net, eqx.is_inexact_array)
        self.net = eqx.combine(_restore(params, state["net"]), static)
        self.ema = EMA(None, self.ema.decay, params=_restore(self.ema.params, state["ema"]),
                       num_updates=state["ema_updates"])
        self.opt_state = _restore(self.opt_state, state["optimizer"])
        self.key = jnp.asarray(state["key"], dtype=jnp.uint32)
        self._place()
