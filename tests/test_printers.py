"""Printers: `.sde` text that parses back to an equal Model, LaTeX, and the plain summary."""
from __future__ import annotations

import glob
import os

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sdelang
from sdelang.model import Assertion, Density, Distribution, Interval, Model, Net, NetOutput, Param, net_output
from sdelang import parse
from sdelang.printers import UnprintableExpression, sde_expression, to_latex, to_sde, to_text
from sdelang.printers.expression import format_float
from sdelang.printers.sde import model_identifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.sde")))

x, y, t, s = sympy.symbols("x y t s")
a, b, theta, mu, sigma, d = sympy.symbols("a b theta mu sigma d")
W, W1, W2 = sympy.symbols("W W1 W2")
POSITIVE = Interval(sympy.S.Zero, sympy.S.Infinity)


# ---------------------------------------------------------------------------- models
def ou() -> Model:
    return Model(
        "OU", (x,), sympy.Matrix([theta * (mu - x)]), sympy.Matrix([[sigma]]), brownians=(W,),
        parameters=(
            Param(theta, sympy.Float(1.0), POSITIVE), Param(mu, sympy.Float(0.0)),
            Param(sigma, sympy.Float(0.5), POSITIVE),
        ),
        densities=(Density("p", sympy.exp(-theta * (x - mu) ** 2 / sigma ** 2)),),
        asserts=(Assertion("stationary", "p"),),
        init=(("x", Distribution("normal", sympy.S.Zero, sympy.S.One)),),
    )


def heston_like() -> Model:
    return Model(
        "Heston", (x, y),
        sympy.Matrix([mu * x, theta * (a - y)]),
        sympy.Matrix([[sympy.sqrt(y) * x, 0], [sigma * b * sympy.sqrt(y), sigma * sympy.sqrt(y) * sympy.sqrt(1 - b ** 2)]]),
        brownians=(W1, W2),
        parameters=(
            Param(mu, sympy.Float(0.05)), Param(theta, sympy.Float(2.0)), Param(a, sympy.Float(0.04)),
            Param(sigma, sympy.Float(0.3)), Param(b, sympy.Float(-0.7), Interval(sympy.Integer(-1), sympy.Integer(1), True, True)),
        ),
    )


def stratonovich_with_net() -> Model:
    score0 = net_output("score", 0, t, (x, y))
    return Model(
        "StratNet", (x, y),
        sympy.Matrix([score0 * sympy.Rational(1, 2) - x ** 3, sympy.Integer(0)]),
        sympy.Matrix([[sympy.sin(y)], [0]]),
        brownians=(W,), calculus="stratonovich", nets=(Net("score", ("x", "y", "t")),),
        prior=(("x", Distribution("data")), ("y", Distribution("normal", sympy.Integer(1), sympy.Float(2.5)))),
    )


def reverse_like() -> Model:
    """The shape of a derived reverse-time model: time s, the net called at 1 - s."""
    beta = a + (1 - s) * (b - a)
    score = net_output("score", 0, 1 - s, (x,))
    return Model(
        "VP_reverse", (x,), sympy.Matrix([beta * x / 2 + beta * score]), sympy.Matrix([[sympy.sqrt(beta)]]),
        brownians=(W,), time=s, dimension=d,
        parameters=(Param(d, sympy.Integer(2), integer=True), Param(a, sympy.Float(0.1)), Param(b, sympy.Float(20.0))),
        nets=(Net("score", ("x", "t")),),
    )


def flow_ode() -> Model:
    return Model(
        "Flow", (x, y), sympy.Matrix([-y + sympy.Abs(x) * sympy.exp(sympy.S.One), sympy.tanh(x) / (1 + y ** 2)]),
        sympy.zeros(2, 0), time=t, t0=sympy.Rational(1, 1000), t1=sympy.Integer(3),
        parameters=(Param(a, None, POSITIVE),),
        densities=(Density("q", -x ** 2 / 2 - sympy.log(1 + y ** 2) + sympy.pi * a, is_log=True),),
    )


def still_state() -> Model:
    """A state with zero drift and noise next to a noisy one."""
    return Model("Still", (x, y), sympy.Matrix([0, -y]), sympy.Matrix([[0], [1]]), brownians=(W,))


def net_derivatives() -> Model:
    """Unevaluated derivatives of network outputs print as grad(...)[i]."""
    f, g = net_output("score", 0, t, (x, y)), net_output("score", 1, t, (x, y))
    return Model(
        "NetDerivatives", (x, y),
        sympy.Matrix([sympy.diff(f, x) + sympy.diff(g, y, 2), sympy.diff(f * x, y)]),
        sympy.Matrix([[1], [0]]), brownians=(W,), nets=(Net("score", ("x", "y", "t")),),
    )


