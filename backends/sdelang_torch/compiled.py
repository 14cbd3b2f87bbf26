"""Base classes of generated torch modules: parameters, networks and everything that is the same
for every model (simulation loop, derived modules, priors, score matching, likelihood).

The generated subclass supplies the mathematics: ``f``/``g``/... (SDE) or ``forward`` (ODE), the
fused ``_step``, ``_noise_shape`` and, where the model admits them, ``_kernel``,
``_prior_normal`` and ``_init_normal``.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional

import torch
from torch import nn

from sdelang.emit.embedded_spec import model_from_spec
from sdelang.score import likelihood, losses
from sdelang.score.defaults import ODE_ATOL, ODE_RTOL, T_MIN

from .array_ops import TORCH_OPS
from .simulate import euler_maruyama

LOG_2PI = math.log(2 * math.pi)


class _Shaped(NamedTuple):
    """Stands for a state of this shape where generated code reads only ``y.shape``."""

    shape: tuple


class MissingNet:
    """Stands in for a network that was not attached; calling it explains how to attach one."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f"network '{self.name}' is not attached: pass it when compiling, "
            f"e.g. model.compile('torch', {self.name}=net), or call module.attach('{self.name}', net)"
        )


def call_net(nets: Dict[str, Callable], name: str, y: torch.Tensor, t) -> torch.Tensor:
    """nets[name](y, t), checked: a network must return one value per state component."""
    out = nets[name](y, t)
    if getattr(out, "shape", None) != y.shape:
        raise ValueError(f"network '{name}' returned shape {tuple(getattr(out, 'shape', ())) or type(out).__name__} "
                         f"for a state of shape {tuple(y.shape)}; a net must return one value per state component")
    return out


