"""The front end (parser, Model, printers, `sdelang derive`) never imports torch or jax, and the
CLI answers."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from spec_texts import HESTON

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "torchsde", "torchdiffeq", "jax", "jaxlib", "diffrax", "equinox", "lineax")


LANGEVIN = """\
model DoubleWell {
    state x, y
    density p = exp(-(x^2 - 1)^2 - y^2 / 2)
    dx = 1/2 * grad(log(p))[0] dt + dW1
    dy = 1/2 * grad(log(p))[1] dt + dW2
    assert stationary p
}
"""


_REPORT_HEAVY = textwrap.dedent(
    f"""
    import sys
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    print("HEAVY:" + ",".join(heavy))
    """
)


def _run_python(code: str, cwd: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _heavy_modules(stdout: str) -> list:
    line = [l for l in stdout.splitlines() if l.startswith("HEAVY:")][-1]
    return [m for m in line[len("HEAVY:"):].split(",") if m]


def test_importing_the_front_end_and_printing_loads_no_framework(tmp_path):
    code = textwrap.dedent(
        """
        import sympy, sdelang, sdelang.cli, sdelang.printers
        from sdelang.model import Model
        x, W = sympy.symbols("x W")
        m = Model("OU", (x,), sympy.Matrix([-x]), sympy.Matrix([[1]]), brownians=(W,))
        m.to_sde(); m.to_latex(); str(m)
        sdelang.available_backends()
        """
    ) + _REPORT_HEAVY
    assert _heavy_modules(_run_python(code, str(tmp_path))) == []


def test_parse_print_and_cli_derive_load_no_framework(tmp_path):
    spec = tmp_path / "heston.sde"
    spec.write_text(HESTON)
    langevin = tmp_path / "langevin.sde"
    langevin.write_text(LANGEVIN)
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        import sdelang
        m = sdelang.parse({HESTON!r})
        m.to_sde(); m.to_latex(); str(m)
        from sdelang.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["derive", {str(spec)!r}], ["derive", {str(spec)!r}, "--format", "latex"],
                         ["derive", {str(spec)!r}, "--kfp"], ["derive", {str(spec)!r}, "--reverse"],
                         ["derive", {str(spec)!r}, "--flow"], ["derive", {str(spec)!r}, "--to", "stratonovich"],
                         ["check", {str(spec)!r}], ["check", {str(langevin)!r}]):
                main(argv)
        """
    ) + _REPORT_HEAVY
    assert _heavy_modules(_run_python(code, str(tmp_path))) == []


def test_derive_heston_from_the_command_line(tmp_path):
    """``sdelang derive`` answers in a fresh process (its latency is measured in
    benchmarks/cli_latency.py, never asserted: a timing belongs in a benchmark)."""
    spec = os.path.join(ROOT, "examples", "heston.sde")
    if not os.path.exists(spec):
        spec = str(tmp_path / "heston.sde")
        with open(spec, "w") as fh:
            fh.write(HESTON)
    proc = subprocess.run([sys.executable, "-m", "sdelang", "derive", spec], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "model Heston" in proc.stdout


OU = """\
model OU {
    state x
    param theta = 1.5 in (0, inf), sigma = 0.5 in (0, inf)
    dx = -theta * x dt + sigma dW
}
"""


def _emitted(spec: str, backend: str) -> str:
    import sdelang
    from sdelang.emit.registry import get_backend

    return get_backend(backend).emit(sdelang.load(spec))


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("text", [HESTON, OU], ids=["heston", "ou"])
def test_cli_compile_loads_no_framework_and_prints_what_emit_returns(backend, text, tmp_path):
    spec = tmp_path / "model.sde"
    spec.write_text(text)
    out = tmp_path / "model.py"
    code = textwrap.dedent(
        f"""
        from sdelang.cli import main
        assert main(["compile", {str(spec)!r}, "--backend", {backend!r}, "-o", {str(out)!r}]) == 0
        """
    ) + _REPORT_HEAVY
    assert _heavy_modules(_run_python(code, str(tmp_path))) == []
    expected = _emitted(str(spec), backend)
    assert out.read_text() == expected
    proc = subprocess.run([sys.executable, "-m", "sdelang", "compile", str(spec), "--backend", backend],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected


def test_the_shipped_parser_tables_are_those_of_the_grammar():
    """``sdelang/syntax/grammar_tables.py`` is current (regenerate: python -m sdelang.syntax.grammar)
    and parses the examples exactly as the parser built from the grammar does."""
    from sdelang.syntax import grammar

    text = grammar.grammar_text()
    shipped = grammar._shipped_parser(grammar.grammar_digest(text))
    assert shipped is not None, "stale tables: run python -m sdelang.syntax.grammar"
    built = grammar.build_parser(text)
    examples = os.path.join(ROOT, "examples")
    for name in sorted(os.listdir(examples)) if os.path.isdir(examples) else []:
        if name.endswith(".sde"):
            with open(os.path.join(examples, name), encoding="utf-8") as fh:
                source = fh.read()
            assert shipped.parse(source) == built.parse(source), name
    for source in (HESTON, LANGEVIN, OU):
        assert shipped.parse(source) == built.parse(source)
