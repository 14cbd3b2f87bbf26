"""check_stationary: proofs, failures and the complete-recipe family (forward, reverse, flow)."""
import pytest
import sympy
from sympy import Matrix, Symbol, exp, sqrt

import derive_models as dm
from sdelang import DerivationError
from sdelang.derive import langevin, log_density_residual
from sdelang.derive.operators import diffusion_tensor, gradient
from sdelang.model import Density, Model, net_output

x, y, t = Symbol("x"), Symbol("y"), Symbol("t")
theta, mu, sigma = Symbol("theta"), Symbol("mu"), Symbol("sigma")


def test_ou_stationary_gaussian_holds():
    r = dm.ou().check_stationary(exp(-theta * (x - mu) ** 2 / sigma ** 2))  # N(mu, sigma^2 / 2 theta)
    assert r.holds and r.status == "holds" and bool(r)
    assert r.residual == 0
    assert "stationary" in str(r)


def test_ou_wrong_variance_fails_with_numbers():
    r = dm.ou().check_stationary(exp(-theta * (x - mu) ** 2 / (2 * sigma ** 2)))  # N(mu, sigma^2/theta)
    assert not r.holds and r.status == "fails"
    assert r.residual != 0 and r.spot_checks
    assert "NOT" in str(r)
    # the residual is the exact log-density residual: theta/2 - theta^2 (x - mu)^2 / (2 sigma^2)
    assert sympy.simplify(r.residual - (theta / 2 - theta ** 2 * (x - mu) ** 2 / (2 * sigma ** 2))) == 0


def test_declared_density_by_name_and_unknown_name():
    m = dm.double_well_langevin()
    assert m.check_stationary("p").holds
    with pytest.raises(DerivationError, match="did you mean 'p'"):
        m.check_stationary("pp")


def test_banana_langevin_from_constructor_holds():
    p = exp(-(y - x ** 2) ** 2 / 2 - x ** 2 / 8)
    L = langevin(p, (x, y))
    assert L.check_stationary("p").holds
    # the plain drift is ½ ∇ log p (checked against a hand derivative)
    assert sympy.expand(L.drift[1] - (x ** 2 - y) / 2) == 0


def test_cir_gamma_density_holds():
    v, k, th, xi = Symbol("v"), Symbol("kappa"), Symbol("theta"), Symbol("xi")
    gamma_density = v ** (2 * k * th / xi ** 2 - 1) * exp(-2 * k * v / xi ** 2)
    assert dm.cir().check_stationary(gamma_density).holds
    assert dm.cir().check_stationary(v ** (2 * k * th / xi ** 2) * exp(-2 * k * v / xi ** 2)).status == "fails"


def test_mcf_complete_recipe_forward_is_stationary():
    m = dm.mcf_model()
    D = diffusion_tensor(m.diffusion)
    assert D[0, 1].has(x) and D[0, 1] != 0  # state-dependent, non-diagonal
    assert m.check_stationary("p").holds


def test_mcf_reverse_with_exact_score_keeps_p():
    rev = dm.mcf_model().reverse(score="p")
    assert rev.time == Symbol("s")
    assert rev.check_stationary("p").holds


def test_mcf_probability_flow_keeps_p():
    flow = dm.mcf_model().probability_flow(score="p")
    assert flow.is_ode
    assert flow.check_stationary("p").holds


def test_reverse_without_divergence_term_fails():
    """dx = -[f - D ∇log p] ds (∇·D omitted, computed here by hand) does not keep p."""
    m = dm.mcf_model()
    D = diffusion_tensor(m.diffusion)
    wrong = -(m.drift - D * gradient(dm.MCF_LOG_P, m.states))
    bad = m.replace(drift=wrong)
    r = bad.check_stationary("p")
    assert r.status == "fails"
    # drift error δf = -∇·D = (0, -1) adds -Σ [∂_i δf_i + δf_i ∂_i log p] = ∂_y log p = -y
    assert sympy.simplify(r.residual + y) == 0