def elementwise_net_derivative() -> Model:
    h = net_output("score", 0, 1 - t, (x,))
    return Model(
        "ElementwiseNet", (x,), sympy.Matrix([sympy.diff(h ** 2, x)]), sympy.Matrix([[1]]), brownians=(W,),
        dimension=d, parameters=(Param(d, sympy.Integer(3), integer=True),), nets=(Net("score", ("x", "t")),),
    )


HAND_WRITTEN = [ou, heston_like, stratonovich_with_net, reverse_like, flow_ode, still_state, net_derivatives,
                elementwise_net_derivative]


# ---------------------------------------------------------------------------- expressions
def _print(expr) -> str:
    return sde_expression(expr, states=(x, y), symbols=(x, y, t, a, b))


@pytest.mark.parametrize("expr, text", [
    (x ** 2, "x^2"),
    (-x ** 2, "-x^2"),
    ((-x) ** y, "(-x)^y"),
    (x ** (y ** a), "x^(y^a)"),
    ((x ** y) ** a, "(x^y)^a"),
    (x ** -2, "x^(-2)"),
    (2 ** (-x), "2^(-x)"),
    (sympy.Rational(1, 2) ** x, "(1/2)^x"),
    (sympy.Integer(-2) ** x, "(-2)^x"),
    (x ** sympy.Rational(3, 2), "x^(3/2)"),
    (x / 2, "x/2"),
    (-sympy.Rational(1, 2), "-1/2"),
    (x / (2 * y), "x/(2*y)"),
    (sympy.sqrt(x), "sqrt(x)"),
    (1 / sympy.sqrt(x + 1), "1/sqrt(x + 1)"),
    (sympy.Abs(x - 1), "abs(x - 1)"),
    (sympy.exp(1) * x, "exp(1)*x"),
    (sympy.pi * a, "pi*a"),
    (sympy.sin(x) * sympy.cos(y) / sympy.tanh(a), "sin(x)*cos(y)/tanh(a)"),
    (sympy.log(x), "log(x)"),
    (sympy.Float(0.1) * x, "0.1*x"),
    (sympy.Float(-0.5) * x, "-0.5*x"),
    (sympy.Float(2.0), "2.0"),
    (sympy.Float(1e-20), "1e-20"),
    (net_output("score", 1, 1 - t, (x, y)), "score(x, y, 1 - t)[1]"),
    (sympy.diff(net_output("f", 0, t, (x, y)), x, y), "grad(grad(f(x, y, t)[0])[0])[1]"),
])
def test_expression_syntax(expr, text):
    assert _print(expr) == text


def test_single_state_net_has_no_index():
    assert sde_expression(net_output("score", 0, 1 - s, (x,)), states=(x,)) == "score(x, 1 - s)"


@pytest.mark.parametrize("value", [
    0.1, 1 / 3, 0.1 + 0.2, -2.5, 1e-300, 2.2250738585072014e-308, 1.7976931348623157e308, 123456789.123,
    2.0, 1e22, 2.0 ** 70 + 2.0 ** 18,
])
def test_float_text_reads_back_to_the_same_double(value):
    """The parser reads decimals as doubles (``Float(text, precision=53)``): the very same Float."""
    text = format_float(sympy.Float(value))
    assert float(text) == value
    assert sympy.Float(text, precision=53) == sympy.Float(value)
    assert "." in text or "e" in text  # never read as an integer


def test_floats_with_more_bits_than_a_double_print_exactly():
    value = sympy.Float("0.1000000000000000000001", 30)
    text = format_float(value)
    assert sympy.Float(text, 60) - value == 0 and text.startswith("0.1000000000000000000001")


def test_short_floats_print_short():
    assert [format_float(sympy.Float(v)) for v in (0.1, 1e-05, 2.0, -0.7, 0.1 + 0.2)] == [
        "0.1", "1e-05", "2.0", "-0.7", "0.30000000000000004"]


