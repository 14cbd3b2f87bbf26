"""Sampling from a score model through the model's own reverse-time SDE or probability-flow ODE.

All samplers start at t1 (from the spec's prior unless ``x_init`` is given) and end at t0 + t_min.
They run the modules that sdelang derives and compiles from the forward model (``module.reverse()``:
the reverse SDE in its own time s = T - t; ``module.probability_flow()``), with the score net wrapped
so that every evaluation is counted: NFE is measured, not assumed.

- Euler–Maruyama on the reverse SDE: x ← x + f̄(s, x) h + Ḡ(s, x) ΔW̄ (the generated fused step).
- Predictor–corrector (Song et al. 2021, Alg. 2–3 / score_sde): at each t_i, Langevin corrector steps
  x ← x + ε s(x, t_i) + √(2ε) z, ε = 2 α (snr ‖z‖ / ‖s‖)² (norms per sample, averaged over the batch),
  then the reverse-diffusion predictor: one reverse-SDE step with the generic discretisation
  f Δt, G √Δt (score_sde's ``SDE.discretize`` default), i.e. the Euler–Maruyama step above.
  α = exp(2 Δt · (1/n) tr ∂f/∂x) by default: 1 - β_i for VP (score_sde's ``alphas``), 1 for VE.
- Probability-flow ODE with torchdiffeq (dopri5 by default), integrated from t1 down to t0 + t_min.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import nn

from .compiled import MissingNet
from .likelihood import divergence, rademacher
from .score_training import score_of


@dataclass
class SampleResult:
    """Samples (n, dim) at t0 + t_min, the number of score evaluations, and the method's name."""

    samples: torch.Tensor
    nfe: int
    method: str


class CountingScore(nn.Module):
    """score(x, t) that counts its calls in ``calls``."""

    def __init__(self, score: Callable):
        super().__init__()
        self.score = score
        self.calls = 0

    def forward(self, x, t):
        self.calls += 1
        return self.score(x, t)


def with_score(derived, score: Callable):
    """A fresh instance of a compiled module's generated class with the same parameters and nets,
    but ``score`` attached (the original module is not modified)."""
    cls = type(derived)
    nets = {name: net for name, net in derived.nets_by_name.items() if not isinstance(net, MissingNet)}
    nets["score"] = score
    kwargs = {cls.keyword_names[name]: value for name, value in derived.param_values.items()}
    kwargs.update({cls.keyword_names[name]: net for name, net in nets.items()})
    instance = cls(**kwargs)
    instance.model = derived.model
    return instance


def initial_state(module, n: int, x_init: Optional[torch.Tensor], seed: int, dtype, device) -> torch.Tensor:
    """x at t1: ``x_init``, or n draws from the spec's prior."""
    if x_init is not None:
        return torch.as_tensor(x_init).to(device=device, dtype=dtype)
    try:
        return module.prior_sample(n, seed=seed, dtype=dtype, device=device)
    except NotImplementedError as error:
        raise ValueError("the spec has no `prior x ~ Normal(...)`: pass x_init (draws of p at t1)") from error


def noise_generator(seed: int, device) -> torch.Generator:
    """The sampler's noise stream: a seed distinct from the prior's (seed + 1) · 1000003 ≠ seed."""
    generator = torch.Generator(device=device)
    generator.manual_seed((int(seed) + 1) * 1_000_003)
    return generator


def time_grid(module, steps: int, t_min: float):
    """Reverse-time step h and the span: ``steps`` equal steps from t1 down to t0 + t_min."""
    span = module.t1 - (module.t0 + t_min)
    if not span > 0 or steps < 1:
        raise ValueError("need t0 + t_min < t1 and at least one step")
    return span / steps


def reverse_sde_steps(module, y: torch.Tensor, steps: int, t_min: float, generator, denoise: bool, score,
                      corrector: Optional[Callable] = None):
    """Run the compiled reverse SDE; ``corrector(y, t)`` (if any) acts at each t_i before the predictor."""
    rev = with_score(module.reverse(), score)
    h = time_grid(module, steps, t_min)
    sqrt_h = math.sqrt(h)
    for i in range(steps):
        s = i * h
        if corrector is not None:
            y = corrector(y, module.t1 - s)
        dW = torch.randn(rev._noise_shape(y), generator=generator, dtype=y.dtype, device=y.device).mul_(sqrt_h)
        if denoise and i == steps - 1:
            dW.zero_()
        y = rev._step(s, y, h, dW)
    return y


@torch.no_grad()
def sample_em(module, n: int, steps: int = 500, *, t_min: float = 1e-3, seed: int = 0,
              x_init: Optional[torch.Tensor] = None, denoise: bool = True, score: Optional[Callable] = None,
              dtype=torch.float32, device="cpu") -> SampleResult:
    """Euler–Maruyama on the reverse-time SDE, ``steps`` equal steps from t1 to t0 + t_min; with
    ``denoise`` the last step adds no noise. NFE = steps."""
    counter = CountingScore(score_of(module, score))
    y = initial_state(module, n, x_init, seed, dtype, device)
    y = reverse_sde_steps(module, y, steps, t_min, noise_generator(seed, y.device), denoise, counter)
    return SampleResult(y, counter.calls, "em")


