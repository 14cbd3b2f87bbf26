"""The `.sde` language: every statement, operator, function and number form, read into SymPy."""
from __future__ import annotations

import pytest
import sympy

from sdelang.model.functions import RealAbs, RealSign
from sympy import Float, Integer, Rational, Symbol

from sdelang import Model, NetOutput, SpecError
from sdelang.loader import parse
from sdelang.model import Assertion, Density, Distribution, Interval, Net, Param
from sdelang.syntax import ast, parse_spec

x, y, t, s = (Symbol(n) for n in "xyts")
a, b, c = (Symbol(n) for n in "abc")
W, W1, W2 = Symbol("W"), Symbol("W1"), Symbol("W2")


def drift_of(expr: str, states: str = "x, y") -> sympy.Expr:
    """The drift of dx = (expr) dt in a two-state model with parameters a, b, c."""
    m = parse(f"model M {{\n state {states}\n param a = 1, b = 2, c = 3\n dx = ({expr}) dt\n}}")
    return m.drift[0]


# ------------------------------------------------------------------------------ operators
@pytest.mark.parametrize(
    "text, expected",
    [
        ("a + b", a + b),
        ("a - b", a - b),
        ("a * b", a * b),
        ("a / b", a / b),
        ("a ^ b", a**b),
        ("a ** b", a**b),
        ("-a", -a),
        ("+a", a),
        ("a - b - c", a - b - c),  # left-associative
        ("a / b / c", a / b / c),
        ("a + b * c", a + b * c),  # * binds tighter than +
        ("(a + b) * c", (a + b) * c),
        ("-x^2", -(x**2)),  # power binds tighter than unary minus
        ("-x**2", -(x**2)),
        ("2^3^2", Integer(512)),  # right-associative: 2^(3^2)
        ("2**3**2", Integer(512)),
        ("(2^3)^2", Integer(64)),
        ("a^-1", 1 / a),  # a unary minus in an exponent
        ("2^-x^2", 2 ** (-(x**2))),
        ("a*-b", -a * b),
        ("x^2 * y / 2", x**2 * y / 2),
        ("a b", a * b),  # juxtaposed names multiply
        ("2 x", 2 * x),
        ("a^-1 x y", x * y / a),
        ("1/2", Rational(1, 2)),
        ("-1/2 * x", -x / 2),
        ("pi", sympy.pi),
        ("2 * pi * x", 2 * sympy.pi * x),
    ],
)
def test_operators_and_precedence(text, expected):
    assert sympy.simplify(drift_of(text) - expected) == 0
    assert drift_of(text) == expected  # built exactly, not merely equal after simplification


def test_power_binds_tighter_than_unary_minus_structurally():
    assert drift_of("-x^2") == sympy.Mul(-1, sympy.Pow(x, 2))
    assert drift_of("-2^2") == -4


# ------------------------------------------------------------------------------ numbers
@pytest.mark.parametrize(
    "text, expected, kind",
    [
        ("1", Integer(1), sympy.Integer),
        ("42", Integer(42), sympy.Integer),
        ("1_000", Integer(1000), sympy.Integer),
        ("1.0", Float(1.0), sympy.Float),
        ("1.", Float(1.0), sympy.Float),
        (".5", Float(0.5), sympy.Float),
        ("0.1", Float(0.1), sympy.Float),
        ("1e-3", Float(0.001), sympy.Float),
        ("2.5E+2", Float(250.0), sympy.Float),
        ("1_000.5", Float(1000.5), sympy.Float),
        ("1e3", Float(1000.0), sympy.Float),
    ],
)
def test_numbers(text, expected, kind):
    value = drift_of(text)
    assert isinstance(value, kind)
    assert value == expected


def test_float_literals_are_double_precision():
    """The text a printer writes for a Python float reads back as that same float."""
    assert drift_of(repr(0.1)) == Float(0.1)
    assert drift_of("1.10517091807564771244187795673497021198272705078125") == Float(1.1051709180756477)


# ------------------------------------------------------------------------------ juxtaposition
def test_juxtaposition_multiplies_the_whole_product():
    m = parse("model M {\n state x\n param a = 1, b = 2\n dx = a*b dW + a / b dt\n}")
    assert m.diffusion[0, 0] == a * b
    assert m.drift[0] == a / b


def test_juxtaposition_within_a_sum_binds_to_its_term_only():
    m = parse("model M {\n state x\n param a = 1, b = 2\n dx = a dt + b dW\n}")
    assert m.drift[0] == a and m.diffusion[0, 0] == b


def test_bare_differentials_and_signs():
    m = parse("model M {\n state x, y\n dx = dW\n dy = -dt - dW\n}")
    assert m.drift == sympy.Matrix([0, -1])
    assert m.diffusion == sympy.Matrix([[1], [-1]])
    assert m.brownians == (W,)