@pytest.mark.parametrize("expr, fragment", [
    (sympy.Integral(x, (x, 0, 1)), "Integral"),
    (sympy.Piecewise((x, x > 0), (0, True)), "Piecewise"),
    (sympy.Derivative(sympy.Function("g")(a), a), "derivative with respect to 'a'"),
    (sympy.cosh(x), "cosh"),
    (sympy.oo * x, "Infinity"),
    (sympy.I * x, "ImaginaryUnit"),
    (sympy.Symbol("z") + x, "'z'"),
    (sympy.Symbol("x", real=True) + 1, "assumptions real"),
    (net_output("f", 0, t, (y, x)), "network 'f' is called at"),
    (sympy.Max(x, y), "Max"),
])
def test_inexpressible_expressions_raise(expr, fragment):
    with pytest.raises(UnprintableExpression, match=None) as info:
        _print(expr)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_lenient_printing_never_fails():
    expr = sympy.Integral(sympy.Symbol("z"), (x, 0, 1)) + sympy.cosh(x)
    assert "Integral" in sde_expression(expr, states=(x,), symbols=(x,), strict=False)


# ---------------------------------------------------------------------------- .sde text
def test_ou_text_is_explicit():
    assert to_sde(ou()) == (
        "model OU {\n"
        "    time t in [0, 1]\n"
        "    param theta = 1.0 in (0, inf)\n"
        "    param mu = 0.0\n"
        "    param sigma = 0.5 in (0, inf)\n"
        "    state x\n"
        "    brownian W\n"
        "    density p = exp(-theta*(-mu + x)^2/sigma^2)\n"
        "    dx = (theta*(mu - x)) dt + sigma dW\n"
        "    init x ~ Normal(0, 1)\n"
        "    assert stationary p\n"
        "}\n"
    )


def test_derived_shapes_print_their_special_parts():
    rev = to_sde(reverse_like())
    assert "time s in [0, 1]" in rev and "state x[d]" in rev and "param d: int = 2" in rev
    assert "score(x, 1 - s)" in rev and " ds + " in rev and "net score(x, t)" in rev
    strat = to_sde(stratonovich_with_net())
    assert "calculus stratonovich" in strat and "score(x, y, t)[0]" in strat
    assert "dy = 0 dt" in strat and "prior x ~ data" in strat and "prior y ~ Normal(1, 2.5)" in strat
    flow = to_sde(flow_ode())
    assert "brownian" not in flow and "d W" not in flow and "time t in [1/1000, 3]" in flow
    assert "param a in (0, inf)" in flow and "log_density q = " in flow
    still = to_sde(still_state())
    assert "dx = 0 dt" in still and "dy = (-y) dt + dW" in still
    heston = to_sde(heston_like())
    assert "brownian W1, W2" in heston and "param b = -0.7 in [-1, 1]" in heston


def test_unprintable_model_raises_instead_of_printing_garbage():
    bad = ou().replace(drift=sympy.Matrix([sympy.Piecewise((x, x > 0), (0, True))]))
    with pytest.raises(UnprintableExpression, match="Piecewise"):
        to_sde(bad)


@pytest.mark.parametrize("name, ident", [
    ("OU", "OU"), ("OU (reverse)", "OU_reverse"), ("2d-model", "_2d_model"), ("", "Model"),
])
def test_model_names_become_identifiers(name, ident):
    assert model_identifier(name) == ident


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("make", HAND_WRITTEN, ids=lambda f: f.__name__)
def test_hand_built_models_round_trip(make):
    model = make()
    text = to_sde(model)
    back = parse(text)
    assert back == model, text
    assert to_sde(back) == text  # printing is a fixed point


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_examples_round_trip(path):
    model = sdelang.load(path)
    text = model.to_sde()
    assert parse(text) == model, text


def _derived(model: Model):
    """Every derived model of ``model`` (a derivation the model does not admit is left out)."""
    makers = [
        ("reverse", lambda m: m.reverse()),
        ("flow", lambda m: m.probability_flow()),
        ("stratonovich", lambda m: m.to_stratonovich()),
        ("ito", lambda m: m.to_ito()),
    ]
    for density in model.densities:
        makers.append((f"reverse[{density.name}]", lambda m, p=density.name: m.reverse(score=p)))
        makers.append((f"flow[{density.name}]", lambda m, p=density.name: m.probability_flow(score=p)))
    return [(name, make(model)) for name, make in makers]


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_derived_models_round_trip(path):
    model = sdelang.load(path)
    for name, derived in _derived(model):
        text = derived.to_sde()
        assert parse(text) == derived, f"{name}:\n{text}"


# Random expressions over the language's whole expression syntax.
_leaves = st.sampled_from([x, y, a, b, t, sympy.Integer(2), sympy.Integer(-3), sympy.Rational(1, 3),
                           sympy.Float(0.1), sympy.Float(-2.5e-7), sympy.pi])


