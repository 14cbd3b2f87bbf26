"""The code generator core shared by every backend (sdelang.emit.source, .block, .kernel_code):
wrapped lines that still compile to the same code, common subexpressions (a let used twice) as
named temporaries, the embedded spec as a readable string that round-trips hostile text, one
header for both backends, steps that return y + Δ, and no framework import in emission code."""
from __future__ import annotations

import ast
import pathlib

import pytest
import sympy

import sdelang
from sdelang.emit import source
from sdelang.emit.block import Target, block_code
from sdelang.emit.embedded_spec import model_from_spec
from sdelang.emit.source import WIDTH, attribute_lines, python_string, wrap_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ["torch", "jax"]
STEP = {"torch": "_step", "jax": "euler_maruyama_step"}

LONG = """
model Long {
    state x, y
    param alpha = 0.5, beta_coefficient = 1.5, gamma_coefficient = 0.25, delta_coefficient = 2.0
    let shared = alpha * sin(x) * cos(y) + beta_coefficient * tanh(x * y)
    dx = (alpha * (x - y) + beta_coefficient * sin(x) * cos(y) + gamma_coefficient * exp(-x^2) + delta_coefficient * tanh(x + y) + shared) dt + shared * dW1
    dy = (gamma_coefficient * (y - x) + delta_coefficient * cos(x) * sin(y) + alpha * exp(-y^2) + beta_coefficient * tanh(x - y) - shared) dt + dW2
}
"""

LET_TWICE = """
model LetTwice {
    state x
    param a = 1.5
    let u = log(1 + a * x^2)
    dx = (u + sin(u)) dt + u dW
}
"""


def _emit(spec: str, backend: str) -> str:
    pytest.importorskip(backend)
    return sdelang.emit(sdelang.parse(spec), backend)


def _spec_block(src: str) -> range:
    """Line numbers (0-based) of the embedded spec literal."""
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "sdelang_spec" for t in node.targets):
            return range(node.lineno - 1, node.end_lineno)
    return range(0)


def _method(src: str, name: str) -> ast.FunctionDef:
    cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef))
    return next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name)


# ----------------------------------------------------------------- wrapping
def test_a_long_line_wraps_within_the_width_to_the_same_code():
    terms = " + ".join(f"theta_{i}*(mu_{i} - x_{i})*torch.exp(-t*{i})" for i in range(12))
    for line in (f"        _c0 = {terms}", f"        return torch.stack([{terms}, {terms}], dim=-1), y",
                 "    keyword_names = {" + ", ".join(f"'p{i}': 'p{i}'" for i in range(30)) + "}"):
        wrapped = wrap_line(line)
        assert len(wrapped) > 1 and all(len(w) <= WIDTH for w in wrapped)
        assert ast.dump(ast.parse("\n".join(wrapped).strip())) == ast.dump(ast.parse(line.strip()))


def test_a_line_that_cannot_be_wrapped_is_kept():
    line = "        x = " + "a" * 120
    assert wrap_line(line) == [line]


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_lines_fit_the_width_and_compile(backend):
    src = _emit(LONG, backend)
    spec = _spec_block(src)
    long = [(k, line) for k, line in enumerate(src.splitlines()) if len(line) > WIDTH and k not in spec]
    assert not long, long
    assert max(len(line) for line in src.splitlines() if line.startswith("        _c")) > 40
    compile(src, "<generated>", "exec")


