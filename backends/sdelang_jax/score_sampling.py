"""Sampling from a score model through the model's own reverse-time SDE or probability-flow ODE (JAX).

All samplers start at t1 (from the spec's prior unless ``x_init`` is given) and end at t0 + t_min.
They run the modules that sdelang derives and compiles from the forward model (``module.reverse()``:
the reverse SDE in its own time s = T - t; ``module.probability_flow()``), each as one jitted program.

- Euler–Maruyama on the reverse SDE: x ← x + f̄(s, x) h + Ḡ(s, x) ΔW̄ (the generated fused step),
  ``steps`` equal steps in a ``lax.scan``; with ``denoise`` the last step adds no noise.
- Predictor–corrector (Song et al. 2021, Alg. 2–3 / score_sde): at each t_i, Langevin corrector steps
  x ← x + ε s(x, t_i) + √(2ε) z, ε = 2 α (snr ‖z‖ / ‖s‖)² (norms per sample, averaged over the batch),
  then the reverse-diffusion predictor: one reverse-SDE step with the generic discretisation
  f Δt, G √Δt (score_sde's ``SDE.discretize`` default), i.e. the Euler–Maruyama step above.
  α = exp(2 Δt · (1/n) tr ∂f/∂x) by default: 1 - β_i Δt for VP (score_sde's ``alphas``), 1 for VE.
- Probability-flow ODE: diffrax ``Tsit5`` with a ``PIDController(rtol, atol)`` from t1 down to t0 + t_min.

NFE (score-network evaluations) is counted, not assumed:
- EM / PC: the loop body is traced once (``jax.eval_shape``) with a score wrapper that counts its
  calls; NFE = calls per body × number of iterations (the loop is a fixed-length scan).
- ODE: the score is wrapped in ``jax.debug.callback`` that increments a host counter on every
  evaluation at run time (adaptive steps, rejected steps and the solver's initial evaluations
  included; for Tsit5 it comes out as 6 · num_steps + 1, FSAL). The counter is process-global: do not
  run two ``sample_ode`` calls concurrently from different threads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .likelihood import exact_divergence, hutchinson_divergence
from .runtime import as_key
from .score_training import score_of, with_score


@dataclass
class SampleResult:
    """Samples (n, dim) at t0 + t_min, the number of score evaluations, and the method's name."""

    samples: jax.Array
    nfe: int
    method: str


# ------------------------------------------------------------------------------------ NFE counting
class TraceCountingScore:
    """score(x, t) counting the calls made while a function is traced (one trace = one loop body)."""

    def __init__(self, score: Callable):
        self.score = score
        self.calls = 0

    def __call__(self, x, t):
        self.calls += 1
        return self.score(x, t)


_ODE_CALLS = [0]


def _count_call() -> None:
    _ODE_CALLS[0] += 1


class CallbackCountingScore(eqx.Module):
    """score(x, t) that increments a host counter at run time on every evaluation."""

    score: Callable

    def __call__(self, x, t):
        jax.debug.callback(_count_call)
        return self.score(x, t)


# ------------------------------------------------------------------------------------ common pieces
def initial_state(module, n: int, x_init, seed, dtype) -> jax.Array:
    """x at t1: ``x_init``, or n draws from the spec's prior (``module.prior_sample(n, seed)``)."""
    if x_init is not None:
        return jnp.asarray(x_init, dtype=dtype)
    try:
        return module.prior_sample(n, seed=seed, dtype=dtype)
    except NotImplementedError as error:
        raise ValueError("the spec has no `prior x ~ Normal(...)`: pass x_init (draws of p at t1)") from error


def noise_key(seed) -> jax.Array:
    """The sampler's noise stream, distinct from the prior's key PRNGKey(seed)."""
    return jax.random.fold_in(as_key(seed), 0x5EED)


def time_step(module, steps: int, t_min: float) -> float:
    """Reverse-time step h: ``steps`` equal steps from t1 down to t0 + t_min."""
    span = float(module.t1) - (float(module.t0) + t_min)
    if not span > 0 or steps < 1:
        raise ValueError("need t0 + t_min < t1 and at least one step")
    return span / steps


