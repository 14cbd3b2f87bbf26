"""Every malformed spec raises SpecError with path, line, column, the source line, a caret and a
message that says what is wrong and what was expected."""
from __future__ import annotations

import pytest

import sdelang
from sdelang import SpecError
from sdelang.loader import parse

PATH = "bad.sde"


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, path=PATH)
    return info.value


def model(*lines: str) -> str:
    """A spec whose statement lines start at line 2, indented by 4 spaces (column 5)."""
    return "model M {\n" + "".join(f"    {line}\n" for line in lines) + "}\n"


def check(text: str, line: int, column: int, *fragments: str) -> SpecError:
    err = error_of(text)
    assert (err.path, err.line, err.column) == (PATH, line, column), str(err)
    for fragment in fragments:
        assert fragment in err.message, str(err)
    rendered = str(err).splitlines()
    assert rendered[0] == f"{PATH}:{line}:{column}: {err.message}"
    source_line = text.splitlines()[line - 1] if text.splitlines() else ""
    assert err.source_line == source_line
    assert rendered[2] == "    " + " " * (column - 1) + "^"  # the caret under the column
    return err


# ------------------------------------------------------------------------------ syntax
def test_empty_text():
    check("", 1, 1, "empty", "model NAME")


def test_whitespace_and_comments_only():
    err = error_of("   \n\t\n")
    assert (err.line, err.column) == (1, 1) and "empty" in err.message
    err = error_of("# just a comment\n\n  # another\n")
    assert (err.line, err.column) == (1, 1) and "empty" in err.message


def test_not_a_model():
    check("state x\n", 1, 1, "unexpected 'state'", "'model'")


def test_missing_closing_brace():
    check("model M {\n    state x\n    dx = -x dt\n", 3, 15, "missing '}'")


def test_unclosed_parenthesis_points_at_it():
    check(model("state x", "dx = (1 - x dt + dW"), 3, 10, "'(' is never closed")


def test_unclosed_parenthesis_across_lines():
    check(model("state x", "param a = 1", "dx = a * (1 - x dt", "dy = dW"), 4, 14, "'(' is never closed")


def test_unmatched_closing_bracket():
    check(model("state x", "dx = -x) dt"), 3, 12, "unmatched ')'")


def test_unexpected_token_says_what_was_expected():
    err = check(model("state x", "dx = * x dt"), 3, 10, "unexpected '*'", "expected one of", "a name", "a number")
    assert "'('" in err.message


def test_unexpected_end_of_line():
    check(model("state x", "dx = -x dt +"), 3, 17, "unexpected end of line", "expected")


def test_string_literals_are_rejected():
    check(model("state x", 'let s = "abc"'), 3, 13, "string literals")
    check(model("state x", "let s = 'abc'"), 3, 13, "string literals")


def test_unexpected_character():
    check(model("state x", "dx = $x dt"), 3, 10, "unexpected character '$'")


def test_text_after_the_model():
    check("model M { state x }\nmodel N { state y }\n", 2, 1, "unexpected 'model'")


def test_reserved_word_as_statement_name():
    check(model("state model"), 2, 11, "reserved")


# ------------------------------------------------------------------------------ names
def test_unknown_name_with_suggestion():
    text = model("state x", "param theta = 1.0 in (0, inf)", "dx = -thetta * x dt + dW")
    err = check(text, 4, 11, "unknown name 'thetta' (did you mean 'theta'?)")
    assert str(err).startswith("bad.sde:4:11: unknown name 'thetta' (did you mean 'theta'?)")


def test_unknown_name_without_suggestion():
    check(model("state x", "dx = -qqq dt"), 3, 11, "unknown name 'qqq'")


def test_e_is_not_a_constant():
    check(model("state x", "dx = e^x dt"), 3, 10, "unknown name 'e'", "exp(")


def test_unknown_function_with_suggestion():
    check(model("state x", "dx = expp(x) dt"), 3, 10, "unknown function 'expp' (did you mean 'exp'?)")


def test_duplicate_names():
    check(model("state x", "param x = 1"), 3, 11, "'x' is already declared as a state (line 2)")
    check(model("state x", "let U = x", "density U = exp(-x)"), 4, 13, "already declared as a let")
    check(model("state x, x"), 2, 14, "already declared")


def test_time_name_clash():
    check(model("state x", "param t = 1"), 3, 11, "'t' is the model's time", "time s in [0, 1]")


def test_dunder_names():
    check(model("state __import__"), 2, 11, "'__'")
    check(model("state x", "let __class__ = 1"), 3, 9, "'__'")


@pytest.mark.parametrize(
    "statement, column, fragment",
    [
        ("param exp = 1", 11, "built-in function"),
        ("param grad = 1", 11, "built-in function"),
        ("param pi = 3", 11, "reserved word"),
        ("param inf = 3", 11, "reserved word"),
        ("param dt = 1", 11, "time differential"),
        ("param dx = 1", 11, "differential of state 'x'"),
        ("param dW = 1", 11, "Brownian increments"),
        ("param self = 1", 11, "generated code"),
        ("param time = 1", 11, "reserved word"),
    ],
)
def test_reserved_names(statement, column, fragment):
    check(model("state x", statement), 3, column, fragment)


