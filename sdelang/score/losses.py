"""Score-matching losses for any compiled SDE module, written once for both backends.

Denoising score matching (Vincent 2011; Song et al. 2021) with the perturbation kernel
x_t | x_0 ~ N(m_t, Σ_t) that ``model.marginal()`` derives for an affine SDE. With t ~ U(t0 + t_min, t1)
(drawn first) and ε ~ N(0, I):
    diagonal kernel  x_t = m_t + σ_t ⊙ ε,  target ∇ log p(x_t | x_0) = -ε / σ_t;
    full kernel      x_t = m_t + L ε (Σ_t = L Lᵀ),  target -Σ_t⁻¹(x_t - m_t) = -L⁻ᵀ ε.
Per sample, with r = s_θ(x_t, t) - target, the loss is rᵀ Λ r for
    "sigma2"      Λ = Σ_t:      ||σ ⊙ s + ε||² (diagonal), ||Lᵀ s + ε||² (full)
    "likelihood"  Λ = D = G Gᵀ(t, x_t): Song et al. 2021's likelihood weighting g(t)²
    "none"        Λ = I
    "preconditioned"  (diagonal kernel, a network with ``loss_weight``, the EDM-preconditioned one of
                  :mod:`sdelang.score.precondition`) Λ = Σ_t diag(w(x_t, t)): the net's own squared
                  error |F - F_target|², w = σ̃² / c_out².
Its minimiser is the marginal score ∇ log p_t (DSM = Λ-weighted explicit score matching + a constant).

Sliced score matching (Song et al. 2019) needs no kernel: for x_t ~ p_t and projections v with
E[v vᵀ] = I,  E[vᵀ ∇_x(vᵀ (w² ⊙ s)) + ½ (vᵀ (w ⊙ s))²] = ½ E[(s - ∇log p_t)ᵀ W² (s - ∇log p_t)] + const
(integration by parts: E_p[sᵀ W² ∇log p] = -E_p[∇·(W² s)]), W = diag(w).

Random numbers come from a :class:`~sdelang.score.protocol.RandomStream` (``stream``, as the
trainer passes) or from ``seed`` (an int, or a JAX key): the same seed gives the same t, ε and v.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

from .counting import score_of
from .defaults import T_MIN

DSM_WEIGHTINGS = ("sigma2", "likelihood", "none", "preconditioned")
SSM_WEIGHTINGS = ("none", "likelihood", "sigma2")
PROJECTIONS = ("rademacher", "gaussian")


def has_kernel(module) -> bool:
    return getattr(module, "kernel_kind", None) is not None


def has_diagonal_kernel(module) -> bool:
    return getattr(module, "kernel_kind", None) == "diagonal"


def kernel_wide(module, x0, t):
    """The perturbation kernel evaluated in float64 where the backend allows it (a CLD covariance
    such as e^{-16t}(e^{16t} - 1 - 16t - 128t²) cancels catastrophically in float32); the mean is
    cast back to x0's dtype, the spread (std or cov) is left wide."""
    ops = module.ops
    mean, spread = module.perturbation_kernel(ops.wide(x0), ops.wide(t))
    return ops.cast(mean, ops.dtype_of(x0)), spread


def draw_times(module, stream, batch: int, t_min: float, dtype):
    """t ~ U(t0 + t_min, t1), shape (batch,)."""
    return stream.uniform((batch,), float(module.t0) + float(t_min), float(module.t1), dtype)


def diffusion_quadratic(module, t, x, r):
    """rᵀ D r = ||Gᵀ r||² per row, D = G Gᵀ at (t, x)."""
    ops = module.ops
    G = module.diffusion_matrix(t, x)
    if module.elementwise:
        return ops.sum((G * r) ** 2, axis=-1)
    return ops.sum(ops.einsum("...nm,...n->...m", G, r) ** 2, axis=-1)


def diagonal_diffusion(module, t, x):
    """The diagonal g(t, x) of G, shaped like x, for diagonal (or elementwise) noise."""
    if module.elementwise:
        return module.diffusion_matrix(t, x)
    if not module.diagonal_noise:
        raise NotImplementedError("this weighting needs diagonal noise (G diagonal)")
    return module.ops.diagonal(module.diffusion_matrix(t, x))


def perturb(module, x0, t_min: float, stream):
    """(t, ε, m_t, spread, x_t) with x_t = m_t + σ_t ⊙ ε (diagonal) or m_t + L ε (full)."""
    ops = module.ops
    dtype = ops.dtype_of(x0)
    t = draw_times(module, stream, x0.shape[0], t_min, dtype)
    eps = stream.normal(x0.shape, dtype)
    mean, spread = kernel_wide(module, x0, t)
    if has_diagonal_kernel(module):
        return t, eps, spread, mean + ops.cast(spread, dtype) * eps
    chol = ops.cholesky(spread)  # wide precision
    return t, eps, chol, mean + ops.einsum("...ij,...j->...i", ops.cast(chol, dtype), eps)


def _stream(module, stream, seed, like):
    return stream if stream is not None else module.ops.stream(seed, device=module.ops.device_of(like))