def mean_drift_slope(module, t: float, y: torch.Tensor) -> float:
    """(1/n) tr ∂f/∂x averaged over the batch (exact trace for n ≤ 16, else Hutchinson)."""
    with torch.enable_grad():
        x = y.detach().requires_grad_(True)
        n = x.shape[-1]
        eps = rademacher(x.shape, x, 0) if n > 16 else None
        return float(divergence(module.f(t, x), x, eps, create_graph=False).mean()) / n


def langevin_step(y: torch.Tensor, grad: torch.Tensor, z: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """One unadjusted Langevin step towards p: x + ε ∇log p(x) + √(2ε) z."""
    return y + eps * grad + torch.sqrt(2 * eps) * z


def langevin_corrector(module, score, snr: float, steps: int, alpha: Union[str, float], h: float, generator):
    """The Langevin corrector at time t (Song et al. 2021, Alg. 4–5 as in score_sde)."""
    if snr <= 0:
        raise ValueError(f"snr must be positive, got {snr}")

    def correct(y: torch.Tensor, t: float) -> torch.Tensor:
        a = math.exp(2 * h * mean_drift_slope(module, t, y)) if alpha == "auto" else float(alpha)
        t_vec = torch.full((y.shape[0],), t, dtype=y.dtype, device=y.device)
        for _ in range(steps):
            grad = score(y, t_vec)
            z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            grad_norm = grad.reshape(y.shape[0], -1).norm(dim=-1).mean()
            noise_norm = z.reshape(y.shape[0], -1).norm(dim=-1).mean()
            eps = 2 * a * (snr * noise_norm / grad_norm) ** 2
            y = langevin_step(y, grad, z, eps)
        return y

    return correct


@torch.no_grad()
def sample_pc(module, n: int, steps: int = 500, *, snr: float = 0.16, corrector_steps: int = 1,
              corrector_alpha: Union[str, float] = "auto", t_min: float = 1e-3, seed: int = 0,
              x_init: Optional[torch.Tensor] = None, denoise: bool = True, score: Optional[Callable] = None,
              dtype=torch.float32, device="cpu") -> SampleResult:
    """Predictor–corrector: reverse-diffusion predictor + Langevin corrector with signal-to-noise
    ratio ``snr``. NFE = steps · (1 + corrector_steps)."""
    counter = CountingScore(score_of(module, score))
    y = initial_state(module, n, x_init, seed, dtype, device)
    generator = noise_generator(seed, y.device)
    h = time_grid(module, steps, t_min)
    corrector = langevin_corrector(module, counter, snr, corrector_steps, corrector_alpha, h, generator) \
        if corrector_steps > 0 else None
    y = reverse_sde_steps(module, y, steps, t_min, generator, denoise, counter, corrector)
    return SampleResult(y, counter.calls, "pc")


ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "tsit5")


@torch.no_grad()
def sample_ode(module, n: int, *, rtol: float = 1e-5, atol: float = 1e-5, method: str = "dopri5",
               t_min: float = 1e-3, seed: int = 0, x_init: Optional[torch.Tensor] = None,
               score: Optional[Callable] = None, dtype=torch.float32, device="cpu",
               options: Optional[dict] = None) -> SampleResult:
    """The probability-flow ODE integrated by torchdiffeq from t1 down to t0 + t_min. NFE = the
    number of velocity (= score) evaluations the solver made."""
    import torchdiffeq

    counter = CountingScore(score_of(module, score))
    flow = with_score(module.probability_flow(), counter)
    y = initial_state(module, n, x_init, seed, dtype, device)
    ts = torch.tensor([module.t1, module.t0 + t_min], dtype=y.dtype, device=y.device)
    options = dict(options or {})
    if method in ADAPTIVE_METHODS:
        # Land exactly on the end time: otherwise the solver steps past t0 + t_min (possibly below t0,
        # where σ_t = 0) and interpolates back.
        options.setdefault("step_t", ts[-1:])
    out = torchdiffeq.odeint(flow, y, ts, rtol=rtol, atol=atol, method=method, options=options)
    return SampleResult(out[-1], counter.calls, "ode")


SAMPLERS = {"em": sample_em, "pc": sample_pc, "ode": sample_ode}


def sample(module, n: int, method: str = "em", **options) -> SampleResult:
    """Dispatch to ``sample_em`` / ``sample_pc`` / ``sample_ode``."""
    try:
        sampler = SAMPLERS[method]
    except KeyError:
        raise ValueError(f"method must be one of {sorted(SAMPLERS)}, got {method!r}") from None
    return sampler(module, n, **options)
