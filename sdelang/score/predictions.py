"""The network's score turned into the quantities the exponential integrators expand, from the
kernel x_t | x_0 ~ N(Φ x_0 + m, Σ) with Σ = L Lᵀ (:mod:`sdelang.score.affine_schedule`):

- noise prediction  ε̂ = -Lᵀ ∇log p_t(x)                      (ε in x_t = Φ x_0 + m + L ε);
- data prediction   x̂_0 = Φ⁻¹ (x - m + Σ ∇log p_t(x))         (Tweedie's formula).

Each is an affine map o = U x + u + V score, returned as the (U, u, V) coefficient arrays of
:mod:`sdelang.score.tableau`: per-component vectors for a diagonal kernel (L = σ, Φ = α), n × n
matrices for a coupled one.
"""
from __future__ import annotations

import numpy as np


def noise_prediction(moments):
    """(U, u, V) of ε̂ = -Lᵀ score: U = 0, u = 0, V = -Lᵀ (-σ per component)."""
    if moments.diagonal:
        V = -moments.sigma
    else:
        V = -np.swapaxes(np.linalg.cholesky(moments.cov), -1, -2)
    return np.zeros_like(V), np.zeros_like(moments.offset), V


def score_itself(moments):
    """(U, u, V) of the score as it is: U = 0, u = 0, V = I (coupled kernels: where Σ(t) → 0 as
    some power of t per direction, as CLD's Σ_xx ~ t³, L⁻ᵀ is ill-conditioned near t0, while the
    score of data with a density stays smooth)."""
    eye = np.broadcast_to(np.eye(moments.offset.shape[1]), moments.cov.shape).copy()
    return np.zeros_like(eye), np.zeros_like(moments.offset), eye


def data_prediction(moments):
    """(U, u, V) of x̂_0 = Φ⁻¹(x - m + Σ score)."""
    if moments.diagonal:
        U = 1.0 / moments.alpha
        return U, -U * moments.offset, U * moments.cov
    U = np.linalg.inv(moments.phi)
    return U, -np.einsum("tij,tj->ti", U, moments.offset), U @ moments.cov


def transition(moments_to, moments_from):
    """Φ(t, s) = Φ(t) Φ(s)⁻¹ (α_t/α_s per component for a diagonal kernel)."""
    if moments_to.diagonal:
        return moments_to.alpha / moments_from.alpha
    return moments_to.phi @ np.linalg.inv(moments_from.phi)
