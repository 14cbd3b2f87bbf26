"""Drawing particles from a target density p without using the dynamics under test.

Each independent block of log p (``TargetDensity.blocks``) gets the best sampler its form allows:

- EXACT Gaussian: log p_b quadratic in its states, log p_b = -½ (x-μ)ᵀ A (x-μ) + c, with the
  precision A = -∇² log p_b and the mean μ = A⁻¹ ∇ log p_b(0) read off symbolically;
  x = μ + L⁻ᵀ z with A = L Lᵀ, z ~ N(0, I).
- EXACT 1-D inverse CDF: scipy's ``NumericalInversePolynomial`` (PINV, u-resolution 1e-10) on the
  effective support {log p ≥ max log p - 45}; a fine-grid inverse CDF if PINV refuses.
- REFERENCE grid resampling in 2-D: cell probabilities ∝ p(cell centre) on a fine grid over the
  effective support, a uniform jitter inside the drawn cell (error O(cell width²) on moments).
- REFERENCE MALA (Roberts & Tweedie 1996) in 3 or more dimensions: many parallel chains,
  preconditioned by the inverse Hessian at the mode, step adapted to acceptance ≈ 0.574 during
  burn-in (then frozen), thinned. Exact in the limit, unlike the unadjusted Langevin algorithm.

``sampler_for(target)`` combines the blocks' samplers; ``describe()`` says which were used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np
import scipy.linalg
import scipy.optimize
import sympy

from ..errors import DerivationError
from .target import TargetBlock, TargetDensity

# Mass outside {log p >= max - SUPPORT_DROP} is below e^-45 relative density: invisible at any N.
SUPPORT_DROP = 45.0


class BlockSampler:
    """Draws one block's coordinates: ``sample(n, rng) -> (n, block size)``."""

    method: str = ""
    exact: bool = True

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


# --------------------------------------------------------------------------- exact Gaussian
@dataclass
class GaussianSampler(BlockSampler):
    """x = μ + L⁻ᵀ z, A = L Lᵀ the precision matrix, z ~ N(0, I): exact draws from N(μ, A⁻¹)."""

    mean: np.ndarray
    precision: np.ndarray
    method: str = "exact Gaussian"
    exact: bool = True

    def __post_init__(self):
        self._chol = np.linalg.cholesky(self.precision)

    @property
    def covariance(self) -> np.ndarray:
        return np.linalg.inv(self.precision)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((len(self.mean), n))
        return (self.mean[:, None] + scipy.linalg.solve_triangular(self._chol.T, z, lower=False)).T


