"""Kernel preconditioning of a score network, for any affine spec with a diagonal kernel."""
from __future__ import annotations

from .losses import kernel_wide


def kernel_coefficients(kernel_module, x, t):
    """(a_t, σ_t), shaped like x, of the diagonal kernel x_t | x_0 ~ N(a_t x_0 + b_t, σ_t²), read off
    the module's generated kernel (in float64 where the backend allows it)."""
    ops = kernel_module.ops
    t = ops.full(x.shape[:1], t, like=x) if ops.is_scalar(t) else t
    mean_one, std = kernel_wide(kernel_module, ops.ones_like(x), t)
    mean_zero, _ = kernel_wide(kernel_module, ops.zeros_like(x), t)
    return mean_one - mean_zero, ops.cast(std, ops.dtype_of(x))


def preconditioned_score(net, kernel_module, data_std, x, t):
    """s(x, t) = net(c_in x, t) / σ_t with c_in = 1 / √(a_t² σ_data² + σ_t²): the network predicts -ε
    and sees inputs of unit scale at every t (NCSN/EDM preconditioning); σ_data is not trained."""
    ops = kernel_module.ops
    a, std = kernel_coefficients(kernel_module, x, t)
    sd = ops.cast(ops.stop_gradient(data_std), ops.dtype_of(x))
    c_in = ops.rsqrt(a ** 2 * sd ** 2 + std ** 2)
    return net(c_in * x, t) / std
