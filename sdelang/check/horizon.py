"""How long to simulate: a few relaxation times τ = 1/|λ₁| of the model under test.

- Coordinates that move on their own (``Dynamics.decoupled``): λ₁ is the spectral gap of each
  1-D generator L φ = f φ' + ½ D φ'' on the density's support, discretised as a birth–death chain
  on K cells (rates D/(2Δ²) + max(±f, 0)/Δ to the right/left, an upwind scheme whose generator has
  real non-positive spectrum up to O(Δ)); dense eigenvalues (VERIFICATION.md: ARPACK is unreliable
  here). This sees barrier crossings: the double well's slow inter-well rate, not only the wells.
- Otherwise (or when a coordinate's own stationary law is not confined to p's support, e.g. a
  flipped drift) the linearisation: λ's are the eigenvalues of E_p[∂f/∂x] over draws from p, and
  τ = 1/min |Re λ|. Blind to metastability (say so: ``method``).

Horizon T = max(n_relax, log(1/tolerance)) · τ: long enough for an initial discrepancy of size 1
to decay below ``tolerance`` (a fraction of the tests' resolution) — a start from p then shows any
bug of the dynamics in full, a wrong start has relaxed. A user ``time=`` overrides it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import scipy.linalg

from .dynamics import Dynamics, confined_1d


@dataclass(frozen=True)
class Horizon:
    time: float  # T
    relaxation_time: float  # τ = 1/|λ₁|
    method: str


def generator_gap_1d(drift: Callable, diffusion: Callable, lo: float, hi: float, cells: int = 400) -> float:
    """|λ₁| of L φ = f φ' + ½ D φ'' on [lo, hi] (reflecting ends): the second-smallest |eigenvalue|
    of the upwind birth–death generator on ``cells`` cells.

    A birth–death generator (rates r_i to the right, l_i to the left) is similar to the symmetric
    tridiagonal matrix with diagonal -(r_i + l_i) and off-diagonal √(r_i l_{i+1}), so its spectrum
    is real and comes from ``eigvalsh_tridiagonal``."""
    x = np.linspace(lo, hi, cells)
    dx = x[1] - x[0]
    f, D = drift(x), np.maximum(diffusion(x), 0.0)
    right = D / (2 * dx**2) + np.maximum(f, 0) / dx
    left = D / (2 * dx**2) + np.maximum(-f, 0) / dx
    right[-1] = 0.0
    left[0] = 0.0
    off = np.sqrt(right[:-1] * left[1:])
    if not (np.all(np.isfinite(off)) and np.all(np.isfinite(right + left)) and np.all(off > 0)):
        return float("nan")
    lam = scipy.linalg.eigvalsh_tridiagonal(-(right + left), off, select="i", select_range=(cells - 2, cells - 1))
    return float(abs(lam[0]))


def linear_rate(dynamics: Dynamics, samples: np.ndarray) -> float:
    """min |Re λ| over the eigenvalues λ of the mean Jacobian E_p[∂f/∂x] at draws from p."""
    J = dynamics.jacobian(samples)
    J = J[np.all(np.isfinite(J), axis=(1, 2))].mean(axis=0)
    rates = np.abs(np.linalg.eigvals(J).real)
    rates = rates[rates > 1e-12]
    return float(rates.min()) if len(rates) else float("nan")


def relaxation_horizon(
    dynamics: Dynamics,
    samples: np.ndarray,
    supports: Optional[Sequence[Tuple[float, float]]] = None,
    tolerance: float = 1e-2,
    n_relax: float = 5.0,
    time: Optional[float] = None,
) -> Horizon:
    """T (and τ) for the model; ``supports[i]`` is coordinate i's (lo, hi) where p lives."""
    method = ""
    rate = float("nan")
    if dynamics.decoupled and supports is not None:
        gaps = {}
        for i, (lo, hi) in enumerate(supports):
            key = (lo, hi) if dynamics.elementwise else i
            if key not in gaps:
                f, D = dynamics.coordinate(i)
                pad = 0.05 * (hi - lo)
                confined = confined_1d(f, D, lo, hi)
                gaps[key] = generator_gap_1d(f, D, lo - pad, hi + pad) if confined else float("nan")
        finite = [g for g in gaps.values() if np.isfinite(g) and g > 0]
        if finite and len(finite) == len(gaps):
            rate = min(finite)
            method = "spectral gap of the 1-D generators (grid)"
    if not np.isfinite(rate):
        rate = linear_rate(dynamics, samples)
        method = "linearisation: mean Jacobian at draws from p"
    if not np.isfinite(rate) or rate <= 0:
        rate, method = 1.0, "no relaxation rate found; assumed τ = 1"
    tau = 1.0 / rate
    if time is not None:
        return Horizon(float(time), tau, "given (time=)")
    return Horizon(max(n_relax, float(np.log(1.0 / tolerance))) * tau, tau, method)
