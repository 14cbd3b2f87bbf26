"""divergence() of ODE models and the Langevin / complete-recipe constructor."""
import pytest
import sympy
from sympy import Matrix, Symbol, exp

import derive_models as dm
from sdelang import DerivationError
from sdelang.derive import langevin
from sdelang.model import Model, NetOutput, net_output

x, y, v, t, d = Symbol("x"), Symbol("y"), Symbol("v"), Symbol("t"), Symbol("d")


def test_divergence_of_explicit_ode():
    m = Model("Damped", (x, v), Matrix([v, -x - 3 * v + x * v]), sympy.zeros(2, 0), ())
    assert sympy.expand(m.divergence() - (-3 + x)) == 0


def test_divergence_keeps_net_trace_terms():
    f0, f1 = net_output("f", 0, t, (x, y)), net_output("f", 1, t, (x, y))
    m = Model("Neural", (x, y), Matrix([f0, f1]), sympy.zeros(2, 0), ())
    div = m.divergence()
    assert div == sympy.Derivative(f0, x) + sympy.Derivative(f1, y)


def test_divergence_of_elementwise_flow():
    vp = dm.vp()
    exact = vp.probability_flow(score=[-x])  # data N(0,1) stays N(0,1): v = 0
    assert exact.divergence() == 0
    linear = Model("Lin", (x,), Matrix([-2 * x]), sympy.zeros(1, 0), (), dimension=d)
    assert linear.divergence() == -2 * d
    cubic = Model("Cub", (x,), Matrix([-x ** 3]), sympy.zeros(1, 0), (), dimension=d)
    div = cubic.divergence()
    assert isinstance(div, sympy.Sum) and d in div.free_symbols
    (i, lo, hi), = div.limits
    assert div.function == -3 * sympy.IndexedBase("x")[i] ** 2 and (lo, hi) == (1, d)
    learned = vp.probability_flow().divergence()
    assert learned.atoms(NetOutput) and learned.has(sympy.Derivative)


def test_divergence_of_sde_raises():
    with pytest.raises(DerivationError, match="probability_flow"):
        dm.ou().divergence()


def test_langevin_default_and_scalar_preconditioner():
    p = exp(-(x ** 2 - 1) ** 2 - y ** 2 / 2)
    L = langevin(p, (x, y))
    assert L.drift == Matrix([-2 * x * (x ** 2 - 1), -y / 2])
    assert L.diffusion == sympy.eye(2) and L.brownians.names == ("W1", "W2")
    assert L.densities[0].name == "p" and L.asserts[0].target == "p"
    L2 = langevin(p, (x, y), preconditioner=4)
    assert sympy.expand(L2.drift[0] - 2 * (-4 * x * (x ** 2 - 1))) == 0
    assert L2.diffusion == 2 * sympy.eye(2)
    assert L2.check_stationary("p").holds


def test_langevin_complete_recipe_matches_hand_written_model():
    G, Q = dm.mcf_parts()
    p = exp(dm.MCF_LOG_P)
    L = langevin(p, dm.MCF_STATES, diffusion=G, Q=Q, name="MCF")
    hand = dm.mcf_model()
    assert (L.drift - hand.drift).applyfunc(sympy.expand) == sympy.zeros(2, 1)
    assert L.check_stationary("p").holds
    Lp = langevin(p, dm.MCF_STATES, preconditioner=G * G.T, Q=Q)
    assert (Lp.diffusion * Lp.diffusion.T - G * G.T).applyfunc(sympy.simplify) == sympy.zeros(2, 2)
    assert Lp.check_stationary("p").holds


def test_langevin_from_model_and_errors():
    L = langevin(dm.double_well_langevin())
    assert L.states == dm.double_well_langevin().states and L.check_stationary("p").holds
    with pytest.raises(DerivationError, match="antisymmetric"):
        langevin(exp(-x ** 2 - y ** 2), (x, y), Q=Matrix([[0, 1], [1, 0]]))


def test_langevin_state_dependent_scalar_preconditioner_1d():
    L = langevin(exp(-x ** 4 / 4), (x,), preconditioner=1 + x ** 2)
    assert L.check_stationary("p").holds
    assert sympy.expand(L.diffusion[0] ** 2 - (1 + x ** 2)) == 0


def test_elementwise_langevin():
    L = langevin(exp(-x ** 2 / 2), (x,), dimension=d)
    assert L.elementwise and L.check_stationary("p").holds and L.kfp().rhs.has(sympy.Sum)
