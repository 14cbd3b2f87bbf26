"""KFP and generator against mathematics written out by hand (exact transition densities)."""
import random

import pytest
import sympy
from sympy import Derivative, Function, Symbol, exp, log, pi, sqrt

import sdelang
from sdelang.derive.kfp import ComponentDerivative

import derive_models as dm

t = Symbol("t")
p = Function("p")


def plug(eq, states, density):
    """(lhs - rhs)/density after p(*states, t) := density."""
    P = p(*states, t)
    residual = (eq.lhs - eq.rhs).subs(P, density).doit()
    return residual / density


def is_zero(expr, symbols_positive=()):
    """Cheap symbolic proof first (cancel), else 40-digit evaluation at random points: a true zero
    gives < 1e-25 everywhere, a wrong density gives O(1) values."""
    pos = {s: Symbol(s.name, positive=True) for s in symbols_positive}
    e = expr.xreplace(pos)
    if sympy.cancel(sympy.together(sympy.expand(e))) == 0:
        return True
    rng = random.Random(1)
    for _ in range(6):
        point = {s: sympy.Rational(rng.randint(100, 900), 1000) for s in e.free_symbols}
        if abs(sympy.N(e.xreplace(point), 40)) > 1e-25:
            return False
    return True


def test_kfp_shape_and_function():
    eq = dm.ou().kfp()
    x = Symbol("x")
    assert isinstance(eq, sympy.Eq)
    assert eq.lhs == Derivative(p(x, t), t)


def test_ou_gaussian_transition_solves_kfp():
    x, x0 = Symbol("x"), Symbol("x0")
    th, mu, s = Symbol("theta"), Symbol("mu"), Symbol("sigma")
    mean = mu + (x0 - mu) * exp(-th * t)
    var = s ** 2 / (2 * th) * (1 - exp(-2 * th * t))
    density = exp(-(x - mean) ** 2 / (2 * var)) / sqrt(2 * pi * var)
    r = plug(dm.ou().kfp(), (x,), density)
    assert is_zero(r, (th, s, t))
    # a wrong variance (missing the factor 1/2) must leave a residual
    wrong = exp(-(x - mean) ** 2 / (4 * var)) / sqrt(4 * pi * var)
    assert not is_zero(plug(dm.ou().kfp(), (x,), wrong), (th, s, t))


def test_gbm_lognormal_transition_solves_kfp():
    S, S0 = Symbol("S", positive=True), Symbol("S0", positive=True)
    mu, sg = Symbol("mu"), Symbol("sigma", positive=True)
    tp = Symbol("t", positive=True)
    m = dm.gbm()
    eq = m.kfp().xreplace({Symbol("S"): S, Symbol("sigma"): sg})
    z = (log(S / S0) - (mu - sg ** 2 / 2) * t) ** 2 / (2 * sg ** 2 * t)
    density = exp(-z) / (S * sg * sqrt(2 * pi * t))
    r = (eq.lhs - eq.rhs).subs(p(S, t), density).doit() / density
    assert sympy.simplify(sympy.expand(r.xreplace({t: tp}))) == 0


def test_stratonovich_gbm_kfp_uses_ito_drift():
    S, mu, sg = Symbol("S"), Symbol("mu"), Symbol("sigma")
    eq = dm.gbm(calculus="stratonovich").kfp()
    P = p(S, t)
    by_hand = -sympy.diff((mu + sg ** 2 / 2) * S * P, S) + sympy.diff(sg ** 2 * S ** 2 * P, S, 2) / 2
    assert sympy.expand(eq.rhs - by_hand) == 0


def test_heston_kfp_matches_textbook_form():
    S, v = Symbol("S"), Symbol("v")
    mu, k, th, xi, rho = (Symbol(n) for n in ("mu", "kappa", "theta", "xi", "rho"))
    P = p(S, v, t)
    by_hand = (-sympy.diff(mu * S * P, S) - sympy.diff(k * (th - v) * P, v)
               + sympy.diff(v * S ** 2 * P, S, 2) / 2 + sympy.diff(rho * xi * v * S * P, S, v)
               + sympy.diff(xi ** 2 * v * P, v, 2) / 2)
    assert sympy.expand(dm.heston().kfp().rhs - by_hand) == 0


def _elementwise_residual_per_component(model, log_phi):
    """KFP/p - ∂t log p for the product density p = Π_i φ(x_i, t), from the Sum form of kfp()."""
    eq = model.kfp()
    x = model.states[0]
    rhs = eq.rhs
    assert isinstance(rhs, sympy.Sum)
    (index, lo, hi), = rhs.limits
    assert lo == 1 and hi == model.dimension
    xi = sympy.IndexedBase(x.name)[index]
    P = p(x, t)
    l_i = log_phi.subs(x, xi)
    dl, d2l = sympy.diff(log_phi, x).subs(x, xi), sympy.diff(log_phi, x, 2).subs(x, xi)
    summand = rhs.function
    summand = summand.subs(ComponentDerivative(P, xi, 2), P * (d2l + dl ** 2)).subs(ComponentDerivative(P, xi, 1), P * dl)
    per = sympy.expand(summand / P) - sympy.diff(l_i, t)
    return per.subs(xi, x)


