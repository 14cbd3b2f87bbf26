"""Every example in examples/ parses to the model written out here by hand in SymPy."""
from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from sympy import Integer, Matrix, Rational, Symbol, exp, log, sqrt

import sdelang
from sdelang import NetOutput
from sdelang.model import Assertion, Distribution, Net

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
S = Symbol


def load(name: str) -> sdelang.Model:
    return sdelang.load(EXAMPLES / name)


def same(actual: Matrix, expected) -> bool:
    expected = Matrix(expected)
    return actual.shape == expected.shape and all(
        sympy.simplify(a - e) == 0 for a, e in zip(actual, expected)
    )


def check(m, *, states, brownians, noise_type, drift, diffusion, calculus="ito", dimension=None):
    assert m.states == tuple(S(n) for n in states.split())
    assert m.brownians == tuple(S(n) for n in brownians.split())
    assert m.noise_type == noise_type
    assert m.calculus == calculus
    assert m.dimension == dimension
    assert same(m.drift, drift), m.drift
    assert same(m.diffusion, diffusion), m.diffusion


def test_every_example_is_covered():
    covered = {
        "ou", "gbm", "cir", "heston", "langevin_double_well", "langevin_banana", "langevin_precond",
        "vp", "ve", "subvp", "stratonovich_gbm", "neural_ode", "cld", "cld2d",
    }
    assert {p.stem for p in EXAMPLES.glob("*.sde")} == covered


def test_ou():
    m = load("ou.sde")
    x, theta, mu, sigma = S("x"), S("theta"), S("mu"), S("sigma")
    check(m, states="x", brownians="W", noise_type="additive",
          drift=[theta * (mu - x)], diffusion=[[sigma]])
    assert m.param_values == {"theta": 1.0, "mu": 0.0, "sigma": 0.5}
    assert m.param("theta").interval.positive
    assert m.init == (("x", Distribution("normal", Integer(1), sympy.Float(0.1))),)
    assert m.path == str(EXAMPLES / "ou.sde")


def test_gbm():
    S_, mu, sigma = S("S"), S("mu"), S("sigma")
    check(load("gbm.sde"), states="S", brownians="W", noise_type="diagonal",
          drift=[mu * S_], diffusion=[[sigma * S_]])


def test_cir():
    r, kappa, theta, sigma = S("r"), S("kappa"), S("theta"), S("sigma")
    check(load("cir.sde"), states="r", brownians="W", noise_type="diagonal",
          drift=[kappa * (theta - r)], diffusion=[[sigma * sqrt(r)]])


def test_heston():
    S_, v = S("S"), S("v")
    mu, kappa, theta, xi, rho = (S(n) for n in ("mu", "kappa", "theta", "xi", "rho"))
    m = load("heston.sde")
    check(m, states="S v", brownians="W1 W2", noise_type="general",
          drift=[mu * S_, kappa * (theta - v)],
          diffusion=[[sqrt(v) * S_, 0], [xi * sqrt(v) * rho, xi * sqrt(v) * sqrt(1 - rho**2)]])
    assert m.param("rho").interval.lo == -1 and m.param("rho").interval.lo_closed


def test_langevin_double_well():
    x, y = S("x"), S("y")
    U = (x**2 - 1) ** 2 + y**2 / 2
    m = load("langevin_double_well.sde")
    check(m, states="x y", brownians="W1 W2", noise_type="additive",
          drift=[-sympy.diff(U, x) / 2, -sympy.diff(U, y) / 2], diffusion=[[1, 0], [0, 1]])
    assert sympy.simplify(m.density("p").density_expr - exp(-U)) == 0
    assert m.asserts == (Assertion("stationary", "p"),)


def test_langevin_banana():
    x, y, b = S("x"), S("y"), S("b")
    logp = -(x**2) / 2 - (y - b * (x**2 - 1)) ** 2 / 2
    m = load("langevin_banana.sde")
    check(m, states="x y", brownians="W1 W2", noise_type="additive",
          drift=[sympy.diff(logp, x) / 2, sympy.diff(logp, y) / 2], diffusion=[[1, 0], [0, 1]])
    density = m.density("logp")
    assert density.is_log and sympy.simplify(density.log_expr - logp) == 0
    assert m.asserts == (Assertion("stationary", "logp"),)


