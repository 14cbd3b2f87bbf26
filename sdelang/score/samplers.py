"""Sampling from a score model through the model's own reverse-time SDE or probability-flow ODE,
written once over the backend's :class:`~sdelang.score.protocol.ArrayOps`.

All samplers start at t1 (from the spec's prior unless ``x_init`` is given) and end at t0 + t_min.
They run the modules that sdelang derives and compiles from the forward model (``module.reverse()``:
the reverse SDE in its own time s = T - t; ``module.probability_flow()``).

- Euler–Maruyama on the reverse SDE: x ← x + f̄(s, x) h + Ḡ(s, x) ΔW̄ (the generated fused step),
  ``steps`` equal steps; with ``denoise`` the last step adds no noise. NFE = steps.
- Predictor–corrector (Song et al. 2021, Alg. 2–3 / score_sde): at each t_i the Langevin corrector
  (:mod:`sdelang.score.langevin`), then the reverse-diffusion predictor f Δt + G √Δt z, which is the
  Euler–Maruyama step above. NFE = steps · (1 + corrector_steps).
- Probability-flow ODE with the backend's ODE solver chosen by name (``solver=``; by default
  adaptive: torch torchdiffeq dopri5, JAX diffrax Tsit5 with a PID controller; fixed-step ones take
  ``steps=`` or ``dt=``), from t1 down to t0 + t_min. NFE from the solver's own count.

The few-step samplers (DDIM, DPM-Solver, DPM-Solver++, DEIS, Heun, ancestral) are in
:mod:`sdelang.score.fast_samplers`; :func:`sample` dispatches to all of them.

On JAX each sampler is one jitted program (compiled once per static configuration); on torch it
runs eagerly under ``no_grad``. No step synchronises with the host.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

from .affine_schedule import AffineSchedule
from .counting import CountingScore, score_of
from .defaults import EM_STEPS, ODE_ATOL, ODE_RTOL, SAMPLER_SALT, SNR, T_MIN, ode_solver, ode_steps, reverse_time_step
from .langevin import Corrector, affine_slope_schedule, langevin_correct
from .fast_samplers import FAST_STEPS, ORDERS, sample_fast
from .initial_state import initial_state
from .result import SampleResult
from .tweedie import tweedie_coefficients, tweedie_denoise


@dataclass(frozen=True)
class ReversePlan:
    """The static part of a reverse-SDE run (hashable: part of the compiled program on JAX)."""

    steps: int
    denoise: bool
    corrector: Optional[Corrector]


def reverse_sde_loop(plan: ReversePlan, reverse, forward, score, y, stream, h, t1):
    """(x at t0 + t_min, NFE): ``plan.steps`` iterations at s_i = i h (t_i = t1 - s_i) of the
    optional corrector followed by the reverse Euler–Maruyama step."""
    ops = reverse.ops
    counted = CountingScore(score)
    reverse = reverse.with_score(counted)
    sqrt_h = ops.sqrt(h)
    last = plan.steps - 1
    corrects = plan.corrector is not None and plan.corrector.steps > 0
    slopes = None
    if corrects and plan.corrector.alpha == "auto":
        slopes = affine_slope_schedule(forward, t1 - h * ops.arange(plan.steps, like=y), y)

    def body(i, carry):
        y, nfe = carry
        before = counted.calls
        noise = stream.at(i)
        s = i * h
        if corrects:
            slope = None if slopes is None else slopes[i]
            y = langevin_correct(forward, counted, y, t1 - s, noise, plan.corrector, h, slope)
        scale = ops.where(i == last, 0 * sqrt_h, sqrt_h) if plan.denoise else sqrt_h
        dw = noise.normal(reverse.noise_shape(y.shape), y.dtype, scale=scale)
        y = reverse.euler_maruyama_step(s, y, h, dw)
        return y, nfe + (counted.calls - before)

    return ops.fori(body, (y, 0), plan.steps)


def run_reverse_sde(module, n, steps, *, t_min, seed, x_init, denoise, score, dtype, device,
                    corrector: Optional[Corrector], method: str) -> SampleResult:
    ops = module.ops
    score = score_of(module, score)
    dtype = ops.default_dtype if dtype is None else dtype
    y = initial_state(module, n, x_init, seed, dtype, device)
    h = reverse_time_step(module, steps, t_min)
    plan = ReversePlan(int(steps), bool(denoise), corrector)
    forward, reverse = module, module.reverse()
    stream = ops.stream(seed, salt=SAMPLER_SALT, device=ops.device_of(y))
    with ops.no_grad(), ops.threads(math.prod(y.shape)):
        samples, nfe = ops.jit(reverse_sde_loop)(plan, reverse, forward, score, y, stream,
                                                 ops.scalar(h, like=y), ops.scalar(float(module.t1), like=y))
    return SampleResult(samples, ops.to_int(nfe), method)


def sample_em(module, n: int, steps: int = EM_STEPS, *, t_min: float = T_MIN, seed=0, x_init=None,
              denoise: bool = True, score: Optional[Callable] = None, dtype=None, device=None) -> SampleResult:
    """Euler–Maruyama on the reverse-time SDE, ``steps`` equal steps from t1 to t0 + t_min; with
    ``denoise`` the last step adds no noise. NFE = steps."""
    return run_reverse_sde(module, n, steps, t_min=t_min, seed=seed, x_init=x_init, denoise=denoise, score=score,
                           dtype=dtype, device=device, corrector=None, method="em")


def sample_pc(module, n: int, steps: int = EM_STEPS, *, snr: float = SNR, corrector_steps: int = 1,
              corrector_alpha: Union[str, float] = "auto", t_min: float = T_MIN, seed=0, x_init=None,
              denoise: bool = True, score: Optional[Callable] = None, dtype=None, device=None) -> SampleResult:
    """Predictor–corrector: reverse-diffusion predictor + Langevin corrector with signal-to-noise
    ratio ``snr``. NFE = steps · (1 + corrector_steps)."""
    alpha = corrector_alpha if corrector_alpha == "auto" else float(corrector_alpha)
    corrector = Corrector(float(snr), corrector_steps, alpha)
    return run_reverse_sde(module, n, steps, t_min=t_min, seed=seed, x_init=x_init, denoise=denoise, score=score,
                           dtype=dtype, device=device, corrector=corrector, method="pc")


def flow_velocity(t, y, flow):
    """dx/dt of the probability-flow ODE."""
    return flow.drift_fn(t, y)


def sample_ode(module, n: int, *, rtol: float = ODE_RTOL, atol: float = ODE_ATOL, solver: Optional[str] = None,
               steps: Optional[int] = None, dt: Optional[float] = None, t_min: float = T_MIN, seed=0, x_init=None,
               denoise: bool = False, score: Optional[Callable] = None, dtype=None, device=None,
               options: Optional[dict] = None, method: Optional[str] = None) -> SampleResult:
    """The probability-flow ODE from t1 down to t0 + t_min by the backend's solver ``solver``
    (``method`` is its older alias). torch: a torchdiffeq method, adaptive "dopri5" (the default),
    "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "tsit5", or fixed-step "euler", "midpoint",
    "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams"; JAX: a diffrax solver, adaptive
    "tsit5" (the default), "dopri5", "dopri8", or fixed-step "euler", "heun", "midpoint",
    "ralston", "rk4". Adaptive solvers step by ``rtol`` / ``atol`` and ignore ``steps`` / ``dt``;
    fixed-step ones need ``steps`` equal steps or a step size ``dt`` (then ceil(span / dt) equal
    steps). ``options``: the backend solver's own (torchdiffeq options; JAX: ``max_steps``).
    NFE = the velocity (= score) evaluations the solver made, from its own statistics."""
    ops = module.ops
    score = score_of(module, score)
    dtype = ops.default_dtype if dtype is None else dtype
    flow = module.probability_flow(score)
    t_end = float(module.t0) + float(t_min)
    if not t_end < float(module.t1):
        raise ValueError(f"need t0 + t_min < t1, got t_min={t_min}")
    solver = ode_solver(solver, method)
    steps = ode_steps(float(module.t1), t_end, steps, dt)
    final = tweedie_coefficients(AffineSchedule(module), t_end) if denoise else None
    y = initial_state(module, n, x_init, seed, dtype, device)
    with ops.no_grad(), ops.threads(math.prod(y.shape)):
        samples, nfe = ops.solve_ode(flow_velocity, flow, y, float(module.t1), t_end, rtol=rtol, atol=atol,
                                     method=solver, steps=steps, options=options)
        if final is not None:
            samples = tweedie_denoise(ops, score, samples, final)
    return SampleResult(samples, ops.to_int(nfe) + (final is not None), "ode")


SAMPLERS = {"em": sample_em, "pc": sample_pc, "ode": sample_ode,
            **{name: functools.partial(sample_fast, method=name) for name in ORDERS}}


def default_steps(method: str) -> Optional[int]:
    """The steps a sampler takes when none are given (None: "ode" is adaptive)."""
    return None if method == "ode" else EM_STEPS if method in ("em", "pc") else FAST_STEPS


def sampler_of(method: str) -> Callable:
    """The sampler function of ``method`` (ValueError naming the methods for an unknown one)."""
    try:
        return SAMPLERS[method]
    except KeyError:
        raise ValueError(f"method must be one of {sorted(SAMPLERS)}, got {method!r}") from None


def sampler_options(method: str) -> tuple:
    """The keyword options ``sample(module, n, method, ...)`` accepts for ``method`` (``score``
    included; ``order`` for every method, where em / pc / ode take only None)."""
    names = {name for name, p in inspect.signature(sampler_of(method)).parameters.items()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in ("module", "n", "method")}
    return tuple(sorted(names | {"order"}))


def sample(module, n: int, method: str = "em", **options) -> SampleResult:
    """Dispatch to ``sample_em`` / ``sample_pc`` / ``sample_ode`` or a few-step sampler of
    :mod:`sdelang.score.fast_samplers` ("ddim", "dpm-solver", "dpm-solver++", "deis", "heun",
    "ancestral"); ``order=`` is refused by the first three (they have none), ``steps=`` is ignored
    by the adaptive ODE solvers (a fixed-step ``solver=`` of "ode" takes it)."""
    sampler = sampler_of(method)
    if method in ("em", "pc", "ode") and options.pop("order", None) is not None:
        raise ValueError(f"method {method!r} takes no order=")
    return sampler(module, n, **options)
