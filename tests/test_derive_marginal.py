"""Gaussian marginals of affine SDEs against Song et al. (2021) closed forms and Lyapunov ODEs."""
import pytest
import sympy
from sympy import Symbol, exp

import derive_models as dm
from sdelang import DerivationError

t = Symbol("t")
bmin, bmax = Symbol("beta_min"), Symbol("beta_max")
B = bmin * t + (bmax - bmin) * t ** 2 / 2  # ∫_0^t β


def same(a, b):
    return sympy.simplify(sympy.expand(a - b)) == 0


def test_vp_marginal():
    r = dm.vp().marginal()
    (x0,) = r.x0
    assert r.mean.shape == (1, 1) and r.cov.shape == (1, 1) and r.time == t
    assert same(r.mean[0], x0 * exp(-B / 2))
    assert same(r.cov[0], 1 - exp(-B))


def test_subvp_marginal():
    r = dm.subvp().marginal()
    assert same(r.mean[0], r.x0[0] * exp(-B / 2))
    assert same(r.cov[0], (1 - exp(-B)) ** 2)


def test_ve_marginal():
    smin, smax = Symbol("sigma_min"), Symbol("sigma_max")
    r = dm.ve().marginal()
    assert r.mean[0] == r.x0[0]
    expected = smin ** 2 * ((smax / smin) ** (2 * t) - 1)
    pos = {smin: Symbol("sigma_min", positive=True), smax: Symbol("sigma_max", positive=True)}
    diff = sympy.powsimp(sympy.expand(sympy.expand_power_exp((r.cov[0] - expected).xreplace(pos))), force=True)
    assert sympy.simplify(diff) == 0


def test_ou_marginal():
    th, mu, sg = Symbol("theta"), Symbol("mu"), Symbol("sigma")
    r = dm.ou().marginal()
    x0 = r.x0["x_0"]
    assert same(r.mean[0], mu + (x0 - mu) * exp(-th * t))
    assert same(r.cov[0], sg ** 2 / (2 * th) * (1 - exp(-2 * th * t)))


def test_cld_covariance_solves_lyapunov_ode():
    m = dm.cld()
    r = m.marginal()
    A = sympy.Matrix([[sympy.diff(f, s) for s in m.states] for f in m.drift])
    D = m.diffusion * m.diffusion.T
    lyapunov = r.cov.diff(t) - (A * r.cov + r.cov * A.T + D)
    assert lyapunov.applyfunc(sympy.simplify) == sympy.zeros(2, 2)
    assert r.cov.subs(t, 0).applyfunc(sympy.simplify) == sympy.zeros(2, 2)
    x0 = sympy.Matrix(list(r.x0))
    assert (r.mean.diff(t) - A * r.mean).applyfunc(sympy.simplify) == sympy.zeros(2, 1)
    assert (r.mean.subs(t, 0) - x0).applyfunc(sympy.simplify) == sympy.zeros(2, 1)


def test_non_affine_models_raise_naming_the_term():
    with pytest.raises(DerivationError, match="diffusion"):
        dm.gbm().marginal()
    with pytest.raises(DerivationError, match="not affine"):
        dm.double_well_langevin().marginal()
