"""Reverse-time SDE and probability-flow ODE: structure, time convention and exact-score checks."""
import pytest
import sympy
from sympy import Matrix, Symbol, exp, log

import derive_models as dm
from sdelang import DerivationError
from sdelang.model import Density, Model, Net, NetOutput, Param, net_output

x, t, s = Symbol("x"), Symbol("t"), Symbol("s")
theta, mu, sigma = Symbol("theta"), Symbol("mu"), Symbol("sigma")


def test_reverse_learned_score_called_at_T_minus_s():
    m = dm.ou()
    r = m.reverse()
    assert r.time == s and r.t0 == 0 and r.t1 == 1
    assert r.name == "OUReverse"
    assert r.nets == (Net("score", ("x", "s")),)
    calls = r.drift[0].atoms(NetOutput)
    assert calls == {net_output("score", 0, 1 - s, (x,))}
    # dx = -[f - σ² score](x, T - s) ds + σ dW
    expected = -(theta * (mu - x) - sigma ** 2 * net_output("score", 0, 1 - s, (x,)))
    assert sympy.expand(r.drift[0] - expected) == 0
    assert r.diffusion == m.diffusion and r.brownians == m.brownians
    assert r.drift.shape == (1, 1) and r.calculus == "ito"


def test_reverse_t_min_and_time_name_clash():
    m = dm.ou().replace(t0=sympy.Rational(1, 10))
    assert m.reverse().t1 == sympy.Rational(9, 10)
    assert dm.ou().reverse(t_min=sympy.Rational(1, 1000)).t1 == sympy.Rational(999, 1000)
    with_s = dm.ou().replace(parameters=dm.ou().parameters + (Param(Symbol("s")),))
    assert with_s.reverse().time == Symbol("s_")


def test_stationary_ou_is_reversible():
    """Started at its stationary law, OU reversed in time is the same OU."""
    m = dm.ou().replace(densities=(Density("p", exp(-theta * (x - mu) ** 2 / sigma ** 2)),))
    r = m.reverse(score="p")
    assert sympy.expand(r.drift[0] - theta * (mu - x)) == 0
    assert not r.drift[0].atoms(NetOutput) and r.nets == ()


def test_state_dependent_g_general_formula():
    """1-D: reverse drift = -[f - (g²)' - g² score] at T - s, g = x t."""
    g = x * t
    m = Model("M", (x,), Matrix([-x]), Matrix([[g]]), (Symbol("W"),))
    sc = net_output("score", 0, 1 - s, (x,))
    expected = -(-x - 2 * x * (1 - s) ** 2 - x ** 2 * (1 - s) ** 2 * sc)
    assert sympy.expand(m.reverse().drift[0] - expected) == 0
    assert m.reverse().diffusion[0] == x * (1 - s)


def test_existing_nets_are_called_at_T_minus_s_and_prior_becomes_init():
    f = net_output("f", 0, t, (x,))
    m = dm.vp().replace(drift=Matrix([f]), nets=(Net("f", ("x", "t")),))
    r = m.reverse(score=None)
    assert net_output("f", 0, 1 - s, (x,)) in r.drift[0].atoms(NetOutput)
    assert {n.name for n in r.nets} == {"f", "score"}
    vp = dm.vp()
    rv = vp.reverse()
    assert rv.init == vp.prior and rv.prior == () and rv.asserts == ()
    assert rv.dimension == vp.dimension and rv.elementwise


@pytest.mark.slow
def test_vp_reverse_and_flow_with_exact_time_dependent_score():
    """Gaussian data N(0, a²) under VP: p_t = N(0, a² α² + 1 - α²), α = exp(-B/2).
    The reverse model keeps q_s = p_{T-s} as its marginal, the flow keeps p_t."""
    a = Symbol("a", positive=True)
    bmin, bmax = Symbol("beta_min"), Symbol("beta_max")
    B = bmin * t + (bmax - bmin) * t ** 2 / 2
    var = a ** 2 * exp(-B) + 1 - exp(-B)
    log_p = -x ** 2 / (2 * var) - log(var) / 2
    score = [sympy.diff(log_p, x)]
    m = dm.vp(elementwise=False)
    flow = m.probability_flow(score=score)
    assert flow.check_stationary(log_p, log=True, transient=True).status in ("holds", "undecided")
    assert flow.check_stationary(log_p, log=True, transient=True).status != "fails"
    rev = m.reverse(score=score)
    q = log_p.subs(t, 1 - s)
    assert rev.check_stationary(q, log=True, transient=True).status != "fails"
    # a planted bug: flow with factor 1 instead of ½ on the score term fails
    bad = flow.replace(drift=flow.drift - Matrix([sympy.Rational(1, 2) * (bmin + t * (bmax - bmin)) * score[0]]))
    assert bad.check_stationary(log_p, log=True, transient=True).status == "fails"
    # p_t solves the flow's equation but is not stationary: it changes in time
    assert flow.check_stationary(log_p, log=True).status == "fails"


def test_probability_flow_structure():
    m = dm.vp()
    f = m.probability_flow()
    beta = Symbol("beta_min") + t * (Symbol("beta_max") - Symbol("beta_min"))
    sc = net_output("score", 0, t, (x,))
    assert sympy.expand(f.drift[0] - (-beta * x / 2 - beta * sc / 2)) == 0
    assert f.is_ode and f.brownians == () and f.diffusion.shape == (1, 0)
    assert f.time == t and (f.t0, f.t1) == (m.t0, m.t1) and f.noise_type is None
    assert f.nets == (Net("score", ("x", "t")),)
    h = dm.heston().probability_flow()
    assert h.drift.shape == (2, 1) and h.diffusion.shape == (2, 0)


def test_flow_with_state_dependent_D_has_half_divergence():
    """GBM: v = μS - ½ ∂_S(σ²S²) - ½ σ²S² score = μS - σ²S - ½σ²S² score."""
    S, m_, sg = Symbol("S"), Symbol("mu"), Symbol("sigma")
    sc = net_output("score", 0, t, (S,))
    v = dm.gbm().probability_flow().drift[0]
    assert sympy.expand(v - (m_ * S - sg ** 2 * S - sg ** 2 * S ** 2 * sc / 2)) == 0


def test_stratonovich_model_reversed_via_ito():
    """dS = μS dt + σS ∘ dW has Itô drift μS + ½σ²S; reversed in s = 1 - t:
    -[μS + ½σ²S - ∂_S(σ²S²) - σ²S² score] = -μS + 3/2 σ²S + σ²S² score(S, 1 - s)."""
    S, m_, sg = Symbol("S"), Symbol("mu"), Symbol("sigma")
    a = dm.gbm(calculus="stratonovich").reverse()
    sc = net_output("score", 0, 1 - a.time, (S,))
    expected = -m_ * S + sympy.Rational(3, 2) * sg ** 2 * S + sg ** 2 * S ** 2 * sc
    assert sympy.expand(a.drift[0] - expected) == 0 and a.calculus == "ito"


def test_score_option_errors():
    with pytest.raises(DerivationError):
        dm.ou().reverse(score="q")
    with pytest.raises(DerivationError):
        dm.heston().probability_flow(score=[x])
