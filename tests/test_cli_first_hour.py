"""Issue 16, "the first hour of a user": the CLI's plotting options and messages, standard input,
the printed KFP and derived models, signed residual values, and the main job's report."""
from __future__ import annotations

import importlib.util
import io
import os
import sys
import types

import pytest
import sympy

import sdelang
from sdelang import parse
from sdelang.cli import main
from sdelang.derive.kfp import kfp_rhs
from sdelang.derive.stationarity import FAILS, StationarityResult

from spec_texts import HESTON, OU

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LANGEVIN = """\
model DoubleWell {
    state x, y
    let U = (x^2 - 1)^2 + y^2 / 2
    density p = exp(-U)
    dx = 1/2 * grad(log(p))[0] dt + dW1
    dy = 1/2 * grad(log(p))[1] dt + dW2
    assert stationary p
}
"""


NEURAL = """\
model NeuralODE {
    state x[d]
    param d: int = 2
    net f(x, t)
    dx = f(x, t) dt
}
"""


@pytest.fixture
def spec(tmp_path):
    def write(text: str, name: str = "model.sde") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def run(capsys, *argv, stdin: str = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(stdin.encode())))
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------ bare sdelang, -V, standard input
def test_bare_sdelang_prints_the_overview_and_V_the_version(capsys):
    code, out, err = run(capsys)
    assert code == 0 and err == "" and out.startswith("usage: sdelang")
    assert all(name in out for name in ("derive", "compile", "check"))
    code, out, _ = run(capsys, "-V")
    assert code == 0 and out.strip() == f"sdelang {sdelang.__version__}"


@pytest.mark.parametrize("argv", [["derive", "-"], ["compile", "-", "--backend", "torch"], ["check", "-"]])
def test_dash_reads_the_spec_from_standard_input(capsys, monkeypatch, argv):
    code, out, err = run(capsys, *argv, stdin=LANGEVIN, monkeypatch=monkeypatch)
    assert code == 0 and err == ""
    assert {"derive": "model DoubleWell {", "compile": "class DoubleWell",
            "check": "stationary p: holds"}[argv[0]] in out


def test_a_bad_spec_on_standard_input_is_named_stdin_with_line_and_column(capsys, monkeypatch):
    code, out, err = run(capsys, "derive", "-", stdin=OU.replace("theta * (mu", "thetta * (mu"),
                         monkeypatch=monkeypatch)
    assert code == 2 and out == ""
    assert err.startswith("<stdin>:6:10: unknown name 'thetta' (did you mean 'theta'?)")


# ------------------------------------------------------------------ check: plots and messages
def _fake_numeric(monkeypatch, calls):
    class Result:
        passed = True

        def __str__(self):
            return "report"

    def run_numeric_check(model, density_name, *, backend, seed, plot):
        calls.append(plot)
        return Result()

    fake = types.ModuleType("sdelang.check.numeric")
    fake.run_numeric_check = run_numeric_check
    monkeypatch.setitem(sys.modules, "sdelang.check.numeric", fake)


@pytest.mark.parametrize("extra, expected", [
    ([], False),                                   # no picture unless asked for
    (["--no-plot"], False),
    (["--plot"], "{spec}.stationarity.png"),       # next to the spec
    (["--plot", "pic.png"], "pic.png"),
])
def test_check_numeric_writes_a_plot_only_when_asked(capsys, spec, monkeypatch, extra, expected):
    calls = []
    _fake_numeric(monkeypatch, calls)
    path = spec(LANGEVIN)
    code, _, _ = run(capsys, "check", path, "--numeric", *extra)
    assert code == 0 and calls == [expected.format(spec=path) if isinstance(expected, str) else expected]


def test_check_plot_of_standard_input_is_named_after_the_model(capsys, monkeypatch):
    calls = []
    _fake_numeric(monkeypatch, calls)
    code, _, _ = run(capsys, "check", "-", "--numeric", "--plot", stdin=LANGEVIN, monkeypatch=monkeypatch)
    assert code == 0 and calls == ["DoubleWell.stationarity.png"]


