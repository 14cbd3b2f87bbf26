"""Samplers of the numeric stationarity check against laws known in closed form.

Every statistical assertion is a test at α = 1e-3 (Bonferroni where there are several), with a
fixed seed; each sampler also gets a planted error that the same assertion must reject (power).
"""
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import sympy

from sdelang.check.samplers import (
    GaussianSampler, GridSampler, InverseCdfSampler, MalaSampler, gaussian_form, sampler_for,
)
from sdelang.check.target import TargetDensity
from sdelang.errors import DerivationError
from sdelang.model import Model
from sdelang.model.model import Density, Param

ALPHA = 1e-3
x, y, z = sympy.symbols("x y z")


def target(log_p, states, name="p"):
    return TargetDensity(name, tuple(states), sympy.expand_log(log_p, force=True), len(states))


def ks_p(sample, cdf):
    return scipy.stats.kstest(sample, cdf).pvalue


# ------------------------------------------------------------------ exact Gaussian, read symbolically
def test_gaussian_precision_and_mean_read_off_exactly():
    # log p = -(x-1)²/2 - x y - y²: A = [[1, 1], [1, 2]], ∇log p(0) = (1, 0), μ = A⁻¹(1, 0) = (2, -1)
    t = target(-(x - 1) ** 2 / 2 - x * y - y**2, (x, y))
    (block,) = t.blocks()
    mean, precision = gaussian_form(block)
    np.testing.assert_allclose(precision, [[1, 1], [1, 2]], rtol=1e-14)
    np.testing.assert_allclose(mean, [2, -1], rtol=1e-14)
    assert isinstance(sampler_for(t).parts[0][1], GaussianSampler)


def test_gaussian_draws_follow_the_law_and_a_wrong_precision_is_rejected():
    A = np.array([[1.0, 1.0], [1.0, 2.0]])
    mu = np.array([2.0, -1.0])
    t = target(-(x - 1) ** 2 / 2 - x * y - y**2, (x, y))
    draws = sampler_for(t).sample(20000, np.random.default_rng(0))
    r2 = np.einsum("ni,ij,nj->n", draws - mu, A, draws - mu)  # Mahalanobis² ~ χ²(2)
    assert ks_p(r2, scipy.stats.chi2(2).cdf) > ALPHA
    wrong = GaussianSampler(mu, np.array([[1.0, -1.0], [-1.0, 2.0]])).sample(20000, np.random.default_rng(0))
    r2w = np.einsum("ni,ij,nj->n", wrong - mu, A, wrong - mu)
    assert ks_p(r2w, scipy.stats.chi2(2).cdf) < ALPHA


def test_not_normalisable_quadratic_raises():
    with pytest.raises(DerivationError, match="not normalisable"):
        sampler_for(target(x**2 / 2 - y**2, (x, y)))


# ------------------------------------------------------------------ exact product of 1-D factors
def _quadrature_cdf(log_p, lo=-6.0, hi=6.0):
    """CDF of exp(log_p) by adaptive quadrature (an oracle independent of the sampler's PINV)."""
    f = lambda v: np.exp(log_p(v))
    total = scipy.integrate.quad(f, lo, hi, points=[-1, 0, 1], limit=200)[0]
    grid = np.linspace(lo, hi, 4001)
    pieces = [scipy.integrate.quad(f, a, b)[0] for a, b in zip(grid[:-1], grid[1:])]
    cdf = np.concatenate([[0.0], np.cumsum(pieces)]) / total
    return lambda v: np.interp(v, grid, cdf)


def test_product_of_1d_factors_is_split_and_drawn_exactly():
    t = target(-((x**2 - 1) ** 2) - y**2 / 2, (x, y))
    s = sampler_for(t)
    assert [c for c, _ in s.parts] == [(0,), (1,)]
    assert s.exact and "PINV" in s.describe() and "exact Gaussian" in s.describe()
    draws = s.sample(20000, np.random.default_rng(1))
    cdf = _quadrature_cdf(lambda v: -((v**2 - 1) ** 2))
    assert ks_p(draws[:, 0], cdf) > ALPHA / 2
    assert ks_p(draws[:, 1], scipy.stats.norm.cdf) > ALPHA / 2
    # power: draws of a deeper well U = 2(x²-1)² are told apart from the same oracle
    deeper = InverseCdfSampler(lambda v: -2 * (v[:, 0] ** 2 - 1) ** 2).sample(20000, np.random.default_rng(1))
    assert ks_p(deeper[:, 0], cdf) < ALPHA / 2


def test_inverse_cdf_on_a_half_line_density():
    # p(x) ∝ x² e^{-x} on x > 0 (log p = 2 log x - x; nan/-inf for x ≤ 0): Gamma(3, 1)
    s = InverseCdfSampler(lambda v: np.where(v[:, 0] > 0, 2 * np.log(np.abs(v[:, 0]) + 1e-300) - v[:, 0], -np.inf))
    draws = s.sample(20000, np.random.default_rng(2))[:, 0]
    assert draws.min() >= 0
    assert ks_p(draws, scipy.stats.gamma(3).cdf) > ALPHA
    assert ks_p(draws, scipy.stats.gamma(3.2).cdf) < ALPHA


