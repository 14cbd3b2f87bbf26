"""Stationary laws derived in closed form (issue 11), against textbook tables (Gardiner §5.3,
Risken §6.1): each derived density must differ from the law written here by a constant factor."""
from __future__ import annotations

import pytest
import sympy

import sdelang
from sdelang import DerivationError


def model(body: str):
    return sdelang.parse("model M {\n " + body.replace("\n", "\n ") + "\n}")


def proportional(p, q, states) -> bool:
    """p / q is free of the states (log p - log q constant)."""
    ratio = sympy.simplify(sympy.expand_log(sympy.log(p) - sympy.log(q), force=True))
    return not any(sympy.simplify(sympy.diff(ratio, x)) != 0 for x in states)


def test_ornstein_uhlenbeck_is_gaussian():
    m = model("state x\nparam theta = 1.0 in (0, inf), mu = 0.5, sigma = 0.5 in (0, inf)\n"
              "dx = theta*(mu - x) dt + sigma dW")
    theta, mu, sigma = m.params
    x = m.states[0]
    assert proportional(m.stationary_density(), sympy.exp(-theta * (x - mu) ** 2 / sigma ** 2), [x])


def test_cox_ingersoll_ross_is_gamma():
    m = model("state x\nparam kappa = 2.0 in (0, inf), theta = 1.0 in (0, inf), sigma = 1.0 in (0, inf)\n"
              "dx = kappa*(theta - x) dt + sigma*sqrt(x) dW")
    kappa, theta, sigma = m.params
    x = m.states[0]
    shape, rate = 2 * kappa * theta / sigma ** 2, 2 * kappa / sigma ** 2
    assert proportional(m.stationary_density(), x ** (shape - 1) * sympy.exp(-rate * x), [x])


@pytest.mark.slow
def test_jacobi_is_beta():
    m = model("state x\nparam kappa = 2.0 in (0, inf), theta = 0.3 in (0, 1), sigma = 1.0 in (0, inf)\n"
              "dx = kappa*(theta - x) dt + sigma*sqrt(x*(1 - x)) dW")
    kappa, theta, sigma = m.params
    x = m.states[0]
    a, b = 2 * kappa * theta / sigma ** 2, 2 * kappa * (1 - theta) / sigma ** 2
    assert proportional(m.stationary_density(), x ** (a - 1) * (1 - x) ** (b - 1), [x])


@pytest.mark.parametrize("mu", ["0.05", "-0.5", "0.2"])
def test_geometric_brownian_motion_has_no_stationary_law(mu):
    m = model(f"state x\nparam mu = {mu}, sigma = 0.5 in (0, inf)\ndx = mu*x dt + sigma*x dW")
    with pytest.raises(DerivationError, match="not integrable"):
        m.stationary_density()


def test_ito_and_stratonovich_laws_differ():
    """dx = -x dt + √(1+x²) dW: Itô (1+x²)^-2; Stratonovich (Itô drift -x/2) (1+x²)^-3/2."""
    ito = model("state x\ndx = -x dt + sqrt(1 + x^2) dW")
    strat = model("state x\ncalculus stratonovich\ndx = -x dt + sqrt(1 + x^2) dW")
    x = ito.states[0]
    assert proportional(ito.stationary_density(), (1 + x ** 2) ** -2, [x])
    assert proportional(strat.stationary_density(), (1 + x ** 2) ** sympy.Rational(-3, 2), [x])
    assert not proportional(ito.stationary_density(), strat.stationary_density(), [x])


def test_reversible_langevin_with_state_dependent_diffusion():
    """dx = ½ [D ∇log p + ∇·D] dt + √D dW with D = diag(1 + y², 1 + x²) (∇·D = 0 here) keeps
    p = exp(-U) and is reversible: the derived law is exp(-U)."""
    m = model("state x, y\nlet U = x^2/2 + y^2/2 + x*y/4 + x^4/8\n"
              "dx = (-(1 + y^2)*grad(U)[0]/2) dt + sqrt(1 + y^2) dW1\n"
              "dy = (-(1 + x^2)*grad(U)[1]/2) dt + sqrt(1 + x^2) dW2")
    x, y = m.states
    U = x ** 2 / 2 + y ** 2 / 2 + x * y / 4 + x ** 4 / 8
    p = m.stationary_density()
    assert proportional(p, sympy.exp(-U), [x, y])
    assert m.check_stationary(p).holds


def test_a_rotating_drift_violates_detailed_balance():
    m = model("state x, y\ndx = (-x - y) dt + dW1\ndy = (x - y) dt + dW2")
    with pytest.raises(DerivationError, match="detailed balance"):
        m.stationary_density()


def test_elementwise_models_give_the_one_component_factor():
    m = model("state x[d]\nparam d: int = 3\ndx = -2*x dt + dW")
    x = m.states[0]
    assert proportional(m.stationary_density(), sympy.exp(-2 * x ** 2), [x])


def test_derive_stationary_on_the_command_line(capsys):
    from sdelang.cli import main

    assert main(["derive", "examples/cir.sde", "--stationary"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("density p = ") and "exp(" in out
    assert main(["derive", "examples/gbm.sde", "--stationary"]) == 1


# ----------------------------------------------------------------- stationarity with numbers
CIR = ("state x\nparam kappa = 2.0 in (0, inf), theta = 1.0 in (0, inf), sigma = 1.0 in (0, inf)\n"
       "density p = x^3*exp(-4*x)\ndx = kappa*(theta - x) dt + sigma*sqrt(x) dW")


def test_cir_gamma_check_decides_at_the_declared_values():
    r = model(CIR).check_stationary("p")
    assert r.holds and not r.general and r.status == "holds"
    assert "not for all values" in str(r) and "kappa=2" in str(r)


def test_cir_conditions_are_the_gamma_conditions():
    """x³e^{-4x} is Gamma(4, 4): stationary iff 2κθ/σ² - 1 = 3 and 2κ/σ² = 4."""
    m = model(CIR)
    kappa, theta, sigma = m.params
    r = m.check_stationary("p")
    ours = sympy.solve([c.lhs for c in r.conditions], [kappa, theta], dict=True)
    textbook = sympy.solve([2 * kappa * theta / sigma ** 2 - 1 - 3, 2 * kappa / sigma ** 2 - 4], [kappa, theta], dict=True)
    assert ours == textbook
    elsewhere = model(CIR.replace("sigma = 1.0", "sigma = 1.5")).check_stationary("p")
    assert not elsewhere.holds and elsewhere.conditions is not None


def test_a_general_proof_has_no_conditions():
    m = model("state x\nparam theta = 1.0 in (0, inf), sigma = 0.5 in (0, inf)\n"
              "density p = exp(-theta*x^2/sigma^2)\ndx = -theta*x dt + sigma dW")
    r = m.check_stationary("p")
    assert r.holds and r.general and r.conditions == []
