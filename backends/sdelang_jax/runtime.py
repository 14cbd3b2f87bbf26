"""Runtime helpers imported by generated JAX modules.

A generated class subclasses :class:`CompiledModel` (an ``equinox.Module``) and defines the
model-specific pieces (``drift``, ``diffusion``, ``diffusion_matrix``, ``euler_maruyama_step``,
prior and perturbation kernel when the model has them). Everything generic lives here:

- ``terms(brownian)``: ``MultiTerm(ODETerm(drift), ControlTerm(diffusion, brownian))`` (``ODETerm``
  for an ODE) for ``diffrax.diffeqsolve``;
- ``simulate(x0, ts, dt, seed)``: Euler–Maruyama  y_{k+1} = y_k + f(t_k, y_k) h + G(t_k, y_k) ΔW_k,
  ΔW_k ~ N(0, h I), run by a jitted ``jax.lax.scan`` (see :mod:`sdelang_jax.simulate`);
- ``log_prob``: log p_{t0}(x) = log p_{t1}(x(t1)) + ∫ ∇·v dt along the probability-flow ODE
  (see :mod:`sdelang.score.likelihood`);
- ``dsm_loss``: denoising score matching (see :mod:`sdelang.score.losses`);
- ``ops``, ``with_score``, ``score_net``, ``kernel_kind``: what the score layer asks of a module
  (:class:`sdelang.score.protocol.CompiledSDE`);
- ``reverse()`` / ``probability_flow()``: compiled modules of the derived models, sharing this
  module's parameters and networks (generated on first use and cached per class).

Nothing here is CPU-specific: arrays follow the device of the inputs.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional, Tuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from sdelang.emit.embedded_spec import model_from_spec
from sdelang.score import likelihood, losses
from sdelang.score.defaults import ODE_ATOL, ODE_RTOL, T_MIN

from .array_ops import JAX_OPS
from .keys import as_key  # noqa: F401  (generated modules call runtime.as_key)
from .simulate import simulate
from sdelang.emit.kernel import check_kernel_parameters  # noqa: F401 (generated code calls it)


class MissingNetError(RuntimeError):
    """A generated module called a network that was not attached at construction."""


def require_net(net: Optional[Callable], name: str) -> Callable:
    """``net`` itself, or a clear error naming the missing network (raised at trace time)."""
    if net is None:
        raise MissingNetError(
            f"the model uses the network '{name}' but none was attached: "
            f"pass {name}=<callable net(y, t)> when compiling or constructing the module"
        )
    return net


def call_net(net: Optional[Callable], name: str, y, t):
    """net(y, t), checked: the network must be attached and return an array shaped like y."""
    out = require_net(net, name)(y, t)
    if getattr(out, "shape", None) != y.shape:
        raise ValueError(f"network '{name}' returned shape {getattr(out, 'shape', type(out).__name__)} "
                         f"for a state of shape {y.shape}; a net must return one value per state component")
    return out


def elementwise_time(t):
    """Time broadcast against an elementwise state y of shape (..., d): a batch of times t of
    shape (...,) becomes (..., 1); a scalar stays a scalar."""
    t = jnp.asarray(t)
    return t if t.ndim == 0 else t[..., None]


def batched_matrix_operator(G) -> lx.AbstractLinearOperator:
    """The linear map  w ↦ G w  for matrices G of shape (..., n, m) acting on w of shape (..., m).

    One particle (G of shape (n, m)): ``lx.MatrixLinearOperator(G)`` (a plain array pytree, which
    diffrax's Milstein solvers can differentiate). A batch: a ``FunctionLinearOperator`` doing
    ``einsum("...nm,...m->...n")`` — never the dense (N·n) x (N·m) block-diagonal matrix."""
    if G.ndim == 2:
        return lx.MatrixLinearOperator(G)
    structure = jax.ShapeDtypeStruct(G.shape[:-2] + G.shape[-1:], G.dtype)
    return lx.FunctionLinearOperator(lambda w: jnp.einsum("...nm,...m->...n", G, w), structure)


def _derived_cache(cls) -> dict:
    cache = cls.__dict__.get("_sdelang_derived")
    if cache is None:
        cache = {}
        setattr(cls, "_sdelang_derived", cache)
    return cache


def _score_argument(score, nets: dict):
    """A network passed as ``score`` becomes the learned ``score`` net of the derived module."""
    if callable(score):
        return None, {**nets, "score": score}
    return score, nets


class CompiledModel(eqx.Module):
    """Generic behaviour of every generated JAX module (see the module docstring)."""

    # Set by the generated subclass (class variables, not pytree fields).
    model_name: ClassVar[str] = ""
    state_names: ClassVar[Tuple[str, ...]] = ()
    param_names: ClassVar[Tuple[str, ...]] = ()  # field names
    net_names: ClassVar[Tuple[str, ...]] = ()
    param_fields: ClassVar[dict] = {}  # identifier in the spec -> field name
    net_fields: ClassVar[dict] = {}
    n_states: ClassVar[Optional[int]] = None
    n_brownians: ClassVar[int] = 0
    is_sde: ClassVar[bool] = True
    elementwise: ClassVar[bool] = False
    calculus: ClassVar[str] = "ito"
    noise_type: ClassVar[Optional[str]] = None
    diagonal_noise: ClassVar[bool] = False  # diffusion is a DiagonalLinearOperator, ΔW shaped like y
    has_prior: ClassVar[bool] = False
    has_kernel: ClassVar[bool] = False
    kernel_is_diagonal: ClassVar[bool] = True
    ops: ClassVar[Any] = JAX_OPS  # the score layer's array operations (sdelang.score.protocol.ArrayOps)
    # The sympy Model this class was generated from (attached by the loader, not in the source).
    sdelang_model: ClassVar[Any] = None
    sdelang_spec: ClassVar[Optional[str]] = None

    # ------------------------------------------------------------------ shapes and terms
    @property
    def kernel_kind(self) -> Optional[str]:
        """"diagonal" | "full" where the model has a Gaussian perturbation kernel, else None."""
        if not self.has_kernel:
            return None
        return "diagonal" if self.kernel_is_diagonal else "full"

    @property
    def score_net(self) -> Optional[Callable]:
        """The attached ``score`` network, or None."""
        return getattr(self, self.net_fields["score"], None) if "score" in self.net_fields else None

    def with_score(self, score: Optional[Callable]) -> "CompiledModel":
        """A new module of the same generated class, parameters and networks, with ``score``
        attached (None: detached); equinox modules are immutable, so this one is unchanged."""
        cls = type(self)
        kwargs = self._shared_kwargs(cls)
        if "score" in cls.net_fields:
            kwargs[cls.net_fields["score"]] = score
        elif score is not None:
            raise ValueError(f"{cls.model_name} has no 'score' network field")
        return cls(**kwargs)

    @property
    def dimension(self) -> Optional[int]:
        """State size n (for an elementwise model the declared d, from its parameters)."""
        return self.n_states

    def brownian_shape(self, batch=()) -> Tuple[int, ...]:
        """Shape of the Brownian motion for a state of shape (*batch, n): (*batch, m), with m = n for
        diagonal/elementwise noise (for elementwise models n is ``dimension``)."""
        batch = (batch,) if isinstance(batch, int) else tuple(batch)
        if self.diagonal_noise:
            return batch + (self.dimension,)
        return batch + (self.n_brownians,)

    def noise_shape(self, state_shape) -> Tuple[int, ...]:
        """Shape of one Brownian increment ΔW for a state of shape ``state_shape`` (..., n)."""
        if self.diagonal_noise:
            return tuple(state_shape)
        return tuple(state_shape[:-1]) + (self.n_brownians,)

    def terms(self, brownian=None):
        """diffrax terms: ``MultiTerm(ODETerm(drift), ControlTerm(diffusion, brownian))`` for an
        SDE (drift in the model's own calculus: use Itô solvers for Itô models, Stratonovich ones
        — Heun, EulerHeun, StratonovichMilstein — for Stratonovich models), ``ODETerm(drift)`` for
        an ODE (``brownian`` must then be None)."""
        if not self.is_sde:
            if brownian is not None:
                raise ValueError(f"{self.model_name} is an ODE: call terms() without a Brownian motion")
            return diffrax.ODETerm(self.drift)
        if brownian is None:
            raise ValueError(
                f"{self.model_name} is an SDE: pass a Brownian motion, e.g. "
                f"diffrax.VirtualBrownianTree(t0, t1, tol, shape=module.brownian_shape(batch), key=key)"
            )
        return diffrax.MultiTerm(diffrax.ODETerm(self.drift), diffrax.ControlTerm(self.diffusion, brownian))

    # ------------------------------------------------------------------ common comparison API
    def drift_fn(self, t, y):
        """f(t, y), shape (batch, n); t a scalar or of shape (batch,)."""
        return self.drift(t, y, None)

    # ------------------------------------------------------------------ simulation
    def simulate(self, x0, ts, dt, seed=0):
        """Fixed-step Euler–Maruyama (Euler for ODEs) from ts[0]; states at every time of ``ts``,
        shape (len(ts), *batch, n). Between ts[i] and ts[i+1]: k_i = ceil((ts[i+1] - ts[i]) / dt)
        equal steps. Stratonovich models step with their Itô drift (converted at code generation).
        ``seed``: an int or a ``jax.random`` key. ``ts`` and ``dt`` must be concrete (host) values."""
        return simulate(self, x0, ts, dt, seed)

    # ------------------------------------------------------------------ derived models
    def _shared_kwargs(self, cls) -> dict:
        kwargs = {}
        for mine, theirs in ((self.param_fields, cls.param_fields), (self.net_fields, cls.net_fields)):
            for name, field in mine.items():
                if name in theirs:
                    kwargs[theirs[name]] = getattr(self, field)
        return kwargs

    def _derived(self, kind: str, build: Callable, extra: dict):
        cls = type(self)
        cache = _derived_cache(cls)
        if kind not in cache:
            if cls.sdelang_model is None:
                cls.sdelang_model = model_from_spec(cls.sdelang_spec, f"{kind.split(':')[0]}()")
            from .loader import load_class

            cache[kind] = load_class(build(cls.sdelang_model))
        derived_cls = cache[kind]
        kwargs = self._shared_kwargs(derived_cls)
        kwargs.update({derived_cls.net_fields.get(k, derived_cls.param_fields.get(k, k)): v for k, v in extra.items()})
        # The last instance built per kind is reused while its fields are the same objects (modules
        # are immutable): building an equinox module costs ~0.5 ms, 1-2 % of a small sampler call.
        last = cache.get(("instance", kind))
        if last is not None and last[0].keys() == kwargs.keys() and all(last[0][k] is v for k, v in kwargs.items()):
            return last[1]
        instance = derived_cls(**kwargs)
        cache[("instance", kind)] = (kwargs, instance)
        return instance

    def reverse(self, score=None, **nets):
        """The compiled reverse-time SDE (``Model.reverse(score=...)``) in its own time s = T - t,
        sharing this module's parameters and networks. ``score=None``: the learned net ``score``
        (attached here or passed in ``nets``); ``score="p"``: the exact score of density p;
        a callable ``score``: that network as the learned score."""
        score, nets = _score_argument(score, nets)
        return self._derived(f"reverse:{score}", lambda m: m.reverse(score=score), nets)

    def probability_flow(self, score=None, **nets):
        """The compiled probability-flow ODE dx/dt = f - ½∇·D - ½ D ∇log p_t (same marginals);
        ``score`` as for :meth:`reverse`."""
        score, nets = _score_argument(score, nets)
        return self._derived(f"flow:{score}", lambda m: m.probability_flow(score=score), nets)

    # ------------------------------------------------------------------ affine models
    def perturbation_kernel(self, x0, t):
        """(mean, std) of p(x_t | x_0) for diagonal kernels, (mean, cov) for coupled ones."""
        raise NotImplementedError(
            f"{self.model_name} has no closed-form perturbation kernel (Model.marginal() is "
            "available only for affine SDEs)"
        )

    def prior_log_prob(self, x):
        """log density of the spec's ``prior`` at x of shape (..., n), summed over components."""
        raise NotImplementedError(f"{self.model_name} declares no prior")

    def prior_sample(self, batch, seed=0):
        """Samples of the spec's ``prior``, shape (*batch, n)."""
        raise NotImplementedError(f"{self.model_name} declares no prior")

    def dsm_loss(self, x0, t_min=T_MIN, weighting="sigma2", *, key=None, seed=0):
        """Denoising score matching with the attached ``score`` net (:func:`sdelang.score.losses.dsm_loss`);
        random draws from ``key`` (or ``seed``)."""
        return losses.dsm_loss(self, x0, t_min=t_min, weighting=weighting, seed=seed if key is None else key)

    def log_prob(self, x, exact=None, rtol=ODE_RTOL, atol=ODE_ATOL, t_min=T_MIN, prior=None, method=None, *,
                 key=None, seed=0, solver=None, steps=None, dt=None):
        """log p_{t0 + t_min}(x) through the probability-flow ODE (:func:`sdelang.score.likelihood.log_prob`);
        Hutchinson's ε (``exact=False``; ``exact=None``: exact up to 16 dimensions) from ``key`` (or
        ``seed``); ``solver`` a diffrax solver's name (Tsit5 by default; ``method`` is its older
        alias) with ``steps`` / ``dt`` for a fixed-step one."""
        return likelihood.log_prob(self, x, exact=exact, rtol=rtol, atol=atol, t_min=t_min, prior=prior,
                                   method=method, seed=seed if key is None else key, solver=solver, steps=steps,
                                   dt=dt)
