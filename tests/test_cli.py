"""The command line: `sdelang derive|compile|check`, exit statuses 0 / 1 / 2, errors on stderr."""
from __future__ import annotations

import subprocess
import sys
import types

import pytest
import sympy

import sdelang
from sdelang.cli import main
from sdelang.commands import common
from sdelang.commands import compile as compile_command
from sdelang.commands import derive as derive_command
from sdelang import parse

import spec_texts

OU = "# Ornstein-Uhlenbeck\n" + spec_texts.OU

LANGEVIN = """\
model DoubleWell {
    state x, y
    let U = (x^2 - 1)^2 + y^2 / 2
    density p = exp(-U)
    density wrong = exp(-x^2 - y^2)
    dx = 1/2 * grad(log(p))[0] dt + dW1
    dy = 1/2 * grad(log(p))[1] dt + dW2
    assert stationary p
}
"""

BAD = """\
model OU {
    state x
    param theta = 1.0
    dx = thetta * x dt + dW
}
"""


@pytest.fixture
def spec(tmp_path):
    def write(text: str, name: str = "model.sde") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("argv", [["--help"], ["derive", "--help"], ["compile", "--help"], ["check", "--help"]])
def test_help_exits_zero(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "usage: sdelang" in out


@pytest.mark.parametrize("argv", [
    ["frobnicate"], ["derive"], ["compile", "x.sde"], ["derive", "x.sde", "--format", "pdf"],
    ["derive", "x.sde", "--reverse", "--flow"], ["derive", "x.sde", "--param", "theta"],
    ["derive", "x.sde", "--param", "theta=abc"], ["derive", "x.sde", "--param", "theta=nan"],
    ["check", "x.sde", "--seed", "one"],
])
def test_bad_arguments_exit_two(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "error" in err


@pytest.mark.parametrize("text, expected", [
    ("theta=2", ("theta", 2)), ("theta=-2.5", ("theta", -2.5)), ("s = 1e-3", ("s", 0.001)),
])
def test_param_assignments_parse_as_numbers(text, expected):
    name, value = common.parse_param_assignment(text)
    assert (name, value) == expected and type(value) is type(expected[1])


def test_missing_spec_file_exits_two(capsys, tmp_path):
    code, out, err = run(capsys, "derive", str(tmp_path / "nope.sde"))
    assert code == 2 and out == "" and "nope.sde" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- derive
def test_derive_prints_sde_text_that_parses_back(capsys, spec):
    path = spec(OU)
    code, out, err = run(capsys, "derive", path)
    assert code == 0 and err == ""
    assert parse(out) == sdelang.load(path)


def test_param_override_reaches_the_output(capsys, spec):
    path = spec(OU)
    code, out, _ = run(capsys, "derive", path, "--param", "theta=2", "-p", "sigma=0.25")
    assert code == 0
    assert parse(out) == sdelang.load(path, theta=2, sigma=0.25)
    assert "param theta = 2 " in out and "param sigma = 0.25 " in out


@pytest.mark.parametrize("argv, fragment", [
    (["--param", "thetaa=2"], "did you mean 'theta'"),
    (["--param", "theta=-1"], "outside its interval"),
    (["--param", "theta=1", "--param", "theta=2"], "given twice"),
])
def test_bad_overrides_exit_two(capsys, spec, argv, fragment):
    code, out, err = run(capsys, "derive", spec(OU), *argv)
    assert code == 2 and out == "" and fragment in err


@pytest.mark.parametrize("fmt, fragment", [("latex", "\\begin{aligned}"), ("text", "model OU: Itô SDE")])
def test_derive_formats(capsys, spec, fmt, fragment):
    code, out, _ = run(capsys, "derive", spec(OU), "--format", fmt)
    assert code == 0 and fragment in out


def test_derive_kfp(capsys, spec):
    code, out, _ = run(capsys, "derive", spec(OU), "--kfp")
    assert code == 0 and out.startswith("∂p/∂t = ") and "grad(grad(p))" in out
    code, out, _ = run(capsys, "derive", spec(OU), "--kfp", "--format", "latex")
    assert code == 0 and out.startswith("\\frac{\\partial p}{\\partial t} = ")


def test_derive_to_stratonovich_round_trips(capsys, spec):
    code, out, _ = run(capsys, "derive", spec(LANGEVIN), "--to", "stratonovich")
    assert code == 0 and "calculus stratonovich" in out
    assert parse(out) == parse(LANGEVIN).to_stratonovich()


def test_derive_reverse(capsys, spec):
    path = spec(OU)
    code, out, _ = run(capsys, "derive", path, "--reverse")
    assert code == 0 and "score(x, 1 - s)" in out
    assert parse(out) == sdelang.load(path).reverse()


def test_derive_flow_with_exact_score(capsys, spec):
    path = spec(LANGEVIN)
    code, out, _ = run(capsys, "derive", path, "--flow", "--score", "p")
    assert code == 0 and "brownian" not in out
    assert parse(out) == sdelang.load(path).probability_flow(score="p")


@pytest.mark.parametrize("argv, fragment", [
    (["--reverse", "--score", "q"], "no density 'q'"),
    (["--score", "p"], "--score needs --reverse or --flow"),
])
def test_derive_score_errors(capsys, spec, argv, fragment):
    code, _, err = run(capsys, "derive", spec(LANGEVIN), *argv)
    assert code == 2 and fragment in err


# ---------------------------------------------------------------------------- bad specs
def test_bad_spec_prints_the_located_error_without_traceback(spec):
    path = spec(BAD, "ou.sde")
    proc = subprocess.run([sys.executable, "-m", "sdelang", "derive", path], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{path}:4:" in proc.stderr and "thetta" in proc.stderr and "did you mean 'theta'" in proc.stderr
    assert "^" in proc.stderr and "Traceback" not in proc.stderr


def test_a_derivation_the_model_does_not_admit_exits_one(capsys, spec, monkeypatch):
    def refuse(self, score=None, **options):
        raise sdelang.DerivationError("no reverse-time SDE for this model")

    monkeypatch.setattr(sdelang.Model, "reverse", refuse)
    code, out, err = run(capsys, "derive", spec(OU), "--reverse")
    assert code == 1 and out == "" and err == "sdelang derive: error: no reverse-time SDE for this model\n"


def test_an_inexpressible_model_exits_one(capsys, spec, monkeypatch):
    monkeypatch.setattr(sdelang.Model, "to_ito", lambda self: self.replace(drift=sympy.Matrix([sympy.cosh(self.states[0])])))
    code, out, err = run(capsys, "derive", spec(OU), "--to", "ito")
    assert code == 1 and out == "" and "cosh" in err


def test_unexpected_failure_is_one_line_unless_debugging(capsys, spec, monkeypatch):
    def boom(args):
        raise RuntimeError("the printer broke\nsecond line")

    monkeypatch.setattr(derive_command, "load_model", boom)
    monkeypatch.delenv("SDELANG_DEBUG", raising=False)
    code, out, err = run(capsys, "derive", "whatever.sde")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "RuntimeError: the printer broke" in err
    monkeypatch.setenv("SDELANG_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["derive", "whatever.sde"])


# ---------------------------------------------------------------------------- compile
def test_compile_unknown_backend_exits_two(capsys, spec):
    code, out, err = run(capsys, "compile", spec(OU), "--backend", "fortran")
    assert code == 2 and out == "" and "unknown backend 'fortran'" in err


def test_compile_writes_the_emitted_source(capsys, spec, tmp_path, monkeypatch):
    seen = {}

    def fake_emit(model, backend):
        seen["model"], seen["backend"] = model, backend
        return f"# {backend} code for {model.name}\n"

    monkeypatch.setattr(compile_command, "emit", fake_emit)
    code, out, _ = run(capsys, "compile", spec(OU), "--backend", "jax", "--param", "mu=0.5")
    assert code == 0 and out == "# jax code for OU\n" and seen["model"].param_values["mu"] == 0.5
    target = tmp_path / "ou_jax.py"
    code, out, _ = run(capsys, "compile", spec(OU), "--backend", "jax", "-o", str(target))
    assert code == 0 and out == "" and target.read_text() == "# jax code for OU\n"
    code, _, err = run(capsys, "compile", spec(OU), "--backend", "jax", "-o", str(tmp_path / "no" / "dir.py"))
    assert code == 2 and "cannot write" in err


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_compile_real_backends(capsys, spec, tmp_path, backend):
    pytest.importorskip(backend)
    expected = sdelang.emit(parse(OU), backend)
    target = tmp_path / f"ou_{backend}.py"
    code, _, err = run(capsys, "compile", spec(OU), "--backend", backend, "-o", str(target))
    assert code == 0, err
    assert target.read_text() == expected
    compile(expected, str(target), "exec")  # the emitted source is valid Python


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.py"
    common.write_atomically(str(target), "old\n")
    assert target.read_text() == "old\n"

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(common.os, "replace", failing_replace)
    with pytest.raises(OSError):
        common.write_atomically(str(target), "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py"]  # no temporary left behind


# ---------------------------------------------------------------------------- check
def test_check_holds_for_langevin(capsys, spec):
    code, out, _ = run(capsys, "check", spec(LANGEVIN))
    assert code == 0 and "stationary p: holds" in out


def test_check_fails_for_a_wrong_density(capsys, spec):
    code, out, _ = run(capsys, "check", spec(LANGEVIN), "--density", "wrong")
    assert code == 1
    assert "stationary p: holds" in out and "stationary wrong: FAILS" in out and "residual" in out


def test_check_undecided_counts_as_not_holding(capsys, spec, monkeypatch):
    class Undecided:
        holds, status, residual = False, "undecided", None

        def __str__(self):
            return "could not be simplified to 0"

    monkeypatch.setattr(sdelang.Model, "check_stationary", lambda self, p, **kw: Undecided())
    code, out, _ = run(capsys, "check", spec(LANGEVIN))
    assert code == 1 and "stationary p: UNDECIDED" in out and "could not be simplified" in out


def test_check_without_claims_has_nothing_to_do(capsys, spec):
    code, out, _ = run(capsys, "check", spec(OU))
    assert code == 0 and "nothing to check" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--density", "q"], "no density 'q'"),
    (["--plot", "x.png"], "--plot applies only with --numeric"),
])
def test_check_usage_errors(capsys, spec, argv, fragment):
    code, _, err = run(capsys, "check", spec(LANGEVIN), *argv)
    assert code == 2 and fragment in err


def test_check_numeric_absent_exits_two(capsys, spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "sdelang.check.numeric", None)  # as if not installed
    code, _, err = run(capsys, "check", spec(LANGEVIN), "--numeric")
    assert code == 2 and "numeric check not available" in err


@pytest.mark.parametrize("numeric_holds, code", [(True, 0), (False, 1)])
def test_check_numeric_calls_the_numeric_hook(capsys, spec, monkeypatch, numeric_holds, code):
    calls = []

    class Result:
        passed = numeric_holds  # the real NumericCheckResult says .passed

        def __str__(self):
            return "KS p-value 0.42"

    def run_numeric_check(model, density_name, *, backend, seed, plot):
        calls.append((model.name, density_name, backend, seed, plot))
        return Result()

    fake = types.ModuleType("sdelang.check.numeric")
    fake.run_numeric_check = run_numeric_check
    monkeypatch.setitem(sys.modules, "sdelang.check.numeric", fake)
    code_, out, _ = run(capsys, "check", spec(LANGEVIN), "--numeric", "--backend", "jax", "--seed", "7",
                        "--plot", "p.png")
    assert calls == [("DoubleWell", "p", "jax", 7, "p.png")]
    assert code_ == code
    assert f"stationary p (numeric): {'holds' if numeric_holds else 'FAILS'}" in out and "KS p-value 0.42" in out


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "sdelang", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"sdelang {sdelang.__version__}"