def mean_drift_slope(module, t, y) -> jax.Array:
    """(1/n) tr ∂f/∂x of the forward drift, averaged over the batch (exact trace for n ≤ 16,
    Hutchinson with a fixed Rademacher vector otherwise)."""
    velocity = lambda z: module.drift(t, z, None)
    n = y.shape[-1]
    if n <= 16:
        _, div = exact_divergence(velocity, y)
    else:
        eps = jax.random.rademacher(jax.random.PRNGKey(0), y.shape, dtype=y.dtype)
        _, div = hutchinson_divergence(velocity, y, eps)
    return jnp.mean(div) / n


def langevin_step(y, grad, z, eps):
    """One unadjusted Langevin step towards p: x + ε ∇log p(x) + √(2ε) z."""
    return y + eps * grad + jnp.sqrt(2 * eps) * z


def langevin_correct(forward, score: Callable, y, t, key, *, snr: float, steps: int,
                     alpha: Union[str, float], h) -> jax.Array:
    """``steps`` Langevin corrector steps at time t (Song et al. 2021, Alg. 4–5 as in score_sde):
    ε = 2 α (snr ‖z‖ / ‖s‖)², ‖·‖ per sample then averaged over the batch."""
    a = jnp.exp(2 * h * mean_drift_slope(forward, t, y)) if alpha == "auto" else jnp.asarray(alpha, y.dtype)
    t_vec = jnp.full(y.shape[:-1], t, dtype=y.dtype)
    for j in range(steps):
        grad = score(y, t_vec)
        z = jax.random.normal(jax.random.fold_in(key, j), y.shape, y.dtype)
        grad_norm = jnp.mean(jnp.linalg.norm(grad.reshape(y.shape[0], -1), axis=-1))
        noise_norm = jnp.mean(jnp.linalg.norm(z.reshape(y.shape[0], -1), axis=-1))
        eps = (2 * a * (snr * noise_norm / grad_norm) ** 2).astype(y.dtype)
        y = langevin_step(y, grad, z, eps)
    return y


class Corrector(eqx.Module):
    """Langevin-corrector settings (static: part of the compiled program)."""

    snr: float = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    alpha: Union[str, float] = eqx.field(static=True)


def reverse_iteration(reverse, forward, score, y, key, i, h, t1, steps: int, denoise: bool,
                      corrector: Optional[Corrector]):
    """One iteration at s_i = i h (t_i = t1 - s_i): optional corrector, then the reverse EM step."""
    s = i * h
    k_pred, k_corr = jax.random.split(jax.random.fold_in(key, i))
    if corrector is not None and corrector.steps > 0:
        y = langevin_correct(forward, score, y, t1 - s, k_corr, snr=corrector.snr, steps=corrector.steps,
                             alpha=corrector.alpha, h=h)
    dw = jnp.sqrt(h) * jax.random.normal(k_pred, reverse.noise_shape(y.shape), y.dtype)
    if denoise:
        dw = jnp.where(i == steps - 1, jnp.zeros_like(dw), dw)
    return reverse.euler_maruyama_step(s, y, h, dw)


@eqx.filter_jit
def _reverse_loop(reverse, forward, score, y, key, h, t1, steps: int, denoise: bool,
                  corrector: Optional[Corrector]):
    def body(y, i):
        return reverse_iteration(reverse, forward, score, y, key, i, h, t1, steps, denoise, corrector), None

    y, _ = jax.lax.scan(body, y, jnp.arange(steps))
    return y


def calls_per_iteration(module, score, y, key, h, t1, steps, denoise, corrector) -> int:
    """Score calls in one traced loop iteration (``jax.eval_shape``, nothing is computed)."""
    counter = TraceCountingScore(score)
    reverse = with_score(module, counter).reverse()
    forward = with_score(module, counter)
    jax.eval_shape(lambda y_: reverse_iteration(reverse, forward, counter, y_, key, jnp.asarray(0), h, t1,
                                                steps, denoise, corrector), y)
    return counter.calls