def test_check_help_says_when_a_plot_is_written(capsys):
    assert main(["check", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--plot [PATH]" in text and "--no-plot" in text and "Without --plot no file is written" in text


@pytest.mark.parametrize("argv, message", [
    (["--plot", "x.png"], "--plot applies only with --numeric"),
    (["--seed", "3", "--backend", "jax"], "--backend and --seed apply only with --numeric"),
])
def test_check_options_without_numeric_are_refused_in_english(capsys, spec, argv, message):
    code, _, err = run(capsys, "check", spec(LANGEVIN), *argv)
    assert code == 2 and message in err


def test_check_with_nothing_to_check_says_what_could_be_checked(capsys, spec):
    code, out, _ = run(capsys, "check", spec(OU))
    assert code == 0 and "nothing to check" in out
    assert "density p = ..." in out and "assert stationary p" in out and "--stationary" in out


# ------------------------------------------------------------------ residual values with their sign
def test_failing_check_shows_residual_values_with_their_sign():
    x = sympy.Symbol("x")
    model = parse(OU)
    r = model.check_stationary(sympy.exp(-x ** 2))  # wrong variance: residual 1/2 - 2 x^2 ... changes sign
    assert r.status == FAILS and len(r.spot_checks) >= 3
    symbols = {s.name: s for s in r.residual.free_symbols}
    for point, value in r.spot_checks:
        exact = float(r.residual.subs({symbols[k]: v for k, v in point.items() if k in symbols}))
        assert value == pytest.approx(exact, rel=1e-9)
    shown = r.spot_checks[:3]
    assert any(value < 0 for _, value in shown), "the seed should give a negative residual among the shown"
    for point, value in shown:
        assert f"x={point['x']:.4g} -> {value:.4g}" in str(r)


def test_failing_check_without_points_has_no_empty_example():
    x = sympy.Symbol("x")
    r = StationarityResult(model_name="M", density=sympy.exp(-x ** 2), residual=x, status=FAILS,
                           method="test")
    assert "e.g. at" not in str(r) and "at ." not in str(r)


# ------------------------------------------------------------------ printing
@pytest.mark.parametrize("fmt", ["sde", "text", "latex"])
def test_kfp_is_not_raw_sympy_in_any_format(capsys, spec, fmt):
    code, out, _ = run(capsys, "derive", spec(OU), "--kfp", "--format", fmt)
    assert code == 0
    assert "Derivative(" not in out and "**" not in out and "p(x, t)" not in out
    assert out.startswith({"sde": "∂p/∂t = ", "text": "∂p/∂t = ",
                           "latex": r"\frac{\partial p}{\partial t} = "}[fmt])
    assert {"sde": "grad(grad(p))", "text": "∂²p/∂x²", "latex": r"\frac{\partial^{2} p}{\partial x^{2}}"}[fmt] in out


PROBES = {  # the model's declarations, p a concrete density, and the printed right-hand side as a drift
    "OU": ("model P {\n    state x\n    param theta = 1.0\n    param mu = 0.0\n    param sigma = 0.5\n"
           "    let p = exp(-x^2 + x/3)\n    dx = {rhs} dt\n}\n"),
    "Heston": ("model P {\n    state S, v\n    param mu = 0.05, kappa = 2.0, theta = 0.04, xi = 0.3, rho = -0.7\n"
               "    let p = exp(-S^2 - v^2 + S*v/4)\n    dS = {rhs} dt\n    dv = 0 dt\n}\n"),
}


@pytest.mark.parametrize("text", [OU, HESTON], ids=["OU", "Heston"])
def test_kfp_in_sde_style_parses_back_to_the_kfp(capsys, spec, text):
    """The printed right-hand side, read by the parser with p a concrete density, is the KFP
    right-hand side at that density."""
    code, out, _ = run(capsys, "derive", spec(text), "--kfp")
    assert code == 0
    rhs = out.split(" = ", 1)[1].strip()
    model = parse(text)
    probe = PROBES[model.name]
    printed = parse(probe.replace("{rhs}", f"({rhs})")).drift[0]
    p = parse(probe.replace("{rhs}", "p")).drift[0]
    assert sympy.simplify(printed - kfp_rhs(model, p)) == 0


def test_kfp_of_a_net_model_calls_the_net_at_x_with_component_i(capsys, spec):
    for fmt, call in (("sde", "f(x, t)[i]"), ("text", "f(x, t)[i]"), ("latex", r"f\left(x, t\right)_{i}")):
        code, out, _ = run(capsys, "derive", spec(NEURAL), "--kfp", "--format", fmt)
        assert code == 0 and call in out and "x[i], t" not in out and "[0]" not in out and "_{0}" not in out


def test_latex_of_a_flow_writes_a_one_state_score_without_an_index(capsys, spec):
    code, out, _ = run(capsys, "derive", spec(OU), "--flow", "--format", "latex")
    assert code == 0 and r"\operatorname{score}\left(x, t\right)" in out and "_{0}" not in out
    code, out, _ = run(capsys, "derive", spec(LANGEVIN), "--flow", "--format", "latex")
    assert code == 0 and r"\operatorname{score}\left(x, y, t\right)_{1}" in out


def test_flow_converted_to_stratonovich_has_no_calculus_line(capsys, spec):
    gbm = "model G {\n    state S\n    param sigma = 0.5\n    dS = S dt + sigma * S dW\n    calculus stratonovich\n}\n"
    code, out, _ = run(capsys, "derive", spec(gbm), "--flow", "--to", "stratonovich")
    assert code == 0 and "calculus" not in out
    assert parse(out) == parse(gbm).probability_flow()


def test_simple_coefficients_are_printed_in_their_short_form(capsys, spec):
    """Heston's D_vv = xi^2 v (rho^2 + 1 - rho^2) prints as v*xi^2, not as a sum of products."""
    code, out, _ = run(capsys, "derive", spec(HESTON), "--kfp")
    assert code == 0 and "v*xi^2*grad(grad(p)[1])[1]/2" in out and "1 - rho^2" not in out
    drift = "model D {\n    state y\n    param r = 0.3\n    dy = (r^2*y/2 + y*(1 - r^2)/2) * (-1) dt + dW\n}\n"
    code, out, _ = run(capsys, "derive", spec(drift))
    assert code == 0 and "dy = (-y/2) dt + dW" in out
    assert parse(out) == parse(drift)


# ------------------------------------------------------------------ the main job
def _main_job():
    path = os.path.join(ROOT, "examples", "langevin_stationarity.py")
    module_spec = importlib.util.spec_from_file_location("langevin_stationarity_main_job", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_main_job_shows_progress_explains_its_columns_and_ends_with_a_verdict(tmp_path, monkeypatch, capsys):
    import sdelang.check.numeric as numeric

    def fake_check(model, density, *, backend, seed, plot, n):
        if plot:
            with open(plot, "wb") as fh:
                fh.write(b"png")
        return types.SimpleNamespace(passed=True, ks_min_p=0.5, energy_p=0.5, n=n, dt=0.01, horizon=5.0,
                                     sampler="exact", elapsed=0.1, plot_path=plot or None)

    monkeypatch.setattr(numeric, "run_numeric_check", fake_check)
    monkeypatch.chdir(tmp_path)
    job = _main_job()
    assert job.main(["--backends", "torch", "jax", "--n", "10"]) == 0
    out, err = capsys.readouterr()
    assert "[1/6]" in err and "[6/6]" in err and "DoubleWell (jax): symbolic holds, numeric passed" in err
    for column in ("KS min p", "energy p", "symbolic", "numeric", "sampler"):
        assert any(line.strip().startswith(column + " ") for line in out.split("Columns:")[1].splitlines())
    assert out.rstrip().splitlines()[-1] == "6 of 6 stationary: proved and not rejected by simulation"
    figures = sorted(os.listdir(tmp_path / "sdelang-figures"))  # the default folder, in the working directory
    assert figures == ["Banana.stationarity.png", "DoubleWell.stationarity.png",
                       "PreconditionedLangevin.stationarity.png"]
    assert not any(name.endswith(".png") for name in os.listdir(os.path.join(ROOT, "examples")))


def test_main_job_figures_folder_is_an_option_and_a_failure_is_named(tmp_path, monkeypatch, capsys):
    import sdelang.check.numeric as numeric

    def fake_check(model, density, *, backend, seed, plot, n):
        return types.SimpleNamespace(passed=model.name != "Banana", ks_min_p=0.5, energy_p=1e-9, n=n, dt=0.01,
                                     horizon=5.0, sampler="exact", elapsed=0.1, plot_path=None)

    monkeypatch.setattr(numeric, "run_numeric_check", fake_check)
    monkeypatch.chdir(tmp_path)
    job = _main_job()
    assert job.main(["--backends", "torch", "--no-figures"]) == 1
    out, _ = capsys.readouterr()
    assert not (tmp_path / "sdelang-figures").exists()
    assert out.rstrip().splitlines()[-1].startswith("2 of 3 stationary: proved and not rejected by simulation; "
                                                    "NOT: Banana (torch): symbolic holds, numeric FAILED")


def test_stationary_density_as_text_uses_the_language_powers(capsys, spec):
    code, out, _ = run(capsys, "derive", spec(OU), "--stationary", "--format", "text")
    assert code == 0 and out.startswith("p(x) ∝ exp(") and "^2" in out and "**" not in out


def test_kfp_of_a_model_with_a_symbol_called_p_names_the_density_otherwise(capsys, spec):
    code, out, _ = run(capsys, "derive", spec("model A {\n    state p\n    dp = -p dt + dW\n}\n"), "--kfp")
    assert code == 0 and out.startswith("∂P/∂t = ") and "grad(P)" in out
