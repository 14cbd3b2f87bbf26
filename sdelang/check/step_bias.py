"""The Euler–Maruyama step-size bias: how far the discretised chain's stationary law is from p.

EM with step h keeps p_h = p + O(h) stationary, not p (ULA's bias). The check must choose h so
that this bias stays well below what the two-sample tests can resolve at N particles, and report it.

- Decoupled coordinates (each a 1-D diffusion): the EXACT stationary law of the EM chain
  x' = x + f(x) h + √(D(x) h) ξ on a fine grid (spacing ≤ half the kernel width, Gaussian kernel
  sums are then accurate to far below any test's resolution), from the sparse linear system
  π P = π, Σ π = 1. Compared on the same grid with the model's OWN continuous-time stationary law
  p_∞ ∝ exp(∫ 2f/D)/D (which is p when the model is right; for a buggy model the bug is not a
  step-size bias): the largest CDF gap sup|F_h - F|, the shift of the mean and of the second moment.
- Otherwise the linearisation at p: B = E_p[∂f/∂x], D̄ = E_p[G Gᵀ]; Σ₀ solves B Σ + Σ Bᵀ + D̄ = 0,
  Σ_h solves Σ = (I + hB) Σ (I + hB)ᵀ + h D̄ (the EM chain of the linear SDE). The relative variance
  error δ gives a CDF gap ≈ 0.242·|√(1+δ) - 1| (sup_x x φ(x) = 0.242) and a second-moment shift of
  δ·Σ₀. Nonlinear terms can change the sign and size of the bias (the double well U = 2(x²-1)²:
  E[x²] bias ≈ -1.3h where the linearisation says +0.5h), so this estimate is multiplied by
  ``LINEAR_SAFETY`` = 3.

Shifts are expressed in standard errors of the two-sample z-tests: shift / √(Var_p/N + Var_p/M).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from .dynamics import Dynamics, stationary_density_1d

LINEAR_SAFETY = 3.0


@dataclass(frozen=True)
class StepBias:
    """Expected bias of EM's stationary law at step h, per the worst coordinate."""

    step: float
    method: str
    ks_gap: float  # sup |F_h - F| over coordinates
    mean_z: float  # mean shift in standard errors of the two-sample z-test
    moment_z: float  # second-moment shift in standard errors
    second_moment_shift: float  # the shift itself (worst coordinate, absolute)

    def __str__(self) -> str:
        return (f"{self.method}: CDF gap {self.ks_gap:.2g}, mean {self.mean_z:.2g} SE, "
                f"2nd moment {self.second_moment_shift:+.2g} ({self.moment_z:.2g} SE)")


def em_stationary_1d(drift: Callable, diffusion: Callable, lo: float, hi: float, h: float,
                     max_cells: int = 8000) -> Tuple[np.ndarray, np.ndarray]:
    """(grid, π_h): the stationary law of x' = x + f h + √(D h) ξ on a grid over [lo, hi]."""
    probe = np.linspace(lo, hi, 2001)
    s = np.sqrt(np.maximum(diffusion(probe), 0.0) * h)
    s_min = float(np.min(s[s > 0])) if np.any(s > 0) else 0.0
    if s_min == 0.0:
        raise ValueError("no noise: the EM chain has no stationary density")
    cells = int(min(max_cells, max(400, np.ceil(2.0 * (hi - lo) / s_min))))
    x = np.linspace(lo, hi, cells)
    dx = x[1] - x[0]
    mu = np.clip(x + drift(x) * h, lo, hi)
    sd = np.maximum(np.sqrt(np.maximum(diffusion(x), 0.0) * h), dx / 4)
    half = int(np.ceil(8 * sd.max() / dx)) + 1
    rows, cols, vals = [], [], []
    centre = np.rint((mu - lo) / dx).astype(int)
    for k in range(-half, half + 1):
        j = centre + k
        ok = (j >= 0) & (j < cells)
        w = np.exp(-0.5 * ((x[np.clip(j, 0, cells - 1)] - mu) / sd) ** 2)
        rows.append(np.nonzero(ok)[0])
        cols.append(j[ok])
        vals.append(w[ok])
    P = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(cells, cells))
    P = scipy.sparse.diags(1.0 / np.asarray(P.sum(axis=1)).ravel()) @ P
    A = (P.T - scipy.sparse.identity(cells)).tolil()
    A[-1, :] = np.ones(cells)
    b = np.zeros(cells)
    b[-1] = 1.0
    pi = scipy.sparse.linalg.spsolve(A.tocsc(), b)
    return x, np.maximum(pi, 0.0) / np.maximum(pi, 0.0).sum()


