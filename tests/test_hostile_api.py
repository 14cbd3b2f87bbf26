"""Hostile and careless calls of the Python API (issue 10): crafted Models, bad compile arguments,
bad simulation inputs, impossible derivations — each a clear error, never foreign code or a wrong
number, and every symbolic step ends within its time budget."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import sdelang
from sdelang import BudgetExceeded, DerivationError, EmitError, SpecError
from sdelang.model.model import Net, Param
from sdelang.model.symbols import net_output

BACKENDS = ["torch", "jax"]

OU = """model OU {
    state x
    param theta = 1.0 in (0, inf)
    dx = -theta * x dt + dW
}"""

VP = """model VP {
    time t in [0, 1]
    state x[d]
    param d: int = 2
    param beta_min = 0.1 in (0, inf)
    param beta_max = 20.0 in (0, inf)
    let beta(t) = beta_min + t * (beta_max - beta_min)
    dx = -1/2 * beta(t) * x dt + sqrt(beta(t)) dW
    prior x ~ Normal(0, 1)
}"""

TWO = """model Two {
    state x, y
    dx = -x dt + dW1
    dy = -y dt + dW2
}"""


def drift_at(module, backend, x):
    if backend == "torch":
        import torch

        return module.drift_fn(torch.tensor(0.0, dtype=torch.float64), torch.tensor(x, dtype=torch.float64)).detach().numpy()
    import jax.numpy as jnp

    return np.asarray(module.drift_fn(0.0, jnp.asarray(x)))


def simulate(module, backend, x0, ts, dt=0.1):
    if backend == "torch":
        import torch

        return module.simulate(torch.tensor(np.asarray(x0), dtype=torch.float64), ts, dt, seed=0)
    import jax.numpy as jnp

    return module.simulate(jnp.asarray(np.asarray(x0)), ts, dt, seed=0)


# ----------------------------------------------------------------- foreign code
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crafted_model_name_never_runs(backend, tmp_path):
    pytest.importorskip(backend)
    marker = tmp_path / "PWNED"
    name = f"A\nX = '''\nimport os; open({str(marker)!r}, 'w')\n'''\nclass Z"
    model = sdelang.parse(OU).replace(name=name)
    source = sdelang.emit(model, backend)
    module = model.compile(backend)
    assert not marker.exists()
    assert "\nimport os" not in source.split("sdelang_spec")[0]
    assert drift_at(module, backend, [[2.0]])[0, 0] == pytest.approx(-2.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("what", ["parameter", "state", "net", "time", "brownian"])
def test_crafted_identifiers_are_refused_at_emission(backend, what, tmp_path):
    pytest.importorskip(backend)
    marker = tmp_path / "PWNED"
    evil = f"a=1\nimport os; open({str(marker)!r}, 'w')\nb"
    m = sdelang.parse(OU)
    x, theta = m.states[0], m.params[0]
    s = sympy.Symbol(evil)
    if what == "parameter":
        model = m.replace(parameters=(Param(s, sympy.Float(1.0)),), drift=sympy.Matrix([-s * x]))
    elif what == "state":
        model = m.replace(states=(s,), drift=sympy.Matrix([-theta * s]))
    elif what == "net":
        model = m.replace(drift=sympy.Matrix([net_output(evil, 0, m.time, (x,))]), nets=(Net(evil, ("x", "t")),))
    elif what == "time":
        model = m.replace(time=s)
    else:
        model = m.replace(brownians=(s,))
    with pytest.raises(EmitError, match="not a valid identifier"):
        sdelang.emit(model, backend)
    with pytest.raises(SpecError):
        model.compile(backend)
    assert not marker.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_symbols_and_functions_are_refused_at_emission(backend):
    pytest.importorskip(backend)
    m = sdelang.parse(OU)
    x = m.states[0]
    for drift in (sympy.Symbol("os") * x, sympy.Function("system")(x), sympy.Integral(x, x), x * sympy.I):
        with pytest.raises(EmitError):
            sdelang.emit(m.replace(drift=sympy.Matrix([drift])), backend)
    for number in (sympy.Float("1e400"), sympy.Integer(10) ** 400, sympy.oo, sympy.nan):
        with pytest.raises(EmitError):
            sdelang.emit(m.replace(drift=sympy.Matrix([number * x])), backend)


# ----------------------------------------------------------------- compile arguments
@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_checks_parameter_values_as_load_does(backend):
    pytest.importorskip(backend)
    vp = sdelang.parse(VP)
    for bad in ({"d": 2.7}, {"d": 0}, {"d": -4}, {"beta_min": float("nan")}, {"beta_min": -1.0},
                {"beta_min": "abc"}, {"beta_max": 10 ** 400}, {"beta_min": True}):
        with pytest.raises(SpecError):
            vp.compile(backend, **bad)
    with pytest.raises(SpecError, match="scale"):
        sdelang.parse("model P {\n state x\n param s = 1.0\n dx = -x dt + dW\n prior x ~ Normal(0, s)\n}").compile(
            backend, s=-1.0)
    module = vp.compile(backend, d=np.int64(3), beta_min=np.float32(0.5))
    assert module.dimension == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_must_be_callable(backend):
    pytest.importorskip(backend)
    with pytest.raises(TypeError, match="callable"):
        sdelang.parse(VP).compile(backend, score=42)


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_interval_parameters_follow_overrides(backend):
    pytest.importorskip(backend)
    text = "model T {\n time t in [0, T]\n state x\n param T = 1.0 in (0, inf)\n dx = -x dt + dW\n}"
    m = sdelang.parse(text)
    module = m.compile(backend, T=3.0)
    assert float(module.t1) == 3.0 and float(module.t0) == 0.0
    reverse = module.reverse(score=lambda y, t: -y)
    assert float(reverse.t1) == pytest.approx(3.0)
    free = sdelang.parse(text.replace("param T = 1.0", "param T"))
    assert float(free.compile(backend, T=2.5).t1) == 2.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_net_must_return_one_value_per_component(backend):
    pytest.importorskip(backend)
    m = sdelang.parse(TWO.replace("dx = -x dt", "dx = -score(x, y, t)[0] dt"))
    if backend == "torch":
        net = lambda y, t: y[:, :1]
    else:
        net = lambda y, t: y[..., :1]
    module = m.compile(backend, score=net)
    with pytest.raises(ValueError, match="returned shape"):
        drift_at(module, backend, [[1.0, 2.0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_simulation_inputs_are_checked(backend):
    pytest.importorskip(backend)
    vp = sdelang.parse(VP).compile(backend)
    with pytest.raises(ValueError, match="x0"):
        simulate(vp, backend, np.zeros((4, 3)), [0.0, 0.5])  # d = 2
    two = sdelang.parse(TWO).compile(backend)
    for ts in ([0.0, float("nan")], [0.0, float("inf")]):
        with pytest.raises(ValueError, match="finite"):
            simulate(two, backend, np.zeros((4, 2)), ts)
    with pytest.raises(ValueError, match="dt"):
        simulate(two, backend, np.zeros((4, 2)), [0.0, 1.0], dt=float("nan"))


def test_overrides_at_load_are_checked_too():
    with pytest.raises(SpecError, match="too large"):
        sdelang.parse(OU, theta=10 ** 400)
    with pytest.raises(SpecError):
        sdelang.parse(OU, theta=float("inf"))
    with pytest.raises(SpecError, match="path"):
        sdelang.load(None)


# ----------------------------------------------------------------- derivations
@pytest.mark.parametrize("t_min", [2, 1.0, -1, float("nan"), "a"])
def test_reverse_refuses_a_t_min_outside_the_interval(t_min):
    with pytest.raises(DerivationError, match="t_min"):
        sdelang.parse(VP).reverse(t_min=t_min)


def test_reverse_keeps_a_valid_t_min():
    assert sdelang.parse(VP).reverse(t_min=0.25).t1 == sympy.Float(0.75)


@pytest.mark.parametrize("density, equation, reason", [
    ("-exp(-x^2/2)", "dx = -x dt + dW", "nowhere positive"),
    ("x", "dx = dW", "not integrable"),
    ("exp(x^2/2)", "dx = x/2 dt + dW", "not integrable"),
    ("1/abs(x)", "dx = -x/abs(x)^2 dt + dW", "not integrable"),
])
def test_check_stationary_refuses_functions_that_are_no_densities(density, equation, reason):
    m = sdelang.parse(f"model M {{\n state x\n density p = {density}\n {equation}\n}}")
    result = m.check_stationary("p")
    assert not result.holds and result.status == "fails"
    assert reason in result.defect and "not a probability density" in str(result)


@pytest.mark.parametrize("density, equation", [
    ("exp(-x^2)", "dx = -x dt + dW"),  # OU, N(0, 1/2)
    ("x^3*exp(-4*x)", "dx = 2*(1 - x) dt + sqrt(x) dW"),  # CIR κ=2, θ=1, σ=1: Gamma(4, 4) on x > 0
    ("1/(1 + x^2)", "dx = -x/(1 + x^2) dt + dW"),  # Cauchy: integrable although heavy-tailed
])
def test_true_densities_still_hold(density, equation):
    m = sdelang.parse(f"model M {{\n state x\n density p = {density}\n {equation}\n}}")
    assert m.check_stationary("p").holds


def test_residual_spot_values_keep_their_sign():
    """r = 1 - 2v² for p = e^{-v²} under dv = -2v dt + dW: spot values are r itself, signed."""
    m = sdelang.parse("model M {\n state v\n density p = exp(-v^2)\n dv = -2*v dt + dW\n}")
    result = m.check_stationary("p")
    assert result.status == "fails" and result.spot_checks
    for point, value in result.spot_checks:
        assert value == pytest.approx(1 - 2 * point["v"] ** 2)
    assert any(value < 0 for _, value in result.spot_checks)


# ----------------------------------------------------------------- work that never ends
COUPLED3 = """model C3 {
    state x, y, z
    param a = 1.0, b = 2.0, c = 0.5, k = 0.3
    dx = (-a*x + k*y) dt + dW1
    dy = (-b*y + k*z) dt + dW2
    dz = (-c*z + k*x) dt + dW3
}"""


def test_a_symbolic_step_past_its_budget_stops_with_its_name():
    with sdelang.time_budget(1.0):
        with pytest.raises(BudgetExceeded, match=r"marginal\(\).*1 s"):
            sdelang.parse(COUPLED3).marginal()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_exact_kernel_falls_back_to_the_parameter_values(backend):
    """3 coupled states with symbolic rates: the exact marginal has cubic eigenvalues. Past its
    share of the budget the kernel is derived at the parameters' values, and refuses others.
    Σ(t) is checked against Σ' = AΣ + ΣAᵀ + I integrated numerically."""
    pytest.importorskip(backend)
    import scipy.integrate

    model = sdelang.parse(COUPLED3)
    with sdelang.time_budget(20.0):  # the exact kernel gets a sixth of it
        module = model.compile(backend)
    A = np.array([[-1.0, 0.3, 0.0], [0.0, -2.0, 0.3], [0.3, 0.0, -0.5]])
    sol = scipy.integrate.solve_ivp(lambda t, v: (A @ v.reshape(3, 3) + v.reshape(3, 3) @ A.T + np.eye(3)).ravel(),
                                    (0, 0.5), np.zeros(9), rtol=1e-10, atol=1e-12)
    expected = sol.y[:, -1].reshape(3, 3)
    if backend == "torch":
        import torch

        _, cov = module.perturbation_kernel(torch.zeros(1, 3, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
        np.testing.assert_allclose(cov[0].numpy(), expected, rtol=1e-6, atol=1e-9)
        with pytest.raises(ValueError, match="derived at k = 0.3"):
            model.compile(backend, k=0.4).perturbation_kernel(torch.zeros(1, 3), 0.5)
    else:
        import jax.numpy as jnp

        _, cov = module.perturbation_kernel(jnp.zeros((1, 3)), 0.5)
        np.testing.assert_allclose(np.asarray(cov[0]), expected, rtol=1e-4, atol=1e-6)


def independent_states(n: int) -> str:
    lines = ["state " + ", ".join(f"x{i}" for i in range(n)),
             "param " + ", ".join(f"a{i} = {1 + i / 10}" for i in range(n))]
    lines += [f"dx{i} = -a{i}*x{i} dt + dW{i}" for i in range(n)]
    return "model Ind {\n " + "\n ".join(lines) + "\n}"


@pytest.mark.slow
def test_independent_states_are_marginalised_one_by_one():
    """30 uncoupled OU states: the marginal is block by block, exactly the 1-D one per state."""
    m = sdelang.parse(independent_states(30))
    marginal = m.marginal()
    t = m.time
    for i in (0, 17, 29):
        a = m.params[f"a{i}"]
        x0 = marginal.x0[i]
        assert sympy.simplify(marginal.mean[i] - x0 * sympy.exp(-a * t)) == 0
        assert sympy.simplify(marginal.cov[i, i] - (1 - sympy.exp(-2 * a * t)) / (2 * a)) == 0
    assert all(marginal.cov[i, j] == 0 for i in range(30) for j in range(30) if i != j)


@pytest.mark.slow
def test_kfp_of_many_states_with_general_noise_ends():
    """The KFP by the product rule: every derivative of p is taken once."""
    n = 12
    lines = ["state " + ", ".join(f"x{i}" for i in range(n)), "brownian " + ", ".join(f"W{i}" for i in range(n))]
    lines += [f"dx{i} = -x{i} dt + " + " + ".join(f"0.1*x{(i + j) % n} dW{j}" for j in range(n)) for i in range(n)]
    m = sdelang.parse("model Gen {\n " + "\n ".join(lines) + "\n}")
    with sdelang.time_budget(60):
        rhs = m.kfp().rhs
    # against the definition on a Gaussian test function, at one point
    xs = m.states
    p = sympy.exp(-sum(x ** 2 for x in xs) / 2)
    f, G = m.drift, m.diffusion
    D = G * G.T
    direct = -sum(sympy.diff(f[i] * p, xs[i]) for i in range(n)) + sympy.Rational(1, 2) * sum(
        sympy.diff(D[i, j] * p, xs[i], xs[j]) for i in range(n) for j in range(n))
    point = {x: sympy.Rational(k + 1, 7) for k, x in enumerate(xs)}
    p_fn = list(rhs.atoms(sympy.core.function.AppliedUndef))[0].func
    ours = rhs.subs(p_fn(*xs, m.time), p).doit()
    assert math.isclose(float(ours.subs(point)), float(direct.subs(point)), rel_tol=1e-10)


def test_trigonometric_stationarity_check_ends():
    m = sdelang.parse("""model Trig {
 state x, y
 density p = exp(-sin(x)^2*cos(y)^3 - cos(x*y)^2 - x^2 - y^2)
 dx = (1/2*grad(log(p))[0] + sin(x)*cos(y)^2*tanh(x)) dt + (1 + sin(y)^2) dW1
 dy = (1/2*grad(log(p))[1] + cos(x)^3) dt + cos(x)*sin(y) dW1 + dW2
}""")
    with sdelang.time_budget(30):
        result = m.check_stationary("p")
    assert result.status in ("fails", "undecided")


def test_budgets_nest_and_restore_the_alarm():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    with sdelang.time_budget(5):
        assert sdelang.parse(OU).reverse().kfp() is not None
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_ten_coupled_states_compile_without_a_closed_form_kernel():
    """A 10 x 10 drift matrix has eigenvalues of degree 10: no kernel, but a module (and a clear
    DerivationError from marginal())."""
    n = 10
    lines = ["state " + ", ".join(f"x{i}" for i in range(n)),
             "param " + ", ".join(f"a{i} = {1 + i / 10}" for i in range(n)) + ", k = 0.2"]
    lines += [f"dx{i} = (-a{i}*x{i} + k*x{(i + 1) % n}) dt + dW{i}" for i in range(n)]
    model = sdelang.parse("model Ring {\n " + "\n ".join(lines) + "\n}")
    with sdelang.time_budget(30):
        source = sdelang.emit(model, "torch")
        with pytest.raises(DerivationError):
            model.with_params(**{f"a{i}": 1.0 + i / 10 for i in range(n)}).replace(
                drift=model.drift.xreplace(model.param_substitution())).marginal()
    assert "def _kernel" not in source and "def f(self, t, y)" in source
