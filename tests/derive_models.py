"""Models for the derivation and backend tests, built directly with ``sdelang.model.Model`` (no parser).

Each builder returns a Model with plain (assumption-free) public symbols, as the parser would.
"""
from __future__ import annotations

import sympy
from sympy import Matrix, Rational, Symbol, exp, log, sqrt

from sdelang.model import Density, Distribution, Interval, Model, Param

t = Symbol("t")
POSITIVE = Interval(sympy.S.Zero, sympy.S.Infinity)


def param(name, value=None, positive=False, integer=False):
    return Param(Symbol(name), None if value is None else sympy.sympify(value),
                 POSITIVE if positive else None, integer)


def ou(theta=1.0, mu=0.0, sigma=0.5, name="OU"):
    x = Symbol("x")
    th, m, s = Symbol("theta"), Symbol("mu"), Symbol("sigma")
    return Model(name, (x,), Matrix([th * (m - x)]), Matrix([[s]]), (Symbol("W"),),
                 parameters=(param("theta", theta, True), param("mu", mu), param("sigma", sigma, True)))


def gbm(mu=0.05, sigma=0.2, calculus="ito"):
    S = Symbol("S")
    m, sg = Symbol("mu"), Symbol("sigma")
    return Model("GBM", (S,), Matrix([m * S]), Matrix([[sg * S]]), (Symbol("W"),),
                 parameters=(param("mu", mu), param("sigma", sigma, True)), calculus=calculus)


def cir():
    v = Symbol("v")
    k, th, xi = Symbol("kappa"), Symbol("theta"), Symbol("xi")
    return Model("CIR", (v,), Matrix([k * (th - v)]), Matrix([[xi * sqrt(v)]]), (Symbol("W"),),
                 parameters=(param("kappa", 2.0, True), param("theta", 0.04, True), param("xi", 0.3, True)))


def heston():
    S, v = Symbol("S"), Symbol("v")
    mu, k, th, xi, rho = (Symbol(n) for n in ("mu", "kappa", "theta", "xi", "rho"))
    drift = Matrix([mu * S, k * (th - v)])
    G = Matrix([[sqrt(v) * S, 0], [xi * sqrt(v) * rho, xi * sqrt(v) * sqrt(1 - rho ** 2)]])
    return Model("Heston", (S, v), drift, G, (Symbol("W1"), Symbol("W2")),
                 parameters=(param("mu", 0.05), param("kappa", 2.0, True), param("theta", 0.04, True),
                             param("xi", 0.3, True), param("rho", -0.7)))


def _beta():
    bmin, bmax = Symbol("beta_min"), Symbol("beta_max")
    beta = bmin + t * (bmax - bmin)
    integral = bmin * t + (bmax - bmin) * t ** 2 / 2  # ∫_0^t beta
    params = (param("d", 2, integer=True), param("beta_min", 0.1, True), param("beta_max", 20.0, True))
    return beta, integral, params


def vp(elementwise=True):
    """dx = -½ β(t) x dt + sqrt(β(t)) dW, x[d] elementwise (Song et al. 2021)."""
    x = Symbol("x")
    beta, _, params = _beta()
    return Model("VP", (x,), Matrix([-beta * x / 2]), Matrix([[sqrt(beta)]]), (Symbol("W"),),
                 parameters=params, dimension=Symbol("d") if elementwise else None,
                 prior=(("x", Distribution("normal", 0, 1)),))


def subvp():
    x = Symbol("x")
    beta, integral, params = _beta()
    return Model("SubVP", (x,), Matrix([-beta * x / 2]),
                 Matrix([[sqrt(beta * (1 - exp(-2 * integral)))]]), (Symbol("W"),),
                 parameters=params, dimension=Symbol("d"))


def ve():
    """dx = σ_min (σ_max/σ_min)^t sqrt(2 log(σ_max/σ_min)) dW."""
    x = Symbol("x")
    smin, smax = Symbol("sigma_min"), Symbol("sigma_max")
    g = smin * (smax / smin) ** t * sqrt(2 * log(smax / smin))
    return Model("VE", (x,), Matrix([0]), Matrix([[g]]), (Symbol("W"),),
                 parameters=(param("d", 2, integer=True), param("sigma_min", 0.01, True),
                             param("sigma_max", 50.0, True)),
                 dimension=Symbol("d"))


def cld():
    """Critically damped Langevin (Dockhorn et al. 2022), constant β, Γ = 2 sqrt(M)."""
    x, v = Symbol("x"), Symbol("v")
    M, beta = Symbol("M"), Symbol("beta")
    Gam = 2 * sqrt(M)
    drift = Matrix([beta * v / M, -beta * x - Gam * beta * v / M])
    G = Matrix([[0], [sqrt(2 * Gam * beta)]])
    return Model("CLD", (x, v), drift, G, (Symbol("W"),),
                 parameters=(param("M", 0.25, True), param("beta", 4.0, True)))


MCF_STATES = (Symbol("x"), Symbol("y"))
MCF_LOG_P = -(MCF_STATES[0] ** 2 - 1) ** 2 - MCF_STATES[1] ** 2 / 2   # double well x banana-free


def mcf_parts():
    """State-dependent non-diagonal D = G Gᵀ and antisymmetric Q for the complete recipe."""
    x, y = MCF_STATES
    G = Matrix([[1, 0], [x, 1]])           # D = [[1, x], [x, 1 + x^2]], ∇·D = (0, 1)
    q = 1 + y + x * y / 2
    Q = Matrix([[0, q], [-q, 0]])
    return G, Q


def mcf_model():
    """Ma–Chen–Fox complete recipe, written out by hand (not with sdelang.derive.langevin):
    f_i = Σ_j [(D_ij/2 + Q_ij) ∂_j log p + ∂_j (D_ij/2 + Q_ij)]."""
    xs = MCF_STATES
    G, Q = mcf_parts()
    D = G * G.T
    M = D / 2 + Q
    grad = [sympy.diff(MCF_LOG_P, s) for s in xs]
    f = Matrix([sum(M[i, j] * grad[j] + sympy.diff(M[i, j], xs[j]) for j in range(2)) for i in range(2)])
    return Model("MCF", xs, f, G, (Symbol("W1"), Symbol("W2")),
                 densities=(Density("p", exp(MCF_LOG_P)),))


def double_well_langevin():
    x, y = Symbol("x"), Symbol("y")
    U = (x ** 2 - 1) ** 2 + y ** 2 / 2
    p = exp(-U)
    f = Matrix([Rational(1, 2) * sympy.diff(log(p), x), Rational(1, 2) * sympy.diff(log(p), y)])
    return Model("DoubleWell", (x, y), f, sympy.eye(2), (Symbol("W1"), Symbol("W2")),
                 densities=(Density("p", p),))


def cross_diagonal_stratonovich():
    """dX1 = X2 ∘ dW1, dX2 = X1 ∘ dW2: diagonal noise with cross-dependence (no correction)."""
    a, b = Symbol("X1"), Symbol("X2")
    return Model("Cross", (a, b), Matrix([0, 0]), Matrix([[b, 0], [0, a]]),
                 (Symbol("W1"), Symbol("W2")), calculus="stratonovich")