def test_let_used_before_its_definition():
    check(model("state x", "let U = V + 1", "let V = x"), 3, 13, "'V' is used before its definition (line 4)")


def test_brownian_used_as_a_value():
    check(model("state x", "brownian B", "dx = B dt"), 4, 10, "'B' is a Brownian motion", "dB")


def test_parameter_called_as_a_function():
    check(model("state x", "param a = 1", "dx = a(x) dt"), 4, 10, "'a' is a parameter, not a function")


def test_differential_outside_an_equation():
    check(model("state x", "let g = x dt", "dx = g"), 3, 15, "'dt' cannot appear in let 'g'")


def test_inf_outside_an_interval():
    check(model("state x", "dx = inf dt"), 3, 10, "'inf' may only end an interval")


# ------------------------------------------------------------------------------ equations
def test_two_equations_for_one_state():
    check(model("state x", "dx = -x dt", "dx = dW"), 4, 5, "second equation for state 'x' (the first is at line 3)")


def test_equation_for_a_non_state():
    check(model("state x", "dz = -x dt"), 3, 5, "equation for 'dz', but there is no state 'z'")


def test_equation_with_a_typo_in_its_state():
    check(model("state x1", "dx2 = dt"), 3, 5, "no state 'x2'", "did you mean 'dx1'?")


def test_assignment_is_not_a_statement():
    check(model("state x", "y = 2"), 3, 5, "'y = ...' is not a statement", "let y = ...")


@pytest.mark.parametrize(
    "rhs, column, fragment",
    [
        ("x", 10, "the term 'x' has no dt or dW"),
        ("-x dt + x", 18, "the term 'x' has no dt or dW"),
        ("(1 + dt) * x", 11, "the term '1' has no dt or dW"),
        ("x dt^2", 12, "'dt^2' takes a power of dt"),
        ("dW * dW", 10, "multiplies dW by dW"),
        ("x dt * dW", 10, "multiplies dt by dW"),
        ("exp(dW)", 14, "dW cannot appear inside exp(...)"),
        ("sqrt(dt)", 15, "dt cannot appear inside sqrt(...)"),
        ("x / dt", 10, "divides by dt"),
        ("2^dW", 10, "takes a power of dW"),
    ],
)
def test_nonlinear_or_inhomogeneous_equations(rhs, column, fragment):
    check(model("state x", f"dx = {rhs}"), 3, column, fragment)


def test_elementwise_model_has_one_brownian():
    check(model("state x[3]", "dx = dW1 + dW2"), 3, 16, "one d-dimensional Brownian motion")


def test_elementwise_model_has_one_state():
    check(model("state x[3], y"), 2, 17, "exactly one state")


# ------------------------------------------------------------------------------ parameters
def test_default_outside_interval():
    check(model("state x", "param a = -1 in (0, inf)"), 3, 15, "outside its interval (0, inf)")


def test_int_parameter_with_fractional_default():
    check(model("state x", "param n: int = 2.5"), 3, 20, "declared ': int'", "not an integer")


def test_unknown_parameter_type():
    check(model("state x", "param n: float = 2"), 3, 14, "unknown parameter type 'float'")


def test_default_must_be_a_number():
    check(model("state x", "param a = x"), 3, 15, "cannot use a state")


def test_empty_interval():
    check(model("state x", "param a = 1 in (2, 1)"), 3, 20, "is empty")


def test_vector_size_must_be_an_int_parameter():
    check(model("state x[d]", "param d = 2"), 2, 13, "': int' parameter")
    check(model("state x[0]"), 2, 13, "positive integer")


def test_time_interval_must_be_increasing():
    check(model("time t in [1, 0]", "state x"), 2, 15, "is empty")


# ------------------------------------------------------------------------------ calls, values
def test_builtin_arity():
    check(model("state x", "dx = exp(x, 1) dt"), 3, 10, "'exp' takes 1 argument, got 2")
    check(model("state x, y", "dx = dot(grad(x)) dt"), 3, 10, "'dot' takes 2 arguments, got 1")


def test_let_function_arity():
    check(model("state x", "let g(u, v) = u * v", "dx = g(x) dt"), 4, 10, "'g' takes 2 arguments, got 1")


def test_let_function_used_without_call():
    check(model("state x", "let g(u) = u", "dx = g dt"), 4, 10, "'g' is a function of 1 argument")


def test_net_arity_and_arguments():
    check(model("state x, y", "net f(x, y, t)", "dx = f(x, t)[0] dt"), 4, 10,
          "net 'f' takes the states in declared order and then the time", "f(x, y, t)")
    check(model("state x, y", "net f(x, y, t)", "dx = f(y, x, t)[0] dt"), 4, 12, "must be the state 'x'")
    check(model("state x, y", "net f(x, t)"), 3, 5, "must take the states and the time")