def _z(shift: float, var: float, n: int, m: int) -> float:
    return float(abs(shift) / np.sqrt(var * (1.0 / n + 1.0 / m))) if var > 0 else 0.0


def step_bias(
    dynamics: Dynamics,
    h: float,
    n: int,
    m: int,
    samples: np.ndarray,
    supports: Optional[Sequence[Tuple[float, float]]] = None,
) -> StepBias:
    """The bias at step h for N = ``n`` simulated and M = ``m`` reference particles.

    ``supports[i]``: where coordinate i of p lives (decoupled case, else the linearisation)."""
    if dynamics.decoupled and supports is not None:
        try:
            return _exact_1d(dynamics, h, n, m, supports)
        except (ValueError, FloatingPointError, RuntimeError):
            pass
    return _linearised(dynamics, h, n, m, samples)


def _exact_1d(dynamics, h, n, m, supports) -> StepBias:
    """π_h (the EM chain) against p_∞ (the model's own continuous-time stationary law) — the
    discretisation error of the model under test, whether or not p_∞ is the target p."""
    gap = mean_z = moment_z = shift2 = 0.0
    seen = {}
    for i, (lo, hi) in enumerate(supports):
        key = (lo, hi) if dynamics.elementwise else i
        if key in seen:
            continue
        f, D = dynamics.coordinate(i)
        pad = 0.1 * (hi - lo)
        x, pi_h = em_stationary_1d(f, D, lo - pad, hi + pad, h)
        p = stationary_density_1d(f, D, x)
        edge = (x < lo) | (x > hi)
        if not np.all(np.isfinite(pi_h)) or p[edge].sum() > 1e-3:
            raise ValueError("the model's stationary law is not confined to the target's support")
        g = float(np.max(np.abs(np.cumsum(pi_h) - np.cumsum(p))))
        mean = float(p @ x)
        var = float(p @ (x - mean) ** 2)
        m2 = (x - mean) ** 2
        var2 = float(p @ (m2 - p @ m2) ** 2)
        dmean = float(pi_h @ x) - mean
        d2 = float(pi_h @ m2 - p @ m2)
        seen[key] = (g, _z(dmean, var, n, m), _z(d2, var2, n, m), d2)
    for g, mz, sz, d2 in seen.values():
        gap, mean_z = max(gap, g), max(mean_z, mz)
        if sz >= moment_z:
            moment_z, shift2 = sz, d2
    return StepBias(h, "exact EM-chain stationary law per coordinate (grid)", gap, mean_z, moment_z, shift2)


def _linearised(dynamics, h, n, m, samples) -> StepBias:
    J = dynamics.jacobian(samples)
    C = dynamics.covariance(samples)
    ok = np.all(np.isfinite(J), axis=(1, 2)) & np.all(np.isfinite(C), axis=(1, 2))
    B, Dbar = J[ok].mean(axis=0), C[ok].mean(axis=0)
    method = f"linearisation at p (×{LINEAR_SAFETY:g} safety)"
    if not ok.any() or np.max(np.linalg.eigvals(B).real) >= 0:
        nan = float("nan")
        return StepBias(h, "unknown (the linearised drift is not stable)", nan, nan, nan, nan)
    sigma0 = scipy.linalg.solve_continuous_lyapunov(B, -Dbar)
    A = np.eye(len(B)) + h * B
    sigma_h = scipy.linalg.solve_discrete_lyapunov(A, h * Dbar)
    v0 = np.diag(sigma0)
    delta = LINEAR_SAFETY * (np.diag(sigma_h) / v0 - 1.0)
    gap = float(np.max(0.242 * np.abs(np.sqrt(np.maximum(1.0 + delta, 0.0)) - 1.0)))
    worst = int(np.argmax(np.abs(delta)))
    # Gaussian: Var((x-μ)²) = 2 v², so the z of a shift δ·v is δ / √(2 (1/N + 1/M)).
    moment_z = float(abs(delta[worst]) / np.sqrt(2 * (1.0 / n + 1.0 / m)))
    return StepBias(h, method, gap, 0.0, moment_z, float(delta[worst] * v0[worst]))