def test_one_dimensional_state_dependent_g_reverse_formula():
    """1-D, g = 1 + x^2/2 ... the reverse with exact score keeps the stationary p of the
    Langevin-type forward model; dropping (g^2)' breaks it."""
    g = sqrt(1 + x ** 2)
    log_p = -x ** 2 / 2
    f = g ** 2 * sympy.diff(log_p, x) / 2 + sympy.diff(g ** 2, x) / 2
    m = Model("G1", (x,), Matrix([f]), Matrix([[g]]), (Symbol("W"),), densities=(Density("p", exp(log_p)),))
    assert m.check_stationary("p").holds
    assert m.reverse(score="p").check_stationary("p").holds
    wrong = m.replace(drift=Matrix([-(f - g ** 2 * sympy.diff(log_p, x))]))
    assert wrong.check_stationary("p").status == "fails"


def test_liouville_for_ode_models():
    v = Symbol("v")
    osc = Model("Osc", (x, v), Matrix([v, -x]), sympy.zeros(2, 0), ())
    assert osc.check_stationary(exp(-(x ** 2 + v ** 2) / 2)).holds
    damped = Model("Damped", (x, v), Matrix([v, -x - v]), sympy.zeros(2, 0), ())
    r = damped.check_stationary(exp(-(x ** 2 + v ** 2) / 2))
    assert r.status == "fails" and "Liouville" in str(r)


@pytest.mark.slow
def test_time_dependent_density_includes_dt_log_p():
    """The OU transition density from x0 solves the KFP (transient=True: the residual includes
    -∂t log p) but is not stationary (it changes in time)."""
    x0 = Symbol("x0")
    mean = mu + (x0 - mu) * exp(-theta * t)
    var = sigma ** 2 / (2 * theta) * (1 - exp(-2 * theta * t))
    p_t = exp(-(x - mean) ** 2 / (2 * var)) / sqrt(var)
    r = dm.ou().check_stationary(p_t, transient=True)
    assert r.status in ("holds", "undecided")
    assert r.time_dependent
    if r.status == "undecided":
        assert r.spot_checks and not r.holds
    wrong = dm.ou().check_stationary(exp(-(x - mean) ** 2 / (2 * var)), transient=True)  # missing 1/sqrt(var)
    assert wrong.status == "fails"
    stationary_claim = dm.ou().check_stationary(p_t)
    assert stationary_claim.status == "fails" and "depends on time" in stationary_claim.method


def test_elementwise_stationarity_residual_is_a_sum():
    d = Symbol("d")
    ou_elementwise = Model("OUd", (x,), Matrix([-x]), Matrix([[sqrt(2)]]), (Symbol("W"),), dimension=d)
    assert ou_elementwise.check_stationary(exp(-x ** 2 / 2)).holds
    r = ou_elementwise.check_stationary(exp(-x ** 2))
    assert r.status == "fails"
    assert isinstance(r.residual, sympy.Sum) and d in r.residual.free_symbols


def test_learned_net_is_undecided_not_fails():
    net_drift = net_output("f", 0, t, (x,))
    m = Model("N", (x,), Matrix([net_drift]), Matrix([[1]]), (Symbol("W"),))
    r = m.check_stationary(exp(-x ** 2 / 2))
    assert r.status == "undecided" and not r.holds
    assert "undecided" in str(r)


def test_log_density_residual_equals_kfp_over_p():
    """The ∂ log p form agrees with the KFP right-hand side divided by p (Heston, generic ℓ)."""
    S, v = Symbol("S"), Symbol("v")
    ell = -(S - 1) ** 2 - v ** 2 * S / 3
    m = dm.heston()
    from sdelang.derive import kfp_rhs
    direct = kfp_rhs(m, exp(ell)) / exp(ell)
    assert sympy.simplify(sympy.expand(direct - log_density_residual(m, ell))) == 0