def gaussian_form(block: TargetBlock) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(mean, precision) when log p_b is a quadratic polynomial with a positive-definite precision;
    None when it is not quadratic. A quadratic with an indefinite precision cannot be normalised."""
    expr, syms = block.log_expr, list(block.symbols)
    if not expr.is_polynomial(*syms):
        return None
    poly = sympy.Poly(expr, *syms)
    if poly.total_degree() > 2 or any(not sympy.sympify(c).is_number for c in poly.coeffs()):
        return None
    hess = sympy.hessian(expr, syms)
    precision = -np.array(hess.tolist(), dtype=float)
    grad0 = np.array([float(sympy.diff(expr, s).xreplace({v: 0 for v in syms})) for s in syms])
    try:
        np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        names = ", ".join(s.name for s in syms)
        raise DerivationError(f"the density is not normalisable in ({names}): its log is a quadratic that does not fall off") from None
    return np.linalg.solve(precision, grad0), precision


# --------------------------------------------------------------------------- effective support
def _symmetric_grid(center: float, scale: float = 1.0, half: int = 600) -> np.ndarray:
    """center ± scale·10^u for u in [-4, 4] (and the centre): fine near it, reaching ±1e4·scale."""
    r = scale * np.logspace(-4, 4, half)
    return np.concatenate([center - r[::-1], [center], center + r])


def support_1d(log_density: Callable[[np.ndarray], np.ndarray]) -> Tuple[float, float, float]:
    """(lo, hi, mode): an interval holding all but a e^-45-relative tail of p, and p's mode.

    Two passes of a symmetric log-spaced grid (around 0, then around the best point) find the mode
    to a few per cent of its distance and the extent of {log p >= max - 45}."""
    center = 0.0
    for _ in range(2):
        grid = _symmetric_grid(center)
        lp = log_density(grid[:, None])
        ok = np.isfinite(lp)
        if not ok.any():
            raise DerivationError("the density is zero or undefined everywhere on the real line")
        lp = np.where(ok, lp, -np.inf)
        center = float(grid[int(np.argmax(lp))])
    top = float(lp.max())
    keep = np.nonzero(lp >= top - SUPPORT_DROP)[0]
    if keep[0] == 0 or keep[-1] == len(grid) - 1:
        raise DerivationError("the density does not fall off within ±1e4 of its mode: not normalisable?")
    lo, hi = float(grid[keep[0] - 1]), float(grid[keep[-1] + 1])
    # refine on a linear grid: the log-spaced grid is coarse far from the centre
    fine = np.linspace(lo, hi, 20001)
    lpf = log_density(fine[:, None])
    lpf = np.where(np.isfinite(lpf), lpf, -np.inf)
    top = float(lpf.max())
    keep = np.nonzero(lpf >= top - SUPPORT_DROP)[0]
    lo = float(fine[max(keep[0] - 1, 0)])
    hi = float(fine[min(keep[-1] + 1, len(fine) - 1)])
    return lo, hi, float(fine[int(np.argmax(lpf))])


# --------------------------------------------------------------------------- exact 1-D
@dataclass
class InverseCdfSampler(BlockSampler):
    """Exact 1-D draws x = F⁻¹(u), u ~ U(0, 1), F the CDF of p on its effective support.

    F⁻¹ is scipy's PINV interpolation (u-error ≤ 1e-10); if PINV fails, the inverse of a
    trapezoidal CDF on 2^16 grid points (error O(h²))."""

    log_density: Callable[[np.ndarray], np.ndarray]
    method: str = "exact inverse CDF"
    exact: bool = True

    def __post_init__(self):
        self.lo, self.hi, self.mode = support_1d(self.log_density)
        self._top = float(self.log_density(np.array([[self.mode]]))[0])
        self._ppf = self._pinv() or self._grid_ppf()

    def _pdf_scalar(self, x: float) -> float:
        v = float(self.log_density(np.array([[x]], dtype=float))[0]) - self._top
        return float(np.exp(v)) if np.isfinite(v) else 0.0

    def _pinv(self):
        from scipy.stats.sampling import NumericalInversePolynomial

        sampler = self

        class _Dist:
            def pdf(self, x):
                return sampler._pdf_scalar(x)

        try:
            gen = NumericalInversePolynomial(
                _Dist(), domain=(self.lo, self.hi), center=self.mode, u_resolution=1e-10,
                random_state=np.random.default_rng(0),
            )
        except Exception:  # UNU.RAN refuses some shapes (e.g. a pole at the boundary)
            return None
        self.method = "exact inverse CDF (PINV)"
        return gen.ppf

    def _grid_ppf(self):
        grid = np.linspace(self.lo, self.hi, 1 << 16)
        lp = self.log_density(grid[:, None])
        dens = np.where(np.isfinite(lp), np.exp(lp - np.nanmax(lp)), 0.0)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
        cdf /= cdf[-1]
        self.method = "exact inverse CDF (grid of 65536)"
        return lambda u: np.interp(u, cdf, grid)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self._ppf(rng.random(n)), dtype=float).reshape(n, 1)


# --------------------------------------------------------------------------- reference 2-D grid
@dataclass
class GridSampler(BlockSampler):
    """2-D reference draws: pick a cell of a fine grid with probability ∝ p(centre), jitter uniformly.

    The grid covers {log p ≥ max - 45} (found by two passes of a log-spaced 2-D grid) with
    ``cells`` × ``cells`` cells; the boundary is checked to carry negligible density."""

    log_density: Callable[[np.ndarray], np.ndarray]
    cells: int = 1024
    method: str = "reference grid resampling"
    exact: bool = False

    def __post_init__(self):
        center = np.zeros(2)
        for _ in range(2):
            ax = [_symmetric_grid(c, half=150) for c in center]
            X, Y = np.meshgrid(ax[0], ax[1], indexing="ij")
            lp = self.log_density(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
            lp = np.where(np.isfinite(lp), lp, -np.inf)
            i, j = np.unravel_index(int(np.argmax(lp)), lp.shape)
            center = np.array([ax[0][i], ax[1][j]])
        keep = np.argwhere(lp >= lp.max() - SUPPORT_DROP)
        lo_i, hi_i = keep.min(axis=0), keep.max(axis=0)
        if lo_i.min() == 0 or hi_i[0] == lp.shape[0] - 1 or hi_i[1] == lp.shape[1] - 1:
            raise DerivationError("the density does not fall off within ±1e4 of its mode: not normalisable?")
        lo = np.array([ax[k][lo_i[k] - 1] for k in range(2)])
        hi = np.array([ax[k][hi_i[k] + 1] for k in range(2)])
        for _ in range(4):
            self._build(lo, hi)
            if self._edge_drop >= SUPPORT_DROP - 15:
                break
            width = hi - lo
            lo, hi = lo - 0.5 * width, hi + 0.5 * width

    def _build(self, lo: np.ndarray, hi: np.ndarray) -> None:
        k = self.cells
        self.lo, self.width = lo, (hi - lo) / k
        cx = lo[0] + (np.arange(k) + 0.5) * self.width[0]
        cy = lo[1] + (np.arange(k) + 0.5) * self.width[1]
        X, Y = np.meshgrid(cx, cy, indexing="ij")
        lp = self.log_density(np.column_stack([X.ravel(), Y.ravel()])).reshape(k, k)
        lp = np.where(np.isfinite(lp), lp, -np.inf)
        top = lp.max()
        edge = np.concatenate([lp[0], lp[-1], lp[:, 0], lp[:, -1]])
        self._edge_drop = float(top - edge.max())
        prob = np.exp(lp - top).ravel()
        self._prob = prob / prob.sum()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = self.cells
        cell = rng.choice(k * k, size=n, p=self._prob)
        ij = np.column_stack(np.unravel_index(cell, (k, k)))
        return self.lo + (ij + rng.random((n, 2))) * self.width


# --------------------------------------------------------------------------- reference MALA
@dataclass
class MalaSampler(BlockSampler):
    """Metropolis-adjusted Langevin (Roberts & Tweedie 1996) with a constant preconditioner M and
    the truncated drift of MALTA, d(x) = ∇log p(x) · min(1, 4 / (ε² |∇log p(x)|)):

    y = x + (ε²/2) M d(x) + ε L ξ, M = L Lᵀ, accepted with probability
    min(1, p(y) q(x|y) / (p(x) q(y|x))), q(y|x) = N(y; x + (ε²/2) M d(x), ε² M).
    M = inverse Hessian of -log p at the mode (identity if that is not positive definite)."""

    log_density: Callable[[np.ndarray], np.ndarray]
    score: Callable[[np.ndarray], np.ndarray]
    dim: int
    chains: int = 1000
    burn_in: int = 1500
    thin: int = 20
    method: str = "reference MALA"
    exact: bool = False
    acceptance: float = field(default=float("nan"))

    def __post_init__(self):
        f = lambda v: -float(self.log_density(v[None, :])[0])
        g = lambda v: -self.score(v[None, :])[0]
        opt = scipy.optimize.minimize(f, np.zeros(self.dim), jac=g, method="BFGS")
        self.mode = opt.x
        hess_inv = np.asarray(opt.hess_inv)
        try:
            self._chol = np.linalg.cholesky(0.5 * (hess_inv + hess_inv.T))
        except np.linalg.LinAlgError:
            self._chol = np.eye(self.dim)
        self.method = f"reference MALA ({self.chains} chains, burn-in {self.burn_in}, thinning {self.thin})"

    @staticmethod
    def _tamed(gr, eps):
        """The truncated drift of MALTA (Roberts & Tweedie 1996): ∇log p scaled down to norm at
        most 4/ε², so that super-linear gradients (log p ~ -x⁴) cannot throw a proposal far out
        (the Metropolis–Hastings correction keeps the chain exact)."""
        cap = 4.0 / eps**2
        norm = np.linalg.norm(gr, axis=-1, keepdims=True)
        return gr * np.minimum(1.0, cap / np.maximum(norm, 1e-300))

    def _step(self, x, lp, gr, eps, rng):
        M = self._chol @ self._chol.T
        mean_x = x + 0.5 * eps**2 * self._tamed(gr, eps) @ M.T
        y = mean_x + eps * rng.standard_normal(x.shape) @ self._chol.T
        lpy, gry = self.log_density(y), self.score(y)
        mean_y = y + 0.5 * eps**2 * self._tamed(gry, eps) @ M.T
        Minv = np.linalg.inv(M)

        def log_q(to, mean):
            r = to - mean
            return -0.5 * np.einsum("ni,ij,nj->n", r, Minv, r) / eps**2

        log_ratio = lpy + log_q(x, mean_y) - lp - log_q(y, mean_x)
        accept = np.log(rng.random(len(x))) < np.where(np.isfinite(log_ratio), log_ratio, -np.inf)
        x = np.where(accept[:, None], y, x)
        lp = np.where(accept, lpy, lp)
        gr = np.where(accept[:, None], gry, gr)
        return x, lp, gr, accept.mean()

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        chains = min(self.chains, n)
        per_chain = -(-n // chains)
        x = self.mode + 0.5 * rng.standard_normal((chains, self.dim)) @ self._chol.T
        lp, gr = self.log_density(x), self.score(x)
        log_eps = np.log(1.0 / self.dim ** (1 / 6))
        for k in range(self.burn_in):
            x, lp, gr, acc = self._step(x, lp, gr, np.exp(log_eps), rng)
            log_eps += (acc - 0.574) / np.sqrt(k + 1.0)
        eps, out, rates = np.exp(log_eps), [], []
        for _ in range(per_chain):
            for _ in range(self.thin):
                x, lp, gr, acc = self._step(x, lp, gr, eps, rng)
                rates.append(acc)
            out.append(x.copy())
        self.acceptance = float(np.mean(rates))
        return np.concatenate(out, axis=0)[:n]


# --------------------------------------------------------------------------- the combination
@dataclass
class TargetSampler:
    """Draws whole particles (n, dim) from p by sampling each independent block."""

    target: TargetDensity
    parts: List[Tuple[Tuple[int, ...], BlockSampler]]

    @property
    def exact(self) -> bool:
        return all(s.exact for _, s in self.parts)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((n, self.target.dim))
        for coords, s in self.parts:
            out[:, list(coords)] = s.sample(n, rng)
        return out

    def describe(self) -> str:
        """Which sampler drew which coordinates, e.g. 'x: exact inverse CDF (PINV); y: exact Gaussian'."""
        if self.target.elementwise:
            return f"{self.parts[0][1].method} per component (d = {self.target.dim}, iid)"
        names = self.target.states
        groups: dict = {}
        for coords, s in self.parts:
            groups.setdefault(s.method, []).append(", ".join(names[i].name for i in coords))
        return "; ".join(f"({'), ('.join(v)}): {k}" if len(v) > 1 else f"{v[0]}: {k}" for k, v in groups.items())


def block_sampler(block: TargetBlock) -> BlockSampler:
    """The best sampler for one block: exact Gaussian, exact 1-D inverse CDF, 2-D grid, MALA."""
    gauss = gaussian_form(block)
    if gauss is not None:
        return GaussianSampler(*gauss)
    if block.size == 1:
        return InverseCdfSampler(block.log_density())
    if block.size == 2:
        return GridSampler(block.log_density())
    return MalaSampler(block.log_density(), block.score(), block.size)


def sampler_for(target: TargetDensity) -> TargetSampler:
    """A sampler of the whole target; elementwise targets share one 1-D sampler over components."""
    if target.elementwise:
        one = block_sampler(target.blocks()[0])

        class _Columns(BlockSampler):
            method, exact, inner = one.method, one.exact, one

            def sample(self, n, rng):
                return one.sample(n * target.dim, rng).reshape(n, target.dim)

        return TargetSampler(target, [(tuple(range(target.dim)), _Columns())])
    return TargetSampler(target, [(b.coords, block_sampler(b)) for b in target.blocks()])
