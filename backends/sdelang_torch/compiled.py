"""Base classes of generated torch modules: parameters, networks and everything that is the same
for every model (simulation loop, derived modules, priors, score matching, likelihood).

The generated subclass supplies the mathematics: ``f``/``g``/... (SDE) or ``forward`` (ODE), the
fused ``_step``, ``_noise_shape`` and, where the model admits them, ``_kernel``,
``_prior_normal`` and ``_init_normal``.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
from torch import nn

from sdelang.emit.embedded_spec import model_from_spec

from .likelihood import flow_log_prob
from .simulate import euler_maruyama

LOG_2PI = math.log(2 * math.pi)


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

    # ------------------------------------------------------------------ sizes
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
        (callable net(x, t)) attached to this derived module only (not cached)."""
        net = None
        if callable(score):
            net, score = score, None
        key = (kind, score)
        if net is not None or key not in self._derived:
            if self.model is None:
                self.model = model_from_spec(self.sdelang_spec, f"{kind}()")
            from .backend import backend

            derived_model = getattr(self.model, kind)(score=score)
            params = {p.name: self.param_values[p.name] for p in derived_model.parameters if p.name in self.param_values}
            nets = {n.name: self.nets_by_name[n.name] for n in derived_model.nets
                    if n.name in self.nets_by_name and not isinstance(self.nets_by_name[n.name], MissingNet)}
            if net is not None:
                nets["score"] = net
                return backend.compile(derived_model, **nets, **params)
            self._derived[key] = backend.compile(derived_model, **nets, **params)
        return self._derived[key]

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

    def dsm_loss(self, x0: torch.Tensor, t_min: float = 1e-3, weighting: str = "sigma2",
                 seed: Optional[int] = None) -> torch.Tensor:
        """Denoising score matching with the attached ``score`` net, averaged over the batch:
        t ~ U(t0 + t_min, t1), ε ~ N(0, I), x_t = mean(x0, t) + σ_t ε and, for a diagonal kernel,

        "sigma2":     ||σ_t s(x_t, t) + ε||²           (λ = σ_t²),
        "likelihood": Σ_i g_i(t)² (s_i + ε_i/σ_{t,i})²  (λ = g², Song et al. 2021),

        full (coupled) kernels via a Cholesky factor (:func:`sdelang_torch.score_training.dsm_loss`).
        """
        from .score_training import dsm_loss

        generator = None
        if seed is not None:
            generator = torch.Generator(device=x0.device)
            generator.manual_seed(int(seed))
        return dsm_loss(self, x0, t_min=t_min, weighting=weighting, generator=generator)

    # ------------------------------------------------------------------ likelihood
    def _velocity_module(self) -> "CompiledModule":
        return self.probability_flow()

    def log_prob(self, x: torch.Tensor, exact: bool = True, rtol: float = 1e-5, atol: float = 1e-5,
                 t_min: float = 1e-3, prior: Optional[Callable] = None, method: str = "dopri5",
                 seed: int = 0) -> torch.Tensor:
        """log p_{t0 + t_min}(x) through the probability-flow ODE, shape (batch,): integrate
        (x, Δ) with dΔ/dt = ∇·v from t0 + t_min to t1 and add log p_{t1}(x(t1)) from ``prior``
        (a callable) or the spec's prior. ∇·v exact (``exact=True``) or Hutchinson (fixed
        Rademacher ε from ``seed``)."""
        flow = self._velocity_module()
        prior = prior if prior is not None else (
            flow.prior_log_prob if hasattr(flow, "_prior_normal") else self.prior_log_prob)
        return flow_log_prob(flow.forward, prior, x, self.t0 + t_min, self.t1, exact=exact, rtol=rtol,
                             atol=atol, method=method, seed=seed)


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


class CompiledODE(CompiledModule):
    """An ODE module: ``forward(t, y)`` is the velocity, for ``torchdiffeq.odeint(_adjoint)``."""

    is_sde = False

    def drift_fn(self, t, y: torch.Tensor) -> torch.Tensor:
        """v(t, y), (batch, n)."""
        return self.forward(t, y)

    def diffusion_matrix(self, t, y: torch.Tensor) -> torch.Tensor:
        """An ODE has no noise: (batch, n, 0)."""
        return y.new_zeros(y.shape + (0,))

    def _velocity_module(self) -> "CompiledModule":
        return self
