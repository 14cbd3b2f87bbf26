"""The schedule of an affine SDE read on the host in float64, for the exponential-integrator samplers.

For dx = (A(t) x + b(t)) dt + G(t) dW the perturbation kernel that sdelang derives symbolically
(``Model.marginal()``) and emits as ``perturbation_kernel(x0, t)`` is

    x_t | x_0 ~ N(Φ(t) x_0 + m(t), Σ(t)),       Φ(t) = Φ(t, t0), m(t) the mean from x_0 = 0,

and Φ(t, s) = Φ(t) Φ(s)⁻¹. Evaluating the generated kernel at x_0 = 0 and at unit vectors gives
m(t), the columns of Φ(t) and Σ(t) at a whole grid of times in one call; D(t) = G Gᵀ comes from
the generated diffusion. A diagonal kernel (VP, VE, sub-VP, any elementwise affine SDE) is read
per component: α(t) = Φ_ii(t), σ(t) = √Σ_ii(t), the log signal-to-noise ratio
λ(t) = log(α/σ). The *reference* λ(t) = (1/n)(log |det Φ| - ½ log det Σ) (the mean of the
components' λ for a diagonal kernel, the same for an elementwise model; defined for coupled kernels
too) is what the log-SNR and EDM time grids are uniform in. Its inverse t(λ) is read from a table and
refined by Newton steps: λ decreases strictly on (t0, t1] for every diffusion that forgets its start.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

TABLE_POINTS = 4097
NEWTON_STEPS = 3


@dataclass(frozen=True)
class Moments:
    """Φ(t), m(t), Σ(t) at times ts (T,): diagonal kernels ``phi`` (T, n), ``cov`` (T, n) the
    variances; full kernels ``phi`` (T, n, n), ``cov`` (T, n, n); ``offset`` (T, n)."""

    phi: np.ndarray
    offset: np.ndarray
    cov: np.ndarray
    diagonal: bool

    @property
    def alpha(self) -> np.ndarray:
        return self.phi

    @property
    def sigma(self) -> np.ndarray:
        return np.sqrt(self.cov)

    @property
    def log_snr(self) -> np.ndarray:
        """λ = log α - log σ per component (diagonal kernels)."""
        return np.log(np.abs(self.phi)) - 0.5 * np.log(self.cov)


def reference_log_snr(moments: Moments) -> np.ndarray:
    """(1/n)(log |det Φ| - ½ log det Σ) at each time of ``moments``."""
    if moments.diagonal:
        return moments.log_snr.mean(axis=1)
    n = moments.offset.shape[1]
    return (np.linalg.slogdet(moments.phi)[1] - 0.5 * np.linalg.slogdet(moments.cov)[1]) / n


class AffineSchedule:
    """Host-side float64 Φ, m, Σ, D and λ of ``module``'s affine SDE (module docstring)."""

    def __init__(self, module):
        kind = getattr(module, "kernel_kind", None)
        if kind not in ("diagonal", "full"):
            raise ValueError("the exponential-integrator samplers need an affine SDE with a Gaussian "
                             "perturbation kernel (model.marginal()); this model has none: use em, pc or ode")
        if module.dimension is None:
            raise ValueError("the state dimension is unknown: compile with d=...")
        self.module = module
        self.ops = module.ops
        self.n = int(module.dimension)
        self.diagonal = kind == "diagonal"
        self.t0, self.t1 = float(module.t0), float(module.t1)

    def _host(self, x):
        return np.asarray(self.ops.to_numpy(x), dtype=np.float64)

    @staticmethod
    def _padded(ts):
        """(ts padded with its last time to a power of two ≥ 64, T): calls of the generated kernel
        with few distinct shapes (JAX compiles each eager operation once per shape)."""
        ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
        size = max(64, 1 << int(np.ceil(np.log2(len(ts)))))
        return np.concatenate([ts, np.full(size - len(ts), ts[-1])]), len(ts)

    def _wide(self, x: np.ndarray):
        return self.ops.wide(self.ops.asarray(np.asarray(x, dtype=np.float64)))

    def moments(self, ts) -> Moments:
        """Φ(t), m(t), Σ(t) at the times ``ts`` (one kernel call for all of them)."""
        ts, count = self._padded(ts)
        n, T = self.n, len(ts)
        basis = np.concatenate([np.zeros((1, n)), np.ones((1, n)) if self.diagonal else np.eye(n)])
        k = len(basis)
        x0 = np.tile(basis, (T, 1))
        mean, spread = self.module.perturbation_kernel(self._wide(x0), self._wide(np.repeat(ts, k)))
        mean = self._host(mean).reshape(T, k, n)[:count]
        offset = mean[:, 0]
        if self.diagonal:
            phi = mean[:, 1] - offset
            cov = self._host(spread).reshape(T, k, n)[:count, 0] ** 2
        else:
            phi = np.swapaxes(mean[:, 1:] - offset[:, None], 1, 2)   # column j = Φ e_j
            cov = self._host(spread).reshape(T, k, n, n)[:count, 0]
        return Moments(phi, offset, cov, self.diagonal)

    def step_moments(self, ts):
        """(s, t, moments at s, moments at t) for the steps s = t_i → t = t_{i+1} of a grid ts."""
        s, t = ts[:-1], ts[1:]
        return s, t, self.moments(s), self.moments(t)

    def drift_matrix(self, ts) -> np.ndarray:
        """A(t) (T, n, n) of the drift f = A(t) x + b(t), from the generated drift at 0 and at unit
        vectors."""
        ts, count = self._padded(ts)
        n, T = self.n, len(ts)
        basis = np.concatenate([np.zeros((1, n)), np.eye(n)])
        f = self._host(self.module.drift_fn(self._wide(np.repeat(ts, n + 1)), self._wide(np.tile(basis, (T, 1)))))
        f = f.reshape(T, n + 1, n)[:count]
        return np.swapaxes(f[:, 1:] - f[:, :1], 1, 2)

    def diffusion(self, ts) -> np.ndarray:
        """D(t) = G(t) G(t)ᵀ: (T, n) diagonal entries for a diagonal kernel, else (T, n, n)."""
        ts, count = self._padded(ts)
        y = self._wide(np.zeros((len(ts), self.n)))
        G = self._host(self.module.diffusion_matrix(self._wide(ts), y))[:count]
        if G.ndim == 2:                               # elementwise: the entries of a diagonal G
            D = G ** 2
            return D if self.diagonal else np.einsum("ti,ij->tij", D, np.eye(self.n))
        D = np.einsum("tik,tjk->tij", G, G)
        return np.einsum("tii->ti", D) if self.diagonal else D

    # ------------------------------------------------------------------ log-SNR (diagonal kernels)
    def reference_log_snr(self, ts) -> np.ndarray:
        """λ(t) = (1/n)(log |det Φ(t)| - ½ log det Σ(t)), shape (T,): the mean of log α_i - log σ_i
        for a diagonal kernel; for a coupled one (CLD) the same per-dimension signal-to-noise ratio
        of the kernel's volume."""
        return reference_log_snr(self.moments(ts))

    def time_of_log_snr(self, lams) -> np.ndarray:
        """t in (t0, t1] with reference λ(t) = λ: λ tabulated at TABLE_POINTS times uniform in
        log(t - t0) (one kernel call), inverted by interpolation in that table, then refined by
        NEWTON_STEPS secant-Newton steps in u = log(t - t0) (λ is smooth and monotone in u)."""
        lams = np.asarray(lams, dtype=np.float64)
        u_table, lam_table = self._log_snr_table
        flat = lams.ravel()
        u = np.interp(-flat, -lam_table, u_table)
        slope = np.interp(u, u_table[1:-1], np.gradient(lam_table, u_table)[1:-1])
        for _ in range(NEWTON_STEPS):
            u = np.clip(u - (self.reference_log_snr(self.t0 + np.exp(u)) - flat) / slope, u_table[0], u_table[-1])
        return np.minimum(self.t0 + np.exp(u), self.t1).reshape(lams.shape)

    @functools.cached_property
    def _log_snr_table(self):
        """(u, λ) at TABLE_POINTS times uniform in u = log(t - t0), computed once per schedule."""
        span = self.t1 - self.t0
        u_table = np.linspace(np.log(1e-10 * span), np.log(span), TABLE_POINTS)
        with np.errstate(all="ignore"):
            lam_table = self.reference_log_snr(self.t0 + np.exp(u_table))
        # float64 loses Σ near t0 first (CLD: Σ_xx ~ t³): keep the decreasing part up to t1
        bad = np.flatnonzero(~(np.diff(lam_table) < 0) | ~np.isfinite(lam_table[1:]))
        if len(bad) and bad[-1] >= TABLE_POINTS // 2:
            raise ValueError("the log-SNR λ(t) of this model is not decreasing in t: no log-SNR time grid")
        if len(bad):
            u_table, lam_table = u_table[bad[-1] + 1:], lam_table[bad[-1] + 1:]
        return u_table, lam_table

    def require_diagonal(self, what: str) -> None:
        if not self.diagonal:
            raise ValueError(f"{what} needs a diagonal perturbation kernel (one log-SNR per component); "
                             "this model's kernel couples its states: use method='ddim', 'dpm-solver++', 'deis', "
                             "'heun' (no churn) or 'ancestral' (order 1)")