@pytest.mark.slow
def test_vp_gaussian_kernel_solves_elementwise_kfp():
    m = dm.vp()
    x, x0 = Symbol("x"), Symbol("x0")
    bmin, bmax = Symbol("beta_min"), Symbol("beta_max")
    B = bmin * t + (bmax - bmin) * t ** 2 / 2
    mean, var = x0 * exp(-B / 2), 1 - exp(-B)
    log_phi = -(x - mean) ** 2 / (2 * var) - log(var) / 2
    assert is_zero(_elementwise_residual_per_component(m, log_phi))
    wrong = -(x - mean) ** 2 / (2 * var) - log(var)  # normalisation off: ∂t term wrong
    assert not is_zero(_elementwise_residual_per_component(m, wrong))


def test_ve_gaussian_kernel_solves_elementwise_kfp():
    m = dm.ve()
    x, x0 = Symbol("x"), Symbol("x0")
    smin, smax = Symbol("sigma_min", positive=True), Symbol("sigma_max", positive=True)
    var = smin ** 2 * ((smax / smin) ** (2 * t) - 1)
    log_phi = -(x - x0) ** 2 / (2 * var) - log(var) / 2
    r = _elementwise_residual_per_component(m, log_phi)
    r = r.xreplace({Symbol("sigma_min"): smin, Symbol("sigma_max"): smax})
    assert sympy.simplify(sympy.expand(sympy.powsimp(r))) == 0


def test_elementwise_kfp_keeps_d_symbolic():
    eq = dm.vp().kfp()
    assert Symbol("d") in eq.rhs.free_symbols
    assert eq.lhs == Derivative(p(Symbol("x"), t), t)


def test_generator_on_moments():
    x = Symbol("x")
    th, mu, s = Symbol("theta"), Symbol("mu"), Symbol("sigma")
    L = dm.ou().generator()
    assert sympy.expand(L(x) - th * (mu - x)) == 0
    assert sympy.expand(L(x ** 2) - (2 * x * th * (mu - x) + s ** 2)) == 0


def test_generator_two_dimensional_correlated():
    S, v = Symbol("S"), Symbol("v")
    mu, k, th, xi, rho = (Symbol(n) for n in ("mu", "kappa", "theta", "xi", "rho"))
    L = dm.heston().generator()
    # L(S v) = mu S v + S kappa (theta - v) + D_Sv, with D_Sv = rho xi v S
    assert sympy.expand(L(S * v) - (mu * S * v + S * k * (th - v) + rho * xi * v * S)) == 0


def test_generator_is_adjoint_of_kfp_for_ou():
    """∫ φ (L* p) = ∫ (L φ) p: check with φ = x^2 and a Gaussian p (both integrals by hand)."""
    x = Symbol("x")
    m = dm.ou()
    phi = x ** 2
    density = exp(-x ** 2) / sqrt(pi)
    kfp_rhs = m.kfp().rhs.subs(p(x, t), density).doit()
    lhs = sympy.integrate(phi * kfp_rhs, (x, -sympy.oo, sympy.oo))
    rhs = sympy.integrate(m.generator()(phi) * density, (x, -sympy.oo, sympy.oo))
    assert sympy.simplify(lhs - rhs) == 0


def test_elementwise_kfp_survives_doit_simplify_and_a_concrete_d():
    """OU per component, dx_i = -x_i dt + dW_i: rhs = Σ_i [p + x_i ∂_i p + ½ ∂_i² p]. Under doit()
    and simplify() nothing is lost; with d = 2 it is the 2-D OU's Fokker–Planck operator, which a
    product of N(0, 1/2) densities annihilates and N(0, 1) does not (derivatives taken by hand)."""
    m = sdelang.parse("model OU {\n state x[d]\n param d: int = 2\n dx = -x dt + dW\n}")
    rhs = m.kfp().rhs
    for form in (rhs.doit(), sympy.simplify(rhs)):
        assert form.atoms(ComponentDerivative), form
    concrete = rhs.subs(Symbol("d"), 2).doit()
    x1, x2 = Symbol("x1"), Symbol("x2")
    X, P = sympy.IndexedBase("x"), p(Symbol("x"), t)

    def plugged(q):
        values = {P: q}
        for k, xk in ((1, x1), (2, x2)):
            values[ComponentDerivative(P, X[k], 1)] = sympy.diff(q, xk)
            values[ComponentDerivative(P, X[k], 2)] = sympy.diff(q, xk, 2)
        return sympy.simplify(concrete.xreplace(values).xreplace({X[1]: x1, X[2]: x2}))

    assert plugged(sympy.exp(-x1 ** 2 - x2 ** 2)) == 0
    assert plugged(sympy.exp(-x1 ** 2 / 2 - x2 ** 2 / 2)) != 0
