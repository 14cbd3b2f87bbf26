"""Symbol tables of the semantic pass: what each name in a spec is, and which names are reserved.

One flat namespace holds every declared name (states, parameters, time, Brownian motions, lets,
densities, nets); a name is declared once. Reserved are the language's keywords, its built-in
functions, the time differential ``dt`` (``d`` + the time's name), ``dW…`` (Brownian increments),
``d`` + a state's name, names beginning with ``__`` and the few names generated code needs for
itself (``torch``, ``jnp``, ``self`` ...). Python keywords such as ``lambda`` are fine: backends
rename them in generated code (``lambda_``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import sympy

from ..errors import SpecError, did_you_mean, source_lines
from ..syntax import ast
from .symbols import SCORE_NET

#: Built-in functions and their number of arguments.
FUNCTION_ARITY: Dict[str, int] = {
    "exp": 1, "log": 1, "sqrt": 1, "sin": 1, "cos": 1, "tanh": 1, "sigmoid": 1, "abs": 1, "sign": 1,
    "grad": 1, "div": 1, "laplacian": 1, "dot": 2, "sum": 1,
}
KEYWORDS = frozenset({
    "model", "time", "state", "param", "brownian", "let", "density", "log_density", "net",
    "calculus", "init", "prior", "assert", "in", "stationary", "int", "real", "inf", "ito",
    "stratonovich", "data", "Normal", "pi", "reverses",
})
#: Names the generated Python code uses for itself.
CODEGEN_NAMES = frozenset({"self", "torch", "jax", "jnp", "np", "numpy", "math", "sympy"})
KINDS_READABLE = {
    "state": "a state", "param": "a parameter", "time": "the time", "brownian": "a Brownian motion",
    "let": "a let", "function": "a let function", "density": "a density", "net": "a net",
}


class Source:
    """The spec's text and path, to turn a span into a located :class:`SpecError`."""

    def __init__(self, text: str, path: Optional[str]):
        self.text = text or ""
        self.path = path
        self._lines = source_lines(self.text)

    def line(self, number: int) -> Optional[str]:
        return self._lines[number - 1] if 1 <= number <= len(self._lines) else None

    def error(self, message: str, span: Optional[ast.Span]) -> SpecError:
        if span is None:
            return SpecError(message, path=self.path)
        return SpecError(
            message, path=self.path, line=span.line, column=span.column, source_line=self.line(span.line)
        )

    def excerpt(self, span: ast.Span, limit: int = 60) -> str:
        """The text a span covers (joined onto one line, shortened to ``limit`` characters)."""
        if span.line == span.end_line:
            piece = (self.line(span.line) or "")[span.column - 1: span.end_column - 1]
        else:
            first = (self.line(span.line) or "")[span.column - 1:]
            middle = [self.line(n) or "" for n in range(span.line + 1, span.end_line)]
            last = (self.line(span.end_line) or "")[: span.end_column - 1]
            piece = " ".join(s.strip() for s in [first, *middle, last])
        piece = " ".join(piece.split())
        return piece if len(piece) <= limit else piece[: limit - 3] + "..."


@dataclass
class Declaration:
    """One declared name: its kind, where it was declared and (for symbols) its SymPy symbol."""

    kind: str
    name: str
    span: ast.Span
    symbol: Optional[sympy.Symbol] = None
    implicit: bool = False


@dataclass
class LetFunction:
    """``let beta(t) = body``: expanded at each call site with the formals bound to the arguments,
    in the scope of its definition (``visible``: the lets defined before it)."""

    name: str
    formals: Tuple[str, ...]
    body: ast.Expr
    visible: Dict[str, object]
    span: ast.Span


