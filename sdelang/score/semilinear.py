"""Exponential integrators in the data prediction for coupled kernels (CLD): the stiff linear part
of the score is solved exactly too.

With x̂_0 Tweedie's denoiser, ∇log p_t(x) = Σ⁻¹(Φ x̂_0 - y) (y = x - m), and the probability flow
is semi-linear in y:

    dy/dt = B(t) y + G(t) x̂_0,      B = A + ½ D Σ⁻¹,   G = -½ D Σ⁻¹ Φ.

Explicit extrapolation of the score (:func:`~sdelang.score.exponential.deis`) leaves B's
½DΣ⁻¹ term to the extrapolation; for CLD it is a rotation of rate ~16 that a 10-step solver
cannot follow. Here it is exact: y^T Σ⁻¹ y is conserved by dy/dt = B y (Σ' = AΣ + ΣAᵀ + D makes
Σ⁻¹B + BᵀΣ⁻¹ - Σ⁻¹Σ'Σ⁻¹ = 0), so its transition is

    Ψ(t, s) = L_t R(t, s) L_s⁻¹,    dR/dt = Ω R,   Ω = L⁻¹(B L - L') antisymmetric,

with Σ = L Lᵀ and L' = L low(L⁻¹ Σ' L⁻ᵀ) (low: the strict lower triangle plus half the diagonal).
τ Ω stays bounded as τ → t0 (CLD: 0.9 at t = 1e-3, where Σ_xx ~ t³ and B ~ t⁻²), so R is
integrated by RK4 in u = log(τ - t0) on a fine grid in each step, and

    y_t = Ψ(t, s) y_s + Σ_j C_j x̂_0(τ_j),   C_j = ∫_s^t Ψ(t, τ) G(τ) ℓ_j(τ) dτ

by Simpson's rule on the same grid, ℓ_j the Lagrange basis in the reference log-SNR λ
(:func:`~sdelang.score.affine_schedule.reference_log_snr`) through the last k grid times.
For a constant x̂_0 this is exact: Σ_j C_j = Φ_t - Ψ(t, s) Φ_s (a test checks the quadrature
against it). This is DPM-Solver++ (multistep, orders 1-3) and DDIM for any affine kernel, and
Heun as the exponential trapezoid (x̂_0 linear between s and t).
"""
from __future__ import annotations

import numpy as np

from .affine_schedule import reference_log_snr
from .interpolation import lagrange_basis
from .predictions import data_prediction
from .tableau import Tableau, keys, step_orders

CELLS = 64                 # RK4 steps per solver step (Simpson on their ends); even


def _low(M: np.ndarray) -> np.ndarray:
    return np.tril(M, -1) + 0.5 * np.einsum("...ii->...i", M)[..., None] * np.eye(M.shape[-1])