def _extend(children):
    unary = st.sampled_from([sympy.exp, sympy.log, sympy.sqrt, sympy.sin, sympy.cos, sympy.tanh, sympy.Abs, lambda e: -e])
    return st.one_of(
        st.builds(lambda f, e: f(e), unary, children),
        st.builds(lambda p, q: p + q, children, children),
        st.builds(lambda p, q: p * q, children, children),
        st.builds(lambda p, q: p / q, children, children.filter(lambda e: e != 0)),
        st.builds(lambda p, q: p ** q, children, st.sampled_from([sympy.Integer(2), sympy.Integer(-1), sympy.Rational(1, 2), sympy.Rational(-3, 2), y, -a])),
        st.builds(lambda e: net_output("score", 1, e, (x, y)), children),
    )


_LANGUAGE_FUNCTIONS = (sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tanh, sympy.Abs, NetOutput)


def _in_language(e) -> bool:
    """SymPy may evaluate e.g. abs(2^y) to 2^re(y), which the language (rightly) cannot print; a
    net's time argument is an expression in the time and the parameters only."""
    return (e.is_finite is not False and not e.has(sympy.zoo, sympy.nan, sympy.I)
            and all(isinstance(f, _LANGUAGE_FUNCTIONS) for f in e.atoms(sympy.Function))
            and all(not (n.time_arg.has(x, y) or n.time_arg.has(NetOutput)) for n in e.atoms(NetOutput)))


_expressions = st.recursive(_leaves, _extend, max_leaves=8).filter(_in_language)


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(drift=_expressions, noise=_expressions)
def test_random_expressions_round_trip(drift, noise):
    model = Model(
        "Random", (x, y), sympy.Matrix([drift, 0]), sympy.Matrix([[noise], [0]]), brownians=(W,),
        parameters=(Param(a, sympy.Float(0.5)), Param(b, sympy.Integer(3))),
        nets=(Net("score", ("x", "y", "t")),),
    )
    text = to_sde(model)
    back = parse(text)
    assert back.drift_matrix[0] == model.drift_matrix[0] or back == model, text
    assert back.diffusion_matrix[0, 0] == model.diffusion_matrix[0, 0] or back == model, text


# ---------------------------------------------------------------------------- LaTeX and text
def test_latex_aligns_equations_and_lists_parameters():
    tex = to_latex(heston_like())
    assert tex.startswith("\\begin{aligned}") and tex.endswith("\\end{aligned}")
    assert tex.count("&=") == 2
    assert "\\mathrm{d}x &= " in tex and "\\,\\mathrm{d}W_{1}" in tex and "\\,\\mathrm{d}W_{2}" in tex
    assert "\\sigma = 0.3" in tex and "b = -0.7 \\in [-1, 1]" in tex
    assert "\\circ" not in tex


def test_latex_of_stratonovich_net_and_elementwise_models():
    strat = to_latex(stratonovich_with_net())
    assert "\\circ\\,\\mathrm{d}W" in strat and "score" in strat
    rev = reverse_like().to_latex()
    assert "\\mathrm{d}s" in rev and "\\mathbb{R}^{d}" in rev
    assert reverse_like()._repr_latex_().startswith("$$\\begin{aligned}")


def test_text_summary():
    text = str(ou())
    assert text == to_text(ou())
    lines = text.splitlines()
    assert lines[0] == "model OU: Itô SDE, 1 state, 1 Brownian motion"
    assert "theta = 1.0 in (0, inf)" in text and "additive (W)" in text
    assert "dx = (theta*(mu - x)) dt + sigma dW" in text and "stationary p" in text
    assert str(flow_ode()).splitlines()[0] == "model Flow: ODE, 2 states"
    assert "Stratonovich SDE" in str(stratonovich_with_net()) and "∘ dW" in str(stratonovich_with_net())
    assert "x[d] (elementwise)" in str(reverse_like())


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_latex_and_text_of_examples_and_derived_models(path):
    model = sdelang.load(path)
    for name, m in [("model", model)] + _derived(model):
        tex, text = m.to_latex(), str(m)
        assert tex.count("&=") == m.n_states, name
        assert all(f"d{s.name} = " in text for s in m.states), name
        assert text.splitlines()[0].startswith(f"model {m.name}: "), name


def test_text_summary_of_an_unprintable_model_does_not_fail():
    bad = ou().replace(drift=sympy.Matrix([sympy.Integral(x, (x, 0, 1)) + sympy.cosh(x)]))
    assert "Integral" in str(bad)


def test_text_writes_the_coefficient_of_a_stratonovich_increment():
    m = sdelang.parse("model S {\n state x\n calculus stratonovich\n dx = -x dt + dW\n}")
    assert "1 ∘ dW" in str(m) and "+ ∘" not in str(m)