def test_differentials_inside_a_factor_distribute():
    """Heston's xi sqrt(v) (rho dW1 + sqrt(1 - rho^2) dW2): linear although not expanded."""
    m = parse("model M {\n state v\n param xi = 1, rho = 0\n"
              " dv = xi * sqrt(v) * (rho dW1 + sqrt(1 - rho^2) dW2)\n}")
    xi, rho, v = Symbol("xi"), Symbol("rho"), Symbol("v")
    assert m.diffusion == sympy.Matrix([[xi * sqrt_(v) * rho, xi * sqrt_(v) * sympy.sqrt(1 - rho**2)]])
    assert m.drift == sympy.Matrix([0])


def sqrt_(e):
    return sympy.sqrt(e)


def test_same_differential_twice_adds_up():
    m = parse("model M {\n state x\n dx = x dt + 2 dt + dW - 3 dW\n}")
    assert m.drift[0] == x + 2
    assert m.diffusion[0, 0] == -2


def test_division_of_a_differential_by_a_coefficient():
    m = parse("model M {\n state x\n param a = 2\n dx = dW / a\n}")
    assert m.diffusion[0, 0] == 1 / a


# ------------------------------------------------------------------------------ functions
@pytest.mark.parametrize(
    "text, expected",
    [
        ("exp(x)", sympy.exp(x)),
        ("log(x)", sympy.log(x)),
        ("log(2 * exp(-x^2))", sympy.log(2) - x**2),  # exponentials taken out of a log
        ("sqrt(x)", sympy.sqrt(x)),
        ("sin(x)", sympy.sin(x)),
        ("cos(x)", sympy.cos(x)),
        ("tanh(x)", sympy.tanh(x)),
        ("sigmoid(x)", 1 / (1 + sympy.exp(-x))),
        ("abs(x)", RealAbs(x)),  # |x| of a real x: d|x|/dx = sign(x), not re/im parts
        ("sign(x)", RealSign(x)),
        ("grad(x^2 * y)[0]", 2 * x * y),
        ("grad(x^2 * y)[1]", x**2),
        ("div([x^2, x*y])", 2 * x + x),
        ("laplacian(x^2 * y^2)", 2 * y**2 + 2 * x**2),
        ("dot([x, y], [y, 2])", x * y + 2 * y),
        ("dot(grad(x*y), grad(x*y))", y**2 + x**2),
        ("sum(grad(x^2 + y^3))", 2 * x + 3 * y**2),
        ("[a, b][1]", b),
        ("(grad(x*y))[0]", y),
    ],
)
def test_functions(text, expected):
    assert sympy.simplify(drift_of(text) - expected) == 0


def test_grad_in_one_state_model_reads_as_a_number():
    m = parse("model M {\n state x\n let U = x^4\n dx = -grad(U) dt + dW\n}")
    assert m.drift[0] == -4 * x**3


# ------------------------------------------------------------------------------ statements
def test_every_statement():
    text = """
    # a comment line
    model Everything {   # a trailing comment

        time s in [0, 2]
        state x, y
        param a = 1.5 in (0, inf), n: int = 3 in [1, 10]
        param free
        brownian B
        let U = x^2 + y^2                       # a let
        let beta(u) = a + u                     # a let function
        let V = U / 2                           # lets see earlier lets
        density p = exp(-U)
        log_density q = -V
        net f(x, y, s)
        calculus stratonovich
        dx = -beta(s) * x ds + dB; dy = f(x, y, s)[1] ds + dW3
        init x ~ Normal(0, 1)
        init y ~ data
        prior x ~ Normal(a, 2)
        assert stationary p
    }
    """
    m = parse(text, path="every.sde")
    A, B, W3, n, free = Symbol("a"), Symbol("B"), Symbol("W3"), Symbol("n"), Symbol("free")
    assert isinstance(m, Model)
    assert m.name == "Everything" and m.path == "every.sde"
    assert m.time == s and (m.t0, m.t1) == (0, 2)
    assert m.states == (x, y)
    assert m.params == (A, n, free)
    assert m.param("a") == Param(A, Float(1.5), Interval(Integer(0), sympy.oo, False, False), False)
    assert m.param("n") == Param(n, Integer(3), Interval(Integer(1), Integer(10), True, True), True)
    assert m.param("free").value is None
    assert m.brownians == (B, W3)  # declared first, then implicit in order of first use
    assert m.calculus == "stratonovich"
    assert m.drift == sympy.Matrix([-(A + s) * x, NetOutput(Symbol("f"), Integer(1), s, x, y)])
    assert m.diffusion == sympy.Matrix([[1, 0], [0, 1]])
    assert m.densities == (
        Density("p", sympy.exp(-(x**2) - y**2), False),
        Density("q", -(x**2 + y**2) / 2, True),
    )
    assert m.nets == (Net("f", ("x", "y", "s")),)
    assert m.init == (("x", Distribution("normal", Integer(0), Integer(1))), ("y", Distribution("data")))
    assert m.prior == (("x", Distribution("normal", A, Integer(2))),)
    assert m.asserts == (Assertion("stationary", "p"),)


def test_defaults_when_not_declared():
    m = parse("model M { state x\n dx = -x dt }")
    assert m.time == t and (m.t0, m.t1) == (0, 1)
    assert m.calculus == "ito"
    assert m.brownians == () and m.is_ode and m.noise_type is None
    assert m.dimension is None and not m.elementwise