def run_reverse_sde(module, n, steps, *, t_min, seed, x_init, denoise, score, dtype, corrector, method):
    score = score_of(module, score)
    y = initial_state(module, n, x_init, seed, dtype)
    h = jnp.asarray(time_step(module, steps, t_min), y.dtype)
    t1 = jnp.asarray(float(module.t1), y.dtype)
    key = noise_key(seed)
    forward = with_score(module, score)
    reverse = forward.reverse()
    samples = _reverse_loop(reverse, forward, score, y, key, h, t1, int(steps), bool(denoise), corrector)
    nfe = int(steps) * calls_per_iteration(module, score, y, key, h, t1, int(steps), bool(denoise), corrector)
    return SampleResult(samples, nfe, method)


# ------------------------------------------------------------------------------------ samplers
def sample_em(module, n: int, steps: int = 500, *, t_min: float = 1e-3, seed=0, x_init=None,
              denoise: bool = True, score: Optional[Callable] = None, dtype=jnp.float32) -> SampleResult:
    """Euler–Maruyama on the reverse-time SDE, ``steps`` equal steps from t1 to t0 + t_min; with
    ``denoise`` the last step adds no noise. NFE = steps."""
    return run_reverse_sde(module, n, steps, t_min=t_min, seed=seed, x_init=x_init, denoise=denoise,
                           score=score, dtype=dtype, corrector=None, method="em")


def sample_pc(module, n: int, steps: int = 500, *, snr: float = 0.16, corrector_steps: int = 1,
              corrector_alpha: Union[str, float] = "auto", t_min: float = 1e-3, seed=0, x_init=None,
              denoise: bool = True, score: Optional[Callable] = None, dtype=jnp.float32) -> SampleResult:
    """Predictor–corrector: reverse-diffusion predictor + Langevin corrector with signal-to-noise
    ratio ``snr``. NFE = steps · (1 + corrector_steps)."""
    if not snr > 0:
        raise ValueError(f"snr must be positive, got {snr}")
    if corrector_steps < 0:
        raise ValueError(f"corrector_steps must be ≥ 0, got {corrector_steps}")
    if corrector_alpha != "auto":
        corrector_alpha = float(corrector_alpha)
    corrector = Corrector(float(snr), int(corrector_steps), corrector_alpha)
    return run_reverse_sde(module, n, steps, t_min=t_min, seed=seed, x_init=x_init, denoise=denoise,
                           score=score, dtype=dtype, corrector=corrector, method="pc")


@eqx.filter_jit
def _solve_flow(flow, y, t_start, t_end, rtol, atol, max_steps: int):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, x, args: flow.drift(t, x, None)), diffrax.Tsit5(), t_start, t_end, None, y,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=max_steps,
    )
    return sol.ys[-1], sol.stats["num_steps"]


def sample_ode(module, n: int, *, rtol: float = 1e-5, atol: float = 1e-5, t_min: float = 1e-3, seed=0,
               x_init=None, score: Optional[Callable] = None, dtype=jnp.float32,
               max_steps: int = 16384) -> SampleResult:
    """The probability-flow ODE integrated by diffrax (Tsit5, PID step control) from t1 down to
    t0 + t_min. NFE = the score evaluations the solver made (counted at run time)."""
    score = score_of(module, score)
    flow = with_score(module, CallbackCountingScore(score)).probability_flow()
    y = initial_state(module, n, x_init, seed, dtype)
    t_start = jnp.asarray(float(module.t1), y.dtype)
    t_end = jnp.asarray(float(module.t0) + t_min, y.dtype)
    _ODE_CALLS[0] = 0
    samples, _ = _solve_flow(flow, y, t_start, t_end, jnp.asarray(rtol, y.dtype), jnp.asarray(atol, y.dtype),
                             int(max_steps))
    jax.block_until_ready(samples)
    jax.effects_barrier()
    return SampleResult(samples, int(_ODE_CALLS[0]), "ode")


SAMPLERS = {"em": sample_em, "pc": sample_pc, "ode": sample_ode}


def sample(module, n: int, method: str = "em", **options) -> SampleResult:
    """Dispatch to ``sample_em`` / ``sample_pc`` / ``sample_ode``."""
    try:
        sampler = SAMPLERS[method]
    except KeyError:
        raise ValueError(f"method must be one of {sorted(SAMPLERS)}, got {method!r}") from None
    return sampler(module, n, **options)