@dataclass
class Scope:
    """Every declaration of a spec plus the lets/densities whose values are known so far."""

    source: Source
    declared: Dict[str, Declaration] = field(default_factory=dict)
    #: name -> lowered value (lets and densities) or LetFunction, in definition order.
    values: Dict[str, object] = field(default_factory=dict)
    time: sympy.Symbol = sympy.Symbol("t")
    states: Tuple[sympy.Symbol, ...] = ()
    elementwise: bool = False
    #: nets called without a declaration (the built-in ``score``), in order of first use.
    implicit_nets: List[str] = field(default_factory=list)
    #: let-function calls already expanded ((name, context, argument values) -> value) and how
    #: many expansions the current statement has made (bounded: see calls.MAX_EXPANSIONS).
    expansions: Dict[tuple, object] = field(default_factory=dict)
    expansion_count: int = 0
    expansion_depth: int = 0

    # ------------------------------------------------------------------ declaring
    def check_identifier(self, ident: ast.Ident, what: str) -> None:
        """Reject reserved and unsafe names for a new ``what`` (e.g. "state")."""
        name = ident.name
        if name.startswith("__"):
            raise self.source.error(f"names beginning with '__' are reserved; '{name}' cannot name {what}", ident.span)
        if name in FUNCTION_ARITY:
            raise self.source.error(f"'{name}' is a built-in function and cannot name {what}", ident.span)
        if name in KEYWORDS:
            raise self.source.error(f"'{name}' is a reserved word and cannot name {what}", ident.span)
        if name in CODEGEN_NAMES:
            raise self.source.error(
                f"'{name}' is reserved for generated code and cannot name {what}", ident.span
            )

    def declare(self, ident: ast.Ident, kind: str, symbol: Optional[sympy.Symbol] = None) -> Declaration:
        self.check_identifier(ident, KINDS_READABLE[kind])
        if ident.name == SCORE_NET and kind != "net":
            raise self.source.error(
                f"'{SCORE_NET}' is the built-in learned score network (reverse-time and probability-flow "
                f"models call it) and cannot name {KINDS_READABLE[kind]}", ident.span)
        previous = self.declared.get(ident.name)
        if previous is not None and previous.implicit:
            raise self.source.error(
                f"'{ident.name}' is the model's time; to use '{ident.name}' for {KINDS_READABLE[kind]}, "
                "give the time another name: 'time s in [0, 1]'",
                ident.span,
            )
        if previous is not None:
            raise self.source.error(
                f"'{ident.name}' is already declared as {KINDS_READABLE[previous.kind]} "
                f"(line {previous.span.line})",
                ident.span,
            )
        entry = Declaration(kind, ident.name, ident.span, symbol)
        self.declared[ident.name] = entry
        return entry

    def of_kind(self, kind: str) -> List[Declaration]:
        return [d for d in self.declared.values() if d.kind == kind]

    def check_differential_clashes(self) -> None:
        """No declared name may read as a differential: ``d<time>``, ``d<state>``, ``dW…``."""
        differentials = {"d" + self.time.name: "the time differential"}
        for s in self.states:
            differentials["d" + s.name] = f"the differential of state '{s.name}'"
        for b in self.of_kind("brownian"):
            differentials["d" + b.name] = f"the increment of Brownian motion '{b.name}'"
        for d in self.declared.values():
            if d.name in differentials:
                raise self.source.error(
                    f"'{d.name}' is reserved: it is {differentials[d.name]}", d.span
                )
            if d.name.startswith("dW"):
                raise self.source.error(
                    f"'{d.name}' is reserved: names 'dW...' are Brownian increments", d.span
                )

    def use_net(self, name: str, span: ast.Span) -> None:
        """Record a call of a net; the built-in ``score`` is declared by its first use."""
        if name not in self.declared and name not in self.implicit_nets:
            self.implicit_nets.append(name)

    # ------------------------------------------------------------------ looking up
    def suggestion(self, name: str, extra: Iterable[str] = ()) -> str:
        """`` (did you mean 'theta'?)`` among every name a reader could have meant."""
        candidates = set(self.declared) | set(extra) | {"pi", "d" + self.time.name}
        return did_you_mean(name, candidates)
