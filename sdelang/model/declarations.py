"""Pass 1 of the semantic pass: every name is declared (states, parameters, time, Brownian
motions, lets, densities, nets) before any expression is read, so duplicates and reserved names are
caught where they are written; the calculus declaration."""
from __future__ import annotations

import keyword

import sympy

from ..errors import did_you_mean
from ..syntax import ast
from .parts import Net
from .scope import Declaration


class DeclarationPass:
    """The declaring methods of the model builder (:class:`.build.ModelBuilder`)."""

    def _check_model_name(self, ident: ast.Ident) -> None:
        if ident.name.startswith("__") or keyword.iskeyword(ident.name):
            raise self._error(f"'{ident.name}' cannot name a model", ident.span)

    def _declare_time(self, statements) -> None:
        times = [s for s in statements if isinstance(s, ast.TimeDecl)]
        if len(times) > 1:
            raise self._error(
                f"the time is declared twice (first at line {times[0].span.line})", times[1].span
            )
        if times:
            ident = times[0].name
            self.scope.time = sympy.Symbol(ident.name)
            with self._statement(times[0]):
                self.scope.declare(ident, "time", self.scope.time)
        else:
            self.scope.declared["t"] = Declaration("time", "t", self.spec.name.span, self.scope.time, implicit=True)

    def _declare(self, statement) -> None:
        scope = self.scope
        if isinstance(statement, ast.StateDecl):
            for item in statement.items:
                scope.declare(item.name, "state", sympy.Symbol(item.name.name))
        elif isinstance(statement, ast.ParamDecl):
            for item in statement.items:
                scope.declare(item.name, "param", sympy.Symbol(item.name.name))
        elif isinstance(statement, ast.BrownianDecl):
            for ident in statement.names:
                scope.declare(ident, "brownian", sympy.Symbol(ident.name))
                self.differentials.add(ident.name)
        elif isinstance(statement, ast.LetDecl):
            scope.declare(statement.name, "let" if statement.formals is None else "function")
        elif isinstance(statement, ast.DensityDecl):
            scope.declare(statement.name, "density")
        elif isinstance(statement, ast.NetDecl):
            scope.declare(statement.name, "net")

    def _finish_declarations(self) -> None:
        scope = self.scope
        states = scope.of_kind("state")
        if not states:
            raise self._error(
                f"model '{self.spec.name.name}' declares no state; add one, e.g. 'state x'",
                self.spec.name.span,
            )
        scope.states = tuple(d.symbol for d in states)
        vector_items = [
            item for s in self.spec.statements if isinstance(s, ast.StateDecl)
            for item in s.items if item.size is not None
        ]
        if vector_items:
            scope.elementwise = True
            if len(states) > 1:
                other = next(d for d in states if d.name != vector_items[0].name.name)
                raise self._error(
                    f"an elementwise model (state {vector_items[0].name.name}[...]) has exactly one "
                    f"state; '{other.name}' is a second one",
                    other.span,
                )
        if scope.elementwise and len(self.differentials.brownians) > 1:
            second = scope.of_kind("brownian")[1]
            raise self._error(
                "an elementwise model (state x[d]) has one d-dimensional Brownian motion; "
                f"'{second.name}' is a second one",
                second.span,
            )
        scope.check_differential_clashes()
        for statement in self.spec.statements:
            if isinstance(statement, ast.NetDecl):
                with self._statement(statement):
                    self._net(statement)

    def _net(self, decl: ast.NetDecl) -> None:
        states = self.scope.states
        expected = len(states) + 1
        names = ", ".join([s.name for s in states] + [self.scope.time.name])
        if len(decl.formals) != expected:
            raise self._error(
                f"net '{decl.name.name}' must take the states and the time, {expected} arguments "
                f"as in 'net {decl.name.name}({names})'; got {len(decl.formals)}",
                decl.span,
            )
        seen = set()
        for formal in decl.formals:
            if formal.name.startswith("__"):
                raise self._error("names beginning with '__' are reserved", formal.span)
            if formal.name in seen:
                raise self._error(f"argument '{formal.name}' is repeated", formal.span)
            seen.add(formal.name)
        self.nets.append(Net(decl.name.name, tuple(f.name for f in decl.formals)))

    def _calculus(self, decl: ast.CalculusDecl) -> None:
        kind = decl.kind.name
        if kind not in ("ito", "stratonovich"):
            raise self._error(
                f"unknown calculus '{kind}'{did_you_mean(kind, ['ito', 'stratonovich'])}; expected "
                "'ito' or 'stratonovich'",
                decl.kind.span,
            )
        if self.calculus is not None:
            raise self._error(f"the calculus is declared twice (first at line {self.calculus[1].line})", decl.span)
        self.calculus = (kind, decl.span)