def _check(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def dsm_loss(module, x0, *, t_min: float = T_MIN, weighting: str = "sigma2", seed=0, stream=None,
             score: Optional[Callable] = None):
    """Denoising score-matching loss (module docstring), mean over the batch; t is drawn before ε."""
    _check("weighting", weighting, DSM_WEIGHTINGS)
    if not has_kernel(module):
        raise NotImplementedError("dsm_loss needs a Gaussian perturbation kernel (an affine SDE, "
                                  "model.marginal()); use ssm_loss for this model")
    ops = module.ops
    score = score_of(module, score)
    if weighting == "preconditioned" and not (has_diagonal_kernel(module) and hasattr(score, "loss_weight")):
        raise ValueError("weighting 'preconditioned' needs a diagonal kernel and a preconditioned score net "
                         "(one with loss_weight(x, t), e.g. KernelPreconditionedScore)")
    x0 = ops.asarray(x0)
    dtype = ops.dtype_of(x0)
    t, eps, spread, xt = perturb(module, x0, t_min, _stream(module, stream, seed, x0))
    s = score(xt, t)
    if has_diagonal_kernel(module):
        std = ops.cast(spread, dtype)
        if weighting == "sigma2":
            return ops.mean(ops.sum((std * s + eps) ** 2, axis=-1))
        if weighting == "preconditioned":
            return ops.mean(ops.sum(score.loss_weight(xt, t) * (std * s + eps) ** 2, axis=-1))
        r = s + eps / std
    else:
        L = ops.cast(spread, dtype)
        if weighting == "sigma2":
            return ops.mean(ops.sum((ops.einsum("...ji,...j->...i", L, s) + eps) ** 2, axis=-1))
        target = -ops.solve_upper(ops.transpose(spread), ops.cast(eps, ops.dtype_of(spread)))
        r = s - ops.cast(target, dtype)
    per_sample = diffusion_quadratic(module, t, xt, r) if weighting == "likelihood" else ops.sum(r ** 2, axis=-1)
    return ops.mean(per_sample)


def perturbed_samples(module, x0, t_min: float, stream, sim_steps: int = 100, use_kernel: Optional[bool] = None):
    """(t, x_t) with x_t ~ p(x_t | x_0): from the kernel when the model has one (``use_kernel``
    None or True; the same draws as ``dsm_loss``), else the forward SDE simulated by Euler–Maruyama
    on a grid of ``sim_steps`` steps over [t0, t1], each row read at its own random grid time
    ≥ t0 + t_min."""
    ops = module.ops
    if use_kernel is None:
        use_kernel = has_kernel(module)
    if use_kernel:
        t, _, _, xt = perturb(module, x0, t_min, stream)
        return t, xt
    t0, t1 = float(module.t0), float(module.t1)
    h = (t1 - t0) / sim_steps
    ts = [t0 + k * h for k in range(sim_steps + 1)]
    path = ops.stop_gradient(module.simulate(x0, ts, dt=h, seed=stream.spawn_seed()))  # (sim_steps + 1, batch, n)
    first = min(sim_steps, max(1, math.ceil(t_min / h - 1e-9)))
    index = stream.randint(first, sim_steps + 1, (x0.shape[0],))
    times = ops.asarray(ts, dtype=ops.dtype_of(x0), device=ops.device_of(x0))
    return times[index], ops.take_rows(path, index)


def projections(stream, shape, kind: str, dtype):
    """Random v with E[v vᵀ] = I: Rademacher (±1) or standard Gaussian."""
    _check("projection", kind, PROJECTIONS)
    return stream.rademacher(shape, dtype) if kind == "rademacher" else stream.normal(shape, dtype)


def ssm_weights(module, weighting: str, t, x, x0):
    """w of the W = diag(w) weighting at (t, x), broadcastable to x."""
    ops = module.ops
    if weighting == "none":
        return ops.ones_like(x[..., :1])
    if weighting == "likelihood":
        return diagonal_diffusion(module, t, x)
    if not has_diagonal_kernel(module):
        raise NotImplementedError("ssm weighting 'sigma2' needs a diagonal perturbation kernel")
    return ops.cast(kernel_wide(module, x0, t)[1], ops.dtype_of(x))


def ssm_loss(module, x0, *, t_min: float = T_MIN, weighting: str = "none", projection: str = "rademacher",
             sim_steps: int = 100, use_kernel: Optional[bool] = None, seed=0, stream=None,
             score: Optional[Callable] = None):
    """Sliced score-matching loss vᵀ ∇_x(vᵀ (w² ⊙ s)) + ½ (vᵀ (w ⊙ s))², mean over the batch
    (module docstring). vᵀ ∇_x(vᵀ u) = vᵀ (∂u/∂x) v is Hutchinson's divergence of u = w² ⊙ s with
    the projection v (the networks act on each batch row separately)."""
    _check("weighting", weighting, SSM_WEIGHTINGS)
    _check("projection", projection, PROJECTIONS)
    ops = module.ops
    score = score_of(module, score)
    x0 = ops.asarray(x0)
    stream = _stream(module, stream, seed, x0)
    t, xt = perturbed_samples(module, x0, t_min, stream, sim_steps, use_kernel)
    v = projections(stream, xt.shape, projection, ops.dtype_of(xt))

    def weighted(z):
        s = score(z, t)
        w = ssm_weights(module, weighting, t, z, x0)
        return w * w * s, w * s

    _, jacobian_term, ws = ops.divergence(weighted, xt, v, has_aux=True)
    return ops.mean(jacobian_term + 0.5 * ops.sum(v * ws, axis=-1) ** 2)


LOSSES: Dict[str, Callable] = {"dsm": dsm_loss, "ssm": ssm_loss}