# ------------------------------------------------------------------ reference samplers
def test_grid_sampler_on_the_banana():
    # x ~ N(0, 1), y | x ~ N(b(x² - 1), 1): the residual y - b(x² - 1) is N(0, 1) independent of x
    b = 0.5
    t = target(-x**2 / 2 - (y - b * (x**2 - 1)) ** 2 / 2, (x, y))
    s = sampler_for(t)
    assert isinstance(s.parts[0][1], GridSampler) and not s.exact
    draws = s.sample(20000, np.random.default_rng(3))
    resid = draws[:, 1] - b * (draws[:, 0] ** 2 - 1)
    assert ks_p(draws[:, 0], scipy.stats.norm.cdf) > ALPHA / 3
    assert ks_p(resid, scipy.stats.norm.cdf) > ALPHA / 3
    assert abs(scipy.stats.pearsonr(resid, draws[:, 0] ** 2)[0]) < 4 / np.sqrt(20000)  # |z| < 4
    # power: draws of the banana with curvature 0.6 leave a residual correlated with x² (r ≈ 0.2)
    wrong = sampler_for(target(-x**2 / 2 - (y - 0.6 * (x**2 - 1)) ** 2 / 2, (x, y))).sample(20000, np.random.default_rng(3))
    resid_w = wrong[:, 1] - b * (wrong[:, 0] ** 2 - 1)
    assert abs(scipy.stats.pearsonr(resid_w, wrong[:, 0] ** 2)[0]) > 4 / np.sqrt(20000)


def test_mala_on_a_3d_chain_of_conditionals():
    # x ~ N(0,1), y | x ~ N(x², 1), z | x, y ~ N(x y / 2, 1): residuals are iid N(0, 1)
    log_p = -x**2 / 2 - (y - x**2) ** 2 / 2 - (z - x * y / 2) ** 2 / 2
    t = target(log_p, (x, y, z))
    s = sampler_for(t)
    mala = s.parts[0][1]
    assert isinstance(mala, MalaSampler) and "MALA" in s.describe()
    draws = s.sample(4000, np.random.default_rng(4))
    assert 0.3 < mala.acceptance < 0.9
    a, b, c = draws.T
    chi2_p = lambda r: 2 * min(scipy.stats.chi2(len(r)).cdf(r @ r), scipy.stats.chi2(len(r)).sf(r @ r))
    for resid in (a, b - a**2, c - a * b / 2):
        assert ks_p(resid, scipy.stats.norm.cdf) > ALPHA / 6
        assert chi2_p(resid) > ALPHA / 6  # Σ r² ~ χ²(N): KS alone is weak against scale errors
    # power: under a wrong coupling z | x, y ~ N(x y / 3, 1) the residual has variance 1 + 16/36
    assert chi2_p(c - a * b / 3) < ALPHA / 6


# ------------------------------------------------------------------ targets from models
def test_target_from_model_substitutes_parameters_and_checks_names():
    s = sympy.Symbol("s")
    m = Model("M", (x,), sympy.Matrix([-x / (2 * s**2)]), sympy.Matrix([[1]]), brownians=(sympy.Symbol("W"),),
              parameters=(Param(s, sympy.Float(2.0)),), densities=(Density("p", sympy.exp(-x**2 / (2 * s**2))),))
    t = TargetDensity.from_model(m)
    assert t.log_expr.free_symbols == {x}
    draws = sampler_for(t).sample(20000, np.random.default_rng(5))
    assert ks_p(draws[:, 0], scipy.stats.norm(scale=2.0).cdf) > ALPHA
    with pytest.raises(DerivationError, match="no density 'q'"):
        TargetDensity.from_model(m, "q")


def test_elementwise_target_draws_iid_components():
    d = sympy.Symbol("d")
    m = Model("E", (x,), sympy.Matrix([-x / 2]), sympy.Matrix([[1]]), brownians=(sympy.Symbol("W"),),
              parameters=(Param(d, sympy.Integer(3), integer=True),), dimension=d,
              densities=(Density("p", sympy.exp(-x**4 / 4)),))
    t = TargetDensity.from_model(m)
    assert t.dim == 3 and t.elementwise
    s = sampler_for(t)
    draws = s.sample(5000, np.random.default_rng(6))
    assert draws.shape == (5000, 3) and "per component" in s.describe()
    cdf = _quadrature_cdf(lambda v: -v**4 / 4)
    for j in range(3):
        assert ks_p(draws[:, j], cdf) > ALPHA / 3
    assert np.all(np.abs(np.corrcoef(draws.T)[np.triu_indices(3, 1)]) < 4 / np.sqrt(5000))