def test_wrapped_torch_code_computes_the_formula():
    torch = pytest.importorskip("torch")
    module = sdelang.parse(LONG).compile("torch")
    y = torch.tensor([[0.3, -0.7], [1.1, 0.4]], dtype=torch.float64)
    x, v = y[:, 0], y[:, 1]
    a, b, g, d = 0.5, 1.5, 0.25, 2.0
    shared = a * torch.sin(x) * torch.cos(v) + b * torch.tanh(x * v)
    fx = a * (x - v) + b * torch.sin(x) * torch.cos(v) + g * torch.exp(-x ** 2) + d * torch.tanh(x + v) + shared
    fy = g * (v - x) + d * torch.cos(x) * torch.sin(v) + a * torch.exp(-v ** 2) + b * torch.tanh(x - v) - shared
    torch.testing.assert_close(module.f(torch.tensor(0.2), y), torch.stack([fx, fy], -1), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------- temporaries
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_let_used_twice_is_one_named_temporary(backend):
    src = _emit(LET_TWICE, backend)
    body = ast.unparse(_method(src, "drift" if backend == "jax" else "f"))
    temps = [line.strip() for line in body.splitlines() if line.strip().startswith("_c")]
    assert any("log(" in t for t in temps), body
    assert body.count("log(") == 1  # computed once, then used by name
    name = next(t.split(" = ")[0] for t in temps if "log(" in t)
    assert body.count(name) >= 3  # assigned, then u and sin(u)


def test_block_code_names_temporaries_and_outputs():
    class Plain(Target):
        def param_value(self, name, local):
            return f"P[{name!r}]"

        def time_setup(self, model, used, has_nets):
            from sdelang.emit.block import TimeSetup
            return TimeSetup(used=used)

        def broadcast(self, model, code):
            return f"B({code})"

        def stack(self, codes, axis):
            return f"S({', '.join(codes)})"

    from sdelang.emit.names import name_table
    from sdelang.emit.printer import ArrayExprPrinter

    class NumpyPrinter(ArrayExprPrinter):
        namespace = "np"

    Plain.printer_class = NumpyPrinter
    model = sdelang.parse(LET_TWICE)
    x, = model.states
    u = sympy.log(1 + sympy.Symbol("a") * x ** 2)
    code = block_code(model, name_table(model), [u + sympy.sin(u), u], Plain())
    assert code.lines[0].strip() == "a = P['a']", code.lines
    assert any(line.strip().startswith("_c0 = np.log(") for line in code.lines), code.lines
    assert all("np.log" not in out for out in code.outputs)


# ----------------------------------------------------------------- the embedded spec
HOSTILE = [
    "", '"', '""', '"""', "x'''y", 'end"', "a\\b", "\\", "\\n not a newline", 'q"""\\"""\\',
    "tab\there\r\nwindows\rmac", "nul\x00 bell\x07 esc\x1b", "bidi \u202e evil \u2066", "line\u2028sep",
    "# non-ASCII comment: θ ∈ (0, ∞), Ornstein–Uhlenbeck, 日本語 😀", "lone \ud800 surrogate",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_the_spec_literal_round_trips_hostile_text(text):
    literal = python_string(text)
    assert ast.literal_eval(literal) == text
    namespace = {}
    exec(compile("class C:\n" + "\n".join(attribute_lines([("sdelang_spec", text)])) + "\n", "<c>", "exec"), namespace)
    assert namespace["C"].sdelang_spec == text


def test_the_spec_literal_reads_like_the_text():
    text = "model OU {\n    state x\n    dx = -x dt + dW\n}\n"
    assert python_string(text) == '"""\\\n' + text + '"""'
    assert python_string(None) == "None"


def test_other_attributes_stay_one_line_reprs():
    assert attribute_lines([("model_name", "A\nimport os")]) == ["    model_name = 'A\\nimport os'"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_generated_file_rebuilds_its_model_from_the_embedded_text(backend, tmp_path):
    pytest.importorskip(backend)
    vp = sdelang.load(ROOT / "examples" / "vp.sde")
    for model in (sdelang.parse(LONG), vp, vp.reverse(), vp.probability_flow()):
        src = sdelang.emit(model, backend)
        path = tmp_path / f"{backend}_generated.py"
        path.write_text(src, encoding="utf-8")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
        spec = next(ast.literal_eval(n.value) for n in cls.body
                    if isinstance(n, ast.Assign) and n.targets[0].id == "sdelang_spec")
        assert spec == model.to_sde()
        assert model_from_spec(spec, "test") == sdelang.parse(model.to_sde())


# ----------------------------------------------------------------- one preamble
def test_both_backends_write_the_shared_header(monkeypatch):
    for backend in BACKENDS:
        pytest.importorskip(backend)
    monkeypatch.setattr(source, "GENERATED_BY", "# MARK {backend} {name} {kind}")
    model = sdelang.parse(LET_TWICE)
    heads = {}
    for backend in BACKENDS:
        src = sdelang.emit(model, backend)
        assert src.startswith(f"# MARK {backend} LetTwice ito SDE\n")
        heads[backend] = src.split("\n\nimport")[0].replace(backend, "BACKEND")
    assert heads["torch"] == heads["jax"]


def test_emission_code_imports_no_framework():
    files = list((ROOT / "sdelang" / "emit").glob("*.py"))
    files += list((ROOT / "backends").glob("sdelang_*/codegen*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n.split(".")[0] in {"torch", "jax", "jaxlib", "equinox", "diffrax"} for n in names), path


# ----------------------------------------------------------------- y + Δ
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", [LONG, LET_TWICE, "model D {\n state x\n dx = -x dt\n}\n",
                                  "model E {\n state x[d]\n param d: int = 3\n dx = -x/2 dt + dW\n}\n"])
def test_steps_return_y_plus_the_increment(backend, spec):
    step = _method(_emit(spec, backend), STEP[backend])
    ret = step.body[-1]
    assert isinstance(ret, ast.Return) and isinstance(ret.value, ast.BinOp) and isinstance(ret.value.op, ast.Add)
    assert isinstance(ret.value.left, ast.Name) and ret.value.left.id == "y"
    assert "y" not in {n.id for n in ast.walk(ret.value.right) if isinstance(n, ast.Name)}
