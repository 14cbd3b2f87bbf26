"""Polynomial interpolation for the multistep samplers: the Lagrange basis through past nodes and
its exact integrals against e^{τ-h}."""
from __future__ import annotations

import numpy as np


def lagrange_basis(points: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """ℓ_j(τ) = Π_{m≠j} (τ - p_m)/(p_j - p_m) for points (N, k) at τ (N, G): shape (N, k, G)."""
    k = points.shape[1]
    out = np.ones((points.shape[0], k, tau.shape[1]))
    for j in range(k):
        for m in range(k):
            if m != j:
                out[:, j] *= (tau - points[:, m:m + 1]) / (points[:, j:j + 1] - points[:, m:m + 1])
    return out


def exponential_integrals(h: np.ndarray, k: int) -> list:
    """I_p = ∫_0^h e^{τ-h} τ^p dτ for p < k: I_0 = 1 - e^{-h}, I_p = h^p - p I_{p-1}."""
    out = [-np.expm1(-h)]
    for p in range(1, k):
        out.append(h ** p - p * out[-1])
    return out


def interpolation_weights(points: np.ndarray, integrals: list) -> np.ndarray:
    """w_j = ∫ e^{τ-h} ℓ_j(τ) dτ for the Lagrange basis ℓ_j through ``points`` (..., k), given the
    moments ``integrals`` I_p (each (...)): ℓ_j(τ) = Σ_p c_jp τ^p with (c_jp) = V⁻ᵀ, V_jp = p_j^p."""
    k = points.shape[-1]
    V = points[..., :, None] ** np.arange(k)                  # (..., k points, k powers)
    moments = np.stack(integrals, axis=-1)[..., None]          # (..., k, 1)
    return np.linalg.solve(np.swapaxes(V, -1, -2), moments)[..., 0]