def test_index_out_of_range():
    check(model("state x, y", "dx = grad(x*y)[2] dt"), 3, 20, "index 2 is out of range for a vector of length 2")


def test_index_must_be_an_integer():
    check(model("state x, y", "dx = grad(x*y)[0.5] dt"), 3, 20, "an index must be an integer")


def test_vector_where_a_number_is_needed():
    check(model("state x, y", "dx = grad(x*y) dt"), 3, 10, "vector of length 2 where a number is needed")


def test_indexing_a_number():
    check(model("state x, y", "dx = x[0] dt"), 3, 10, "cannot be indexed")


def test_division_by_zero():
    check(model("state x", "dx = x / (x - x) dt"), 3, 15, "division by zero")  # at 'x - x'
    check(model("state x", "dx = log(0) dt"), 3, 10, "undefined")


def test_huge_numbers():
    check(model("state x", "dx = 9^9^9 dt"), 3, 10, "too large")
    check(model("state x", "dx = 1e999 dt"), 3, 10, "too large for double precision")


def test_elementwise_model_rejects_sums_over_components():
    check(model("state x[2]", "dx = dot(x, x) dt"), 3, 10, "not available in an elementwise model")


# ------------------------------------------------------------------------------ laws, asserts, calculus
def test_assert_on_undeclared_density():
    check(model("state x", "density p = exp(-x^2)", "assert stationary q"), 4, 23, "needs a declared density")
    check(model("state x", "density pp = exp(-x^2)", "assert stationary p"), 4, 23, "did you mean 'pp'?")
    check(model("state x", "let U = x", "assert stationary U"), 4, 23, "'U' is a let")


def test_unknown_assertion():
    check(model("state x", "density p = 1", "assert ergodic p"), 4, 12, "unknown assertion 'ergodic'")


def test_unknown_calculus():
    check(model("state x", "calculus stratonovitch"), 3, 14, "did you mean 'stratonovich'?")


def test_law_errors():
    check(model("state x", "init y ~ Normal(0, 1)"), 3, 10, "names no state")
    check(model("state x", "init x ~ Normal(0)"), 3, 14, "Normal takes 2 arguments")
    check(model("state x", "init x ~ Gauss(0, 1)"), 3, 14, "unknown distribution 'Gauss'")
    check(model("state x", "init x ~ Normal(0, -1)"), 3, 24, "must be positive")
    check(model("state x", "init x ~ data", "init x ~ data"), 4, 5, "second 'init' for state 'x'")


def test_model_without_states():
    check("model Empty {\n}\n", 1, 7, "declares no state")


# ------------------------------------------------------------------------------ files
def test_load_reports_the_path(tmp_path):
    path = tmp_path / "ou.sde"
    path.write_text(model("state x", "param theta = 1", "dx = -thetta * x dt"))
    with pytest.raises(SpecError) as info:
        sdelang.load(path)
    err = info.value
    assert err.path == str(path) and (err.line, err.column) == (4, 11)
    assert str(err).startswith(f"{path}:4:11: unknown name 'thetta' (did you mean 'theta'?)")


def test_binary_file(tmp_path):
    path = tmp_path / "blob.sde"
    path.write_bytes(b"\x00\x01\x02model")
    with pytest.raises(SpecError, match="binary"):
        sdelang.load(path)


def test_non_text_argument():
    with pytest.raises(SpecError):
        parse(b"model M { state x }")  # type: ignore[arg-type]


OVERRIDDEN = """model M {
    time t in [0, T]
    state x[d]
    param d: int = 2
    param T = 1.0 in (0, inf)
    param s = 0.5
    dx = -x dt + dW
    init x ~ Normal(0, s)
}"""


@pytest.mark.parametrize(
    "override, line, fragment",
    [
        ({"d": 0}, 4, "at least 1"),
        ({"d": 2.5}, 4, ": int"),
        ({"T": -1.0}, 5, "outside its interval"),
        ({"s": 0.0}, 6, "must be positive"),
    ],
)
def test_overrides_are_checked_like_literal_values(tmp_path, override, line, fragment):
    """An override gets the checks a literal value gets, located at the parameter's declaration;
    the model it would give cannot be printed and parsed back otherwise."""
    path = tmp_path / "m.sde"
    path.write_text(OVERRIDDEN)
    with pytest.raises(SpecError) as info:
        sdelang.load(path, **override)
    err = info.value
    assert err.path == str(path) and err.line == line and err.column == 11
    assert fragment in err.message and "^" in str(err)


def test_overridden_time_interval_must_not_be_empty():
    m = OVERRIDDEN.replace("in (0, inf)", "")
    with pytest.raises(SpecError, match="empty"):
        sdelang.parse(m, T=0.0)
    assert sdelang.parse(m, T=3.0).param_values["T"] == 3.0