def test_state_without_equation_is_constant():
    m = parse("model M {\n state x, y\n dx = y dt + dW\n}")
    assert m.drift == sympy.Matrix([y, 0])
    assert m.diffusion == sympy.Matrix([[1], [0]])


def test_one_brownian_shared_by_two_equations_is_scalar_noise():
    m = parse("model M {\n state x, y\n dx = x dW\n dy = y dW\n}")
    assert m.brownians == (W,)
    assert m.diffusion == sympy.Matrix([[x], [y]])
    assert m.noise_type == "scalar"


def test_semicolons_blank_lines_and_multiline_parentheses():
    text = "model M {\n\n state x ; param a = 1;;\n\n dx = (a *\n   (1 - x)\n   ) dt + \\\n  dW\n\n}\n\n"
    m = parse(text)
    assert m.drift[0] == a * (1 - x)
    assert m.diffusion[0, 0] == 1


def test_one_line_model_and_crlf():
    assert parse("model M { state x; dx = -x dt + dW }").drift[0] == -x
    assert parse("model M {\r\n state x\r\n dx = -x dt\r\n}\r\n").drift[0] == -x


def test_elementwise_vector_state():
    m = parse("model V {\n state x[d]\n param d: int = 4\n dx = -x dt + 2 dW\n}")
    assert m.elementwise and m.dimension == Symbol("d")
    assert m.states == (x,) and m.brownians == (W,)
    assert m.drift.shape == (1, 1) and m.diffusion == sympy.Matrix([[2]])
    assert parse("model V {\n state x[3]\n dx = -x dt\n}").dimension == 3


def test_elementwise_net_and_grad_are_per_component():
    m = parse("model V {\n state x[d]\n param d: int = 2\n net f(x, t)\n"
              " density p = exp(-x^2/2)\n dx = (f(x, t) + grad(log(p))) dt\n}")
    assert m.drift[0] == NetOutput(Symbol("f"), Integer(0), t, x) - x


def test_builtin_score_needs_no_declaration():
    m = parse("model M {\n state x, y\n dx = score(x, y, 1 - t)[0] dt + dW\n dy = dW\n}")
    assert m.drift[0] == NetOutput(Symbol("score"), Integer(0), 1 - t, x, y)
    assert m.nets == (Net("score", ("x", "y", "t")),)


def test_let_function_expands_with_lexical_scope():
    m = parse("model M {\n state x\n param k = 2\n let g(x) = k * x^2\n let h(u, v) = g(u) - v\n"
              " dx = h(x + 1, t) dt\n}")
    assert m.drift[0] == Symbol("k") * (x + 1) ** 2 - t


def test_parameter_default_expressions_and_types():
    m = parse("model M {\n state x\n param a = 1/2, b = 2*pi, c: real = -3, n: int = 4.0\n dx = x dt\n}")
    assert m.param_values == {"a": Rational(1, 2), "b": 2 * sympy.pi, "c": -3, "n": 4}
    assert isinstance(m.param("n").value, sympy.Integer)


def test_interval_ends():
    m = parse("model M {\n state x\n param a = 0 in [0, 1), b = -5 in (-inf, 0]\n dx = x dt\n}")
    assert m.param("a").interval == Interval(Integer(0), Integer(1), True, False)
    assert m.param("b").interval == Interval(-sympy.oo, Integer(0), False, True)


def test_overrides_go_through_parameters():
    m = parse("model M {\n state x\n param a = 1 in (0, inf)\n dx = -a*x dt\n}", a=3.0)
    assert m.param_values["a"] == 3.0
    with pytest.raises(SpecError):
        parse("model M {\n state x\n param a = 1 in (0, inf)\n dx = -a*x dt\n}", a=-1.0)


# ------------------------------------------------------------------------------ AST and spans
def test_ast_spans():
    spec = parse_spec("model M {\n  state x\n  dx = -x^2 dt + a*b dW\n}\n")
    assert isinstance(spec, ast.Spec) and spec.name.name == "M"
    state, equation = spec.statements
    assert isinstance(state, ast.StateDecl)
    assert state.items[0].name.span == ast.Span(2, 9, 2, 10)
    assert isinstance(equation, ast.Equation)
    assert equation.lhs.span == ast.Span(3, 3, 3, 5)
    drift_term, noise_term = equation.rhs.left, equation.rhs.right
    assert drift_term.juxtaposed and noise_term.juxtaposed
    assert noise_term.span == ast.Span(3, 18, 3, 24)
    negated = drift_term.left
    assert isinstance(negated, ast.UnaryOp) and negated.operand.op == "^"
    assert spec.span.line == 1 and spec.span.end_line == 4


def test_parse_spec_keeps_numbers_as_text():
    spec = parse_spec("model M { state x; dx = 1_000.5e-3 dt }")
    number = spec.statements[1].rhs.left
    assert isinstance(number, ast.Number) and number.text == "1_000.5e-3"
