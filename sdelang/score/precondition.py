"""EDM preconditioning of a score network (Karras et al. 2022, Table 1 and App. B.6), derived from
any affine spec's diagonal perturbation kernel x_t | x_0 ~ N(a_t x_0 + b_t, σ_t²) (elementwise a, b, σ).

In the scaled variable x̃ = (x - b_t) / a_t = x_0 + σ̃_t ε, σ̃_t = σ_t / a_t, every spec looks like
EDM's x_0 + σ ε. The network F sees c_in x̃ and c_noise(t), and the denoiser is
    D(x, t) = c_skip x̃ + c_out F(c_in x̃, c_noise(t)),       c_in = 1 / √(σ̃² + σ_d²),
with σ_d the data's standard deviation and, by parametrisation (what F predicts),
    "eps"   c_skip = 1,  c_out = -σ̃          (F predicts ε; EDM's VP column, the default)
    "v"     c_skip = σ_d² / (σ̃² + σ_d²),  c_out = σ̃ σ_d / √(σ̃² + σ_d²)   (EDM's own; v-prediction)
    "x0"    c_skip = 0,  c_out = 1           (F predicts x_0)
    "score" F is the score itself: s = F(c_in x̃, c_noise(t)).
Tweedie's formula gives the score ∇_x log p_t(x) = a_t (D - x̃) / σ_t² = (a_t / σ_t²)((c_skip - 1) x̃ + c_out F),
with c_skip - 1 in closed form (-σ̃² / (σ̃² + σ_d²), 0, -1), so nothing cancels at small σ̃.

The noise conditioning c_noise is EDM's log-noise level ¼ ln σ̃ up to an affine map: the mean over
components of ln σ̃_t, mapped linearly so that t_lo = t0 + T_MIN goes to t0 and t1 to t1,
    c_noise(t) = t0 + (t1 - t0) (ln σ̃_t - ln σ̃_lo) / (ln σ̃_hi - ln σ̃_lo),
so the nets' time features (built for t in [t0, t1]) see their own range; for the VE SDE, whose
ln σ_t is affine in t, c_noise(t) = t up to the σ_min offset.

The loss weighting that follows ("preconditioned") makes the loss F's own squared error: per
component, |F - F_target|² = |D - x_0|² / c_out² = w · (σ_t s + ε)² with w = σ̃² / c_out²
(the DSM "sigma2" residual times w):  v: (σ̃² + σ_d²) / σ_d²,  eps: 1,  x0: σ̃²,  score: 1 / σ_t².
"""
from __future__ import annotations

import math
from typing import Tuple

from .defaults import T_MIN
from .losses import kernel_wide

PARAMETRIZATIONS = ("v", "eps", "x0", "score")


def check_parametrization(parametrization: str) -> str:
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, got {parametrization!r}")
    return parametrization


def kernel_coefficients(kernel_module, x, t):
    """(a_t, b_t, σ_t), shaped like x, of the diagonal kernel x_t | x_0 ~ N(a_t x_0 + b_t, σ_t²), read off
    the module's generated kernel (in float64 where the backend allows it)."""
    ops = kernel_module.ops
    t = ops.full(x.shape[:1], t, like=x) if ops.is_scalar(t) else t
    mean_one, std = kernel_wide(kernel_module, ops.ones_like(x), t)
    mean_zero, _ = kernel_wide(kernel_module, ops.zeros_like(x), t)
    return mean_one - mean_zero, mean_zero, ops.cast(std, ops.dtype_of(x))


def noise_range(kernel_module, dim: int) -> Tuple[float, float]:
    """(ln σ̃ at t0 + T_MIN, ln σ̃ at t1), each the mean over the ``dim`` components, on the host."""
    import numpy as np

    ops = kernel_module.ops
    t0, t1 = float(kernel_module.t0), float(kernel_module.t1)
    x = ops.wide(np.zeros((2, dim)))
    a, _, std = kernel_coefficients(kernel_module, x, ops.wide(np.array([t0 + T_MIN, t1])))
    log_tilde = np.log(np.asarray(ops.to_numpy(std), np.float64)) - np.log(np.abs(np.asarray(ops.to_numpy(a), np.float64)))
    low, high = (float(v) for v in log_tilde.mean(axis=-1))
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"preconditioning needs a noise level σ_t / a_t that grows over [t0 + {T_MIN}, t1]; "
                         f"got ln(σ/a) = {low:.4g} at t0 + {T_MIN} and {high:.4g} at t1")
    return low, high


def skip_out_in(parametrization: str, sigma_tilde, data_std):
    """(c_skip - 1, c_out, c_in) of the module docstring (c_skip - 1 and c_out unused for "score")."""
    total = sigma_tilde ** 2 + data_std ** 2
    c_in = total ** -0.5
    if parametrization == "v":
        return -sigma_tilde ** 2 / total, sigma_tilde * data_std * c_in, c_in
    if parametrization == "eps":
        return 0.0 * sigma_tilde, -sigma_tilde, c_in
    return -1.0 + 0.0 * sigma_tilde, 1.0 + 0.0 * sigma_tilde, c_in


def noise_conditioning(ops, log_sigma_tilde, t0: float, t1: float, low: float, high: float):
    """c_noise(t) of the module docstring from ln σ̃_t (shape (N, n)): shape (N,)."""
    mean = ops.sum(log_sigma_tilde, axis=-1) / int(log_sigma_tilde.shape[-1])
    return t0 + (t1 - t0) * (mean - low) / (high - low)


def preconditioned_score(net, kernel_module, data_std, parametrization, log_range, x, t, labels=None):
    """s(x, t) = (a_t / σ_t²)((c_skip - 1) x̃ + c_out F(c_in x̃, c_noise(t))), or F itself for "score"
    (module docstring); σ_d is not trained (``stop_gradient``). ``labels`` go to a class-conditional net."""
    ops = kernel_module.ops
    a, b, std = kernel_coefficients(kernel_module, x, t)
    sigma_tilde = std / a
    x_tilde = (x - b) / a
    sd = ops.cast(ops.stop_gradient(data_std), ops.dtype_of(x))
    c_noise = noise_conditioning(ops, ops.log(sigma_tilde), float(kernel_module.t0), float(kernel_module.t1),
                                 *log_range)
    skip_minus_one, c_out, c_in = skip_out_in(parametrization, sigma_tilde, sd)
    out = net(c_in * x_tilde, c_noise) if labels is None else net(c_in * x_tilde, c_noise, labels)
    if parametrization == "score":
        return out
    return (a / std ** 2) * (skip_minus_one * x_tilde + c_out * out)


def preconditioned_loss_weight(kernel_module, data_std, parametrization, x, t):
    """w = σ̃² / c_out² per component (1 / σ_t² for "score"): w · (σ_t s + ε)² = |F - F_target|²."""
    ops = kernel_module.ops
    a, _, std = kernel_coefficients(kernel_module, x, t)
    sigma_tilde = std / a
    sd = ops.cast(ops.stop_gradient(data_std), ops.dtype_of(x))
    if parametrization == "score":
        return std ** -2
    _, c_out, _ = skip_out_in(parametrization, sigma_tilde, sd)
    return (sigma_tilde / c_out) ** 2