class CompiledModule(nn.Module):
    """Shared state of a generated module: ``param_values`` (Python numbers, so dtype and device
    follow the input), ``nets`` (an ``nn.ModuleDict`` of attached torch networks, registered as
    submodules), ``nets_by_name`` (every network or plain callable, a :class:`MissingNet` for absent
    ones) and ``model`` (the sdelang Model it was generated from, set by the backend)."""

    param_defaults: Dict[str, object] = {}
    sdelang_spec: Optional[str] = None  # the model's .sde text (generated code sets it)
    net_names: tuple = ()
    extra_net_names: tuple = ()
    elementwise = False
    dimension_param = None
    dimension_value = None
    n_states = None
    t0 = 0.0
    t1 = 1.0
    ops = TORCH_OPS  # the score layer's array operations (sdelang.score.protocol.ArrayOps)
    kernel_kind = None  # "diagonal" | "full" where the model has a Gaussian perturbation kernel

    def __init__(self, params: Dict[str, object], nets: Dict[str, object]):
        super().__init__()
        values = {}
        for name, default in self.param_defaults.items():
            value = params.get(name)
            value = default if value is None else value
            if value is None:
                raise TypeError(f"parameter '{name}' has no default value: pass {name}=...")
            if torch.is_tensor(value):
                value = value.item()
            values[name] = int(value) if isinstance(default, int) and not isinstance(default, bool) else float(value)
        self.param_values = values
        self.nets = nn.ModuleDict()
        self.nets_by_name: Dict[str, Callable] = {
            name: MissingNet(name) for name in self.net_names + self.extra_net_names}
        self.model = None
        self._derived: Dict[tuple, "CompiledModule"] = {}
        for name, net in nets.items():
            if net is not None:
                self.attach(name, net)

    def attach(self, name: str, net) -> None:
        """Attach a network (an ``nn.Module``, registered as a submodule) or a plain callable."""
        if name not in self.net_names + self.extra_net_names:
            raise KeyError(f"this model has no network '{name}'; it has {list(self.net_names + self.extra_net_names)}")
        if not callable(net):
            raise TypeError(f"network '{name}' must be callable as net(x, t), got {type(net).__name__}")
        if isinstance(net, nn.Module):
            self.nets[name] = net
        elif name in self.nets:
            del self.nets[name]
        self.nets_by_name[name] = net
        for derived in self._derived.values():
            if name in derived.net_names + derived.extra_net_names:
                derived.attach(name, net)

    @property
    def score_net(self) -> Optional[Callable]:
        """The attached ``score`` network, or None."""
        net = self.nets_by_name.get("score")
        return None if net is None or isinstance(net, MissingNet) else net

    def with_score(self, score: Optional[Callable]) -> "CompiledModule":
        """A new module of the same generated class, parameters and networks, with ``score``
        attached (None: detached); this module is not modified."""
        cls = type(self)
        nets = {name: net for name, net in self.nets_by_name.items() if not isinstance(net, MissingNet)}
        nets.pop("score", None)
        if score is not None:
            if "score" not in self.net_names + self.extra_net_names:
                raise ValueError(f"{cls.__name__} has no 'score' network")
            nets["score"] = score
        kwargs = {cls.keyword_names[name]: value for name, value in self.param_values.items()}
        kwargs.update({cls.keyword_names[name]: net for name, net in nets.items()})
        instance = cls(**kwargs)
        instance.model = self.model
        return instance

    # ------------------------------------------------------------------ sizes
    @property
    def diagonal_noise(self) -> bool:
        """G is diagonal: ΔW has the state's shape."""
        return getattr(self, "noise_type", None) == "diagonal"

    @property
    def has_prior(self) -> bool:
        return hasattr(self, "_prior_normal")

    @property
    def dimension(self) -> Optional[int]:
        """Number of state components: n, or the elementwise model's d (None when d is unknown)."""
        if not self.elementwise:
            return self.n_states
        if self.dimension_param is not None:
            return int(self.param_values[self.dimension_param])
        return self.dimension_value

    # ------------------------------------------------------------------ simulation
    def simulate(self, x0: torch.Tensor, ts, dt: float, seed: int = 0) -> torch.Tensor:
        """Fixed-step Euler–Maruyama (Euler for an ODE) from ts[0]: states at every time of ``ts``,
        shape (len(ts), batch, n). Stratonovich models step with their Itô drift (converted when
        the code was generated). Differentiable with respect to x0 and the networks."""
        n = self.dimension
        if x0.dim() != 2 or (n is not None and x0.shape[-1] != n):
            raise ValueError(f"x0 must have shape (batch, {n if n is not None else 'n'}), got {tuple(x0.shape)}")
        return euler_maruyama(self._step, self._noise_shape(x0), x0, ts, dt, seed)

    # ------------------------------------------------------------------ derived modules
    def _derived_module(self, kind: str, score):
        """``score``: None (the attached ``score`` net), a declared density's name, or a network
        (callable net(x, t)) attached to this derived module only (not cached on this instance).
        The derived class is generated once per generated class (a class-level cache, as on JAX),
        so a fresh instance (``with_score``) builds its derived modules without code generation."""
        net = None
        if callable(score):
            net, score = score, None
        key = (kind, score)
        if net is None and key in self._derived:
            return self._derived[key]
        derived_cls, derived_model = self._derived_class(kind, score)
        nets = {name: value for name, value in self.nets_by_name.items()
                if not isinstance(value, MissingNet) and name in derived_cls.net_names + derived_cls.extra_net_names}
        if net is not None:
            nets["score"] = net
        kwargs = {derived_cls.keyword_names[name]: value for name, value in self.param_values.items()
                  if name in derived_cls.param_defaults}
        kwargs.update({derived_cls.keyword_names[name]: value for name, value in nets.items()})
        instance = derived_cls(**kwargs)
        instance.model = derived_model
        if net is None:
            self._derived[key] = instance
        return instance

    def _derived_class(self, kind: str, score):
        """(generated class, Model) of ``model.<kind>(score=score)``, cached on this module's class."""
        cls = type(self)
        cache = cls.__dict__.get("_sdelang_derived_classes")
        if cache is None:
            cache = {}
            setattr(cls, "_sdelang_derived_classes", cache)
        if (kind, score) not in cache:
            if self.model is None:
                self.model = model_from_spec(self.sdelang_spec, f"{kind}()")
            from .backend import backend

            derived_model = getattr(self.model, kind)(score=score)
            cache[(kind, score)] = (backend.module_class(derived_model), derived_model)
        return cache[(kind, score)]

    def reverse(self, score=None) -> "CompiledModule":
        """The compiled reverse-time SDE (``model.reverse(score)``), in its own time s = T - t,
        sharing this module's networks and parameter values; ``score`` may also be a network."""
        return self._derived_module("reverse", score)

    def probability_flow(self, score=None) -> "CompiledModule":
        """The compiled probability-flow ODE (``model.probability_flow(score)``), sharing networks
        and parameter values; ``score`` may also be a network."""
        return self._derived_module("probability_flow", score)

    # ------------------------------------------------------------------ priors and kernels
    def _normal_law(self, which: str):
        method = getattr(self, f"_{which}_normal", None)
        if method is None:
            raise NotImplementedError(f"this model has no `{which} ~ Normal(loc, scale)` for every state")
        return method()

    def _law_tensors(self, which: str, like: torch.Tensor):
        locs, scales = self._normal_law(which)
        loc = torch.tensor(locs, dtype=like.dtype, device=like.device)
        scale = torch.tensor(scales, dtype=like.dtype, device=like.device)
        return loc, scale  # (n,), or (1,) for an elementwise model: broadcasts over components

    def _sample_law(self, which: str, batch: int, seed: int, dtype, device) -> torch.Tensor:
        n = self.dimension
        if n is None:
            raise ValueError("the state dimension d has no value; pass it as a parameter")
        like = torch.empty(0, dtype=dtype, device=device)
        loc, scale = self._law_tensors(which, like)
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed))
        z = torch.randn((batch, n), generator=generator, dtype=dtype, device=device)
        return loc + scale * z

    def prior_sample(self, batch: int, seed: int = 0, dtype=torch.float32, device="cpu") -> torch.Tensor:
        """Draws (batch, n) from the spec's ``prior x ~ Normal(loc, scale)``."""
        return self._sample_law("prior", batch, seed, dtype, device)

    def init_sample(self, batch: int, seed: int = 0, dtype=torch.float32, device="cpu") -> torch.Tensor:
        """Draws (batch, n) from the spec's ``init x ~ Normal(loc, scale)`` (a reverse model's init
        is the forward prior)."""
        return self._sample_law("init", batch, seed, dtype, device)

    def prior_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; loc, diag(scale²)) summed over components, shape (batch,)."""
        loc, scale = self._law_tensors("prior", x)
        z = (x - loc) / scale
        return (-0.5 * z ** 2 - torch.log(scale) - 0.5 * LOG_2PI).sum(-1)

    def perturbation_kernel(self, x0: torch.Tensor, t):
        """x_t | x_t0 = x0 ~ N(mean, ·): ``(mean, std)`` (both (batch, n)) for a diagonal kernel,
        ``(mean, cov)`` with cov (batch, n, n) for a coupled one (see ``kernel_kind``)."""
        kernel = getattr(self, "_kernel", None)
        if kernel is None:
            raise NotImplementedError("this model has no Gaussian perturbation kernel (model.marginal() failed)")
        return kernel(t, x0)

    def dsm_loss(self, x0: torch.Tensor, t_min: float = T_MIN, weighting: str = "sigma2",
                 seed: int = 0) -> torch.Tensor:
        """Denoising score matching with the attached ``score`` net, averaged over the batch
        (:func:`sdelang.score.losses.dsm_loss`): t ~ U(t0 + t_min, t1), ε ~ N(0, I) from ``seed``."""
        return losses.dsm_loss(self, x0, t_min=t_min, weighting=weighting, seed=seed)

    # ------------------------------------------------------------------ likelihood
    def log_prob(self, x: torch.Tensor, exact: Optional[bool] = None, rtol: float = ODE_RTOL, atol: float = ODE_ATOL,
                 t_min: float = T_MIN, prior: Optional[Callable] = None, method: Optional[str] = None,
                 seed: int = 0, *, solver: Optional[str] = None, steps: Optional[int] = None,
                 dt: Optional[float] = None) -> torch.Tensor:
        """log p_{t0 + t_min}(x) through the probability-flow ODE, shape (batch,)
        (:func:`sdelang.score.likelihood.log_prob`): ``prior`` (a log-density at t1) defaults to
        the spec's prior; ∇·v exact, or Hutchinson with a fixed Rademacher ε from ``seed``
        (``exact=None``: exact up to 16 dimensions); ``solver`` (torchdiffeq's method, dopri5 by
        default; ``method`` is its older alias) with ``steps`` / ``dt`` for a fixed-step one."""
        return likelihood.log_prob(self, x, exact=exact, rtol=rtol, atol=atol, t_min=t_min, prior=prior,
                                   method=method, seed=seed, solver=solver, steps=steps, dt=dt)


class CompiledSDE(CompiledModule):
    """An SDE module usable as it is by ``torchsde.sdeint`` / ``sdeint_adjoint``."""

    is_sde = True

    def drift_fn(self, t, y: torch.Tensor) -> torch.Tensor:
        """f(t, y), (batch, n) (the model's own calculus)."""
        return self.f(t, y)

    def diffusion_matrix(self, t, y: torch.Tensor) -> torch.Tensor:
        """G(t, y) dense, (batch, n, m); for an elementwise model the (batch, d) diagonal entries."""
        g = self.g(t, y)
        if self.elementwise:
            return g
        if self.noise_type == "diagonal":
            return torch.diag_embed(g)
        return g

    def euler_maruyama_step(self, t, y: torch.Tensor, h, dw: torch.Tensor) -> torch.Tensor:
        """y + f(t, y) h + G(t, y) ΔW (the generated fused step; t and h Python floats)."""
        return self._step(t, y, h, dw)

    def noise_shape(self, state_shape) -> tuple:
        """Shape of one ΔW for a state of shape ``state_shape``."""
        return self._noise_shape(_Shaped(tuple(state_shape)))


class CompiledODE(CompiledModule):
    """An ODE module: ``forward(t, y)`` is the velocity, for ``torchdiffeq.odeint(_adjoint)``."""

    is_sde = False

    def drift_fn(self, t, y: torch.Tensor) -> torch.Tensor:
        """v(t, y), (batch, n)."""
        return self.forward(t, y)

    def diffusion_matrix(self, t, y: torch.Tensor) -> torch.Tensor:
        """An ODE has no noise: (batch, n, 0)."""
        return y.new_zeros(y.shape + (0,))
