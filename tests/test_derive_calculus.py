"""Itô ⇄ Stratonovich conversion against known drifts."""
import sympy
from sympy import Matrix, Symbol, cos, sin

import derive_models as dm
from sdelang.model import Model


def test_gbm_stratonovich_to_ito_known_drift():
    S, mu, sg = Symbol("S"), Symbol("mu"), Symbol("sigma")
    ito = dm.gbm(calculus="stratonovich").to_ito()
    assert ito.calculus == "ito"
    assert sympy.expand(ito.drift[0] - (mu + sg ** 2 / 2) * S) == 0
    assert ito.diffusion == dm.gbm(calculus="stratonovich").diffusion


def test_gbm_round_trip():
    m = dm.gbm()
    strat = m.to_stratonovich()
    S, mu, sg = Symbol("S"), Symbol("mu"), Symbol("sigma")
    assert strat.calculus == "stratonovich"
    assert sympy.expand(strat.drift[0] - (mu - sg ** 2 / 2) * S) == 0
    back = strat.to_ito()
    assert sympy.expand(back.drift[0] - m.drift[0]) == 0
    assert back == m


def test_identity_for_own_calculus():
    m = dm.gbm()
    assert m.to_ito() is m
    s = dm.gbm(calculus="stratonovich")
    assert s.to_stratonovich() is s


def test_cross_dependent_diagonal_noise_needs_no_correction():
    """dX1 = X2 ∘ dW1, dX2 = X1 ∘ dW2 (VERIFICATION.md): the Itô drift stays 0."""
    ito = dm.cross_diagonal_stratonovich().to_ito()
    assert ito.drift == Matrix([0, 0])


def test_scalar_noise_shared_by_two_states():
    """dx = y ∘ dW, dy = x ∘ dW (one W): c = ½ (G_y ∂_y G_x, G_x ∂_x G_y) = ½ (x, y)."""
    x, y = Symbol("x"), Symbol("y")
    m = Model("Rot", (x, y), Matrix([0, 0]), Matrix([[y], [x]]), (Symbol("W"),), calculus="stratonovich")
    assert sympy.expand(m.to_ito().drift - Matrix([x / 2, y / 2])) == sympy.zeros(2, 1)


def test_elementwise_half_g_gprime():
    x, d = Symbol("x"), Symbol("d")
    m = Model("Sin", (x,), Matrix([0]), Matrix([[sin(x)]]), (Symbol("W"),), calculus="stratonovich",
              dimension=d)
    ito = m.to_ito()
    assert sympy.expand(ito.drift[0] - sin(x) * cos(x) / 2) == 0
    assert ito.dimension == d and ito.elementwise


def test_heston_correction_general_noise():
    """Heston read as Stratonovich: c_S = ½ (G_S1 ∂_S G_S1 + G_v1 ∂_v G_S1) = ½ (v S + ξ ρ S / 2)."""
    S, v = Symbol("S"), Symbol("v")
    xi, rho = Symbol("xi"), Symbol("rho")
    strat = dm.heston().replace(calculus="stratonovich")
    c = strat.to_ito().drift - strat.drift
    assert sympy.simplify(c[0] - (v * S + xi * rho * S / 2) / 2) == 0
    assert sympy.simplify(c[1] - xi ** 2 / 4) == 0