class SemilinearSteps:
    """Ψ(t, s) and the quadrature of Ψ(t, τ) G(τ) on each step s = t_i → t = t_{i+1} of a grid."""

    def __init__(self, schedule, ts):
        self.schedule = schedule
        s, t = ts[:-1], ts[1:]
        t0, n = schedule.t0, schedule.n
        steps = len(s)
        self.u_s, self.u_t = np.log(s - t0), np.log(t - t0)
        r = np.arange(2 * CELLS + 1) / (2 * CELLS)
        u = self.u_s[:, None] + r * (self.u_t - self.u_s)[:, None]                 # (N, 2J + 1)
        tau = (t0 + np.exp(u)).ravel()
        m = schedule.moments(tau)
        A, D = schedule.drift_matrix(tau), schedule.diffusion(tau)
        L = np.linalg.cholesky(m.cov)
        L_inv = np.linalg.inv(L)
        cov_inv = np.linalg.inv(m.cov)
        cov_dot = A @ m.cov + m.cov @ np.swapaxes(A, 1, 2) + D
        L_dot = L @ _low(L_inv @ cov_dot @ np.swapaxes(L_inv, 1, 2))
        omega = L_inv @ ((A + 0.5 * D @ cov_inv) @ L - L_dot)
        shape = (steps, 2 * CELLS + 1, n, n)
        rate = ((tau - t0)[:, None, None] * omega).reshape(shape)                   # dR/du = (τ - t0) Ω R
        du = 2 * (self.u_t - self.u_s) / (2 * CELLS)                                 # one RK4 step, (N,)
        R = np.broadcast_to(np.eye(n), (steps, n, n)).copy()
        rotations = [R]
        for j in range(CELLS):
            a, b, c = rate[:, 2 * j], rate[:, 2 * j + 1], rate[:, 2 * j + 2]
            h = du[:, None, None]
            k1 = a @ R
            k2 = b @ (R + 0.5 * h * k1)
            k3 = b @ (R + 0.5 * h * k2)
            k4 = c @ (R + h * k3)
            R = R + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            rotations.append(R)
        rotations = np.stack(rotations, axis=1)                                     # R(τ_j, s), (N, J + 1, n, n)
        even = slice(None, None, 2)
        L_all, L_inv_all = L.reshape(shape)[:, even], L_inv.reshape(shape)[:, even]
        G = (-0.5 * D @ cov_inv @ m.phi).reshape(shape)[:, even]
        R_ts = rotations[:, -1]
        self.transition = L_all[:, -1] @ R_ts @ L_inv_all[:, 0]                     # Ψ(t, s)
        #: Ψ(t, τ_j) G(τ_j) dτ/du at the Simpson points, (N, J + 1, n, n)
        self.integrand = (L_all[:, -1][:, None] @ R_ts[:, None] @ np.swapaxes(rotations, 2, 3) @ L_inv_all @ G
                          * (tau - t0).reshape(steps, -1)[:, even, None, None])
        self.lam_points = reference_log_snr(m).reshape(steps, -1)[:, even]          # λ at the Simpson points
        self.lam_s, self.lam_t = self.lam_points[:, 0], self.lam_points[:, -1]
        weights = np.ones(CELLS + 1)
        weights[1:-1:2], weights[2:-1:2] = 4, 2
        self.simpson = weights * (self.u_t - self.u_s)[:, None] / (3 * CELLS)        # (N, J + 1)

    def coefficients(self, points: np.ndarray, rows=None) -> np.ndarray:
        """C_j = ∫_s^t Ψ(t, τ) G(τ) ℓ_j(τ) dτ for the Lagrange basis in λ through ``points`` (N_rows, k)."""
        rows = slice(None) if rows is None else rows
        basis = lagrange_basis(points, self.lam_points[rows])                        # (N_rows, k, J + 1)
        return np.einsum("tg,tkg,tgij->tkij", self.simpson[rows], basis, self.integrand[rows])


def semilinear_multistep(schedule, ts, order: int, method: str) -> Tableau:
    """DPM-Solver++ of ``order`` 1-3 (1: DDIM) for a coupled kernel (module docstring)."""
    s, t, ms, mt = schedule.step_moments(ts)
    steps = len(s)
    key = keys(schedule, steps)
    parts = SemilinearSteps(schedule, ts)
    final = mt.offset + parts.transition * (key("x") - ms.offset)
    orders = step_orders(steps, order, lower_order_final=False)
    past = np.stack([parts.lam_s[np.maximum(np.arange(steps) - j, 0)] for j in range(order)], axis=1)
    n = schedule.n
    for k in range(1, order + 1):
        rows = orders == k
        if not rows.any():
            continue
        C = parts.coefficients(past[rows, :k], rows)
        for j in range(k):
            full = np.zeros((steps, n, n))
            full[rows] = C[:, j]
            final = final + full * key("o0" if j == 0 else f"h{j - 1}")
    tableau = Tableau(method, s[:, None], [key("x"), final], [data_prediction(ms)], history=max(order - 1, 0))
    if order == 3 and steps > 1:
        return tableau.after_start(semilinear_trapezoid(schedule, ts[:2], method))
    return tableau


def semilinear_trapezoid(schedule, ts, method: str = "heun") -> Tableau:
    """Heun as the exponential trapezoid: x' = the DDIM step to t, then x̂_0 linear between
    x̂_0(x_s, s) and x̂_0(x', t) integrated exactly (NFE 2 per step)."""
    s, t, ms, mt = schedule.step_moments(ts)
    key = keys(schedule, len(s))
    parts = SemilinearSteps(schedule, ts)
    carried = mt.offset + parts.transition * (key("x") - ms.offset)
    first = parts.coefficients(parts.lam_s[:, None])[:, 0]
    both = parts.coefficients(np.stack([parts.lam_s, parts.lam_t], axis=1))
    euler = carried + first * key("o0")
    final = carried + both[:, 0] * key("o0") + both[:, 1] * key("o1")
    return Tableau(method, np.stack([s, t], axis=1), [key("x"), euler, final],
                   [data_prediction(ms), data_prediction(mt)])