def test_langevin_precond_is_the_complete_recipe_and_keeps_p_stationary():
    """f_i = Σ_j [(D_ij/2 + Q_ij) ∂_j log p + ∂_j (D_ij/2 + Q_ij)], and the KFP residual vanishes."""
    x, y, c, q = S("x"), S("y"), S("c"), S("q")
    m = load("langevin_precond.sde")
    G = Matrix([[1, 0], [c * x, 1]])
    D = G * G.T
    Q = Matrix([[0, q], [-q, 0]])
    logp = -(x**2) / 2 - y**4 / 4
    X = (x, y)
    recipe = [
        sum((D[i, j] / 2 + Q[i, j]) * sympy.diff(logp, X[j]) + sympy.diff(D[i, j] / 2 + Q[i, j], X[j])
            for j in range(2))
        for i in range(2)
    ]
    check(m, states="x y", brownians="W1 W2", noise_type="general", drift=recipe, diffusion=G)
    p = exp(logp)
    f = m.drift
    kfp_rhs = -sum(sympy.diff(f[i] * p, X[i]) for i in range(2)) + Rational(1, 2) * sum(
        sympy.diff(D[i, j] * p, X[i], X[j]) for i in range(2) for j in range(2))
    assert sympy.simplify(sympy.expand(kfp_rhs / p)) == 0
    assert m.asserts == (Assertion("stationary", "p"),)


def beta_linear(t):
    return S("beta_min") + t * (S("beta_max") - S("beta_min"))


def test_vp():
    x, t = S("x"), S("t")
    m = load("vp.sde")
    check(m, states="x", brownians="W", noise_type="additive", dimension=S("d"),
          drift=[-beta_linear(t) * x / 2], diffusion=[[sqrt(beta_linear(t))]])
    assert m.elementwise and m.param("d").integer and m.param_values["d"] == 2
    assert m.prior == (("x", Distribution("normal", Integer(0), Integer(1))),)


def test_ve():
    t = S("t")
    smin, smax = S("sigma_min"), S("sigma_max")
    m = load("ve.sde")
    g = smin * (smax / smin) ** t * sqrt(2 * log(smax / smin))
    check(m, states="x", brownians="W", noise_type="additive", dimension=S("d"),
          drift=[0], diffusion=[[g]])
    assert m.prior == (("x", Distribution("normal", Integer(0), smax)),)


def test_subvp():
    x, t = S("x"), S("t")
    bmin, bmax = S("beta_min"), S("beta_max")
    integral = bmin * t + (bmax - bmin) * t**2 / 2
    check(load("subvp.sde"), states="x", brownians="W", noise_type="additive", dimension=S("d"),
          drift=[-beta_linear(t) * x / 2],
          diffusion=[[sqrt(beta_linear(t) * (1 - exp(-2 * integral)))]])


def test_stratonovich_gbm():
    S_, mu, sigma = S("S"), S("mu"), S("sigma")
    check(load("stratonovich_gbm.sde"), states="S", brownians="W", noise_type="diagonal",
          drift=[mu * S_], diffusion=[[sigma * S_]], calculus="stratonovich")


def test_neural_ode():
    x, t = S("x"), S("t")
    m = load("neural_ode.sde")
    assert m.states == (x,) and m.brownians == () and m.is_ode and m.noise_type is None
    assert m.dimension == S("d")
    assert m.drift == Matrix([NetOutput(S("f"), Integer(0), t, x)])
    assert m.diffusion.shape == (1, 0)
    assert m.nets == (Net("f", ("x", "t")),)
    assert m.init == (("x", Distribution("data")),)


def test_cld():
    x, v = S("x"), S("v")
    M, Gamma, beta = S("M"), S("Gamma"), S("beta")
    m = load("cld.sde")
    check(m, states="x v", brownians="W", noise_type="additive",
          drift=[v * beta / M, -x * beta - Gamma * v * beta / M],
          diffusion=[[0], [sqrt(2 * Gamma * beta)]])
    # critical damping: Gamma^2 = 4 M
    values = m.param_values
    assert values["Gamma"] ** 2 == 4 * values["M"]
    assert m.prior == (
        ("x", Distribution("normal", Integer(0), Integer(1))),
        ("v", Distribution("normal", Integer(0), sqrt(M))),
    )


def test_cld2d():
    """CLD on 2-D data: cld.sde's dynamics for each of two (position, velocity) pairs."""
    x1, x2, v1, v2 = S("x1"), S("x2"), S("v1"), S("v2")
    M, Gamma, beta = S("M"), S("Gamma"), S("beta")
    m = load("cld2d.sde")
    check(m, states="x1 x2 v1 v2", brownians="W1 W2", noise_type="additive",
          drift=[v1 * beta / M, v2 * beta / M, -x1 * beta - Gamma * v1 * beta / M, -x2 * beta - Gamma * v2 * beta / M],
          diffusion=[[0, 0], [0, 0], [sqrt(2 * Gamma * beta), 0], [0, sqrt(2 * Gamma * beta)]])
    assert m.param_values == load("cld.sde").param_values


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.sde")), ids=lambda p: p.name)
def test_examples_parse_with_one_parser_built_once(path):
    """Parsing is cheap after import because the Lark parser is built once and reused (its time is
    measured in benchmarks/cli_latency.py, not asserted here): reparsing builds no new parser and
    gives the same tree."""
    from sdelang.syntax import grammar

    text = path.read_text()
    first = sdelang.parse(text)
    before = grammar.lark_parser.cache_info().misses
    assert sdelang.parse(text) == first
    assert grammar.lark_parser.cache_info().misses == before
