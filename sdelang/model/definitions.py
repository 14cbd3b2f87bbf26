"""The values of declarations: parameter defaults and intervals, vector sizes, the time interval
and a reversed time, lets and densities (each sees the lets before it), the marginal score, and the
checks that every value is finite, real and within double precision."""
from __future__ import annotations

import sympy

from ..syntax import ast
from .differentials import LinearForm
from .expression_size import distinct_nodes, max_expression_size, tree_size
from .expressions import Lowering
from .literals import DOUBLE_MAX
from .parts import Density, Interval, Param
from .scope import LetFunction
from .values import Vector

NON_FINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


class DefinitionPass:
    """The methods of the model builder that give declared names their values."""

    def _constant(self, node: ast.Expr, what: str, *, allow_inf: bool = False, names: str = "none") -> sympy.Expr:
        """A real number (or ±inf where allowed) written as an expression of constants."""
        value = Lowering(self.scope, names=names, allow_inf=allow_inf, what=what).scalar(node)
        if names == "none":
            infinite = value in (sympy.oo, -sympy.oo)
            real = value.is_extended_real if infinite else (value.is_finite and value.is_real)
            if not value.is_number or value.has(sympy.zoo, sympy.nan) or real is not True:
                raise self._error(f"{what} must be a real number, got '{self.source.excerpt(node.span)}'", node.span)
        elif value.has(*NON_FINITE):
            raise self._error(f"{what} must be finite", node.span)
        if value.is_Number and value.is_finite and abs(value) > DOUBLE_MAX:
            raise self._error(f"{what} is too large for double precision", node.span)
        return value

    def _interval(self, node: ast.Interval, what: str, names: str = "none") -> Interval:
        lo = self._constant(node.lo, f"the lower end of {what}", allow_inf=True, names=names)
        hi = self._constant(node.hi, f"the upper end of {what}", allow_inf=True, names=names)
        if lo.is_number and hi.is_number and not bool(lo < hi):
            raise self._error(f"{what} ({lo}, {hi}) is empty: its lower end must be below its upper end", node.span)
        if lo == sympy.oo or hi == -sympy.oo:
            raise self._error(f"{what} is empty", node.span)
        return Interval(lo, hi, node.lo_closed and lo != -sympy.oo, node.hi_closed and hi != sympy.oo)

    def _time_interval(self, decl: ast.TimeDecl) -> None:
        if decl.reverses is not None:
            self._time_reversal(decl)
        if decl.interval is None:
            return
        interval = self._interval(decl.interval, "the time interval", names="params")
        if interval.lo.has(sympy.oo, -sympy.oo) or interval.hi.has(sympy.oo, -sympy.oo):
            raise self._error("the time interval must be finite", decl.interval.span)
        self.t0, self.t1 = interval.lo, interval.hi

    def _time_reversal(self, decl: ast.TimeDecl) -> None:
        """``time s ... reverses t = T - s``: this model is the time reversal of a model in time t."""
        ident, node = decl.reverses, decl.reverses_expr
        self.scope.check_identifier(ident, "the reversed time")
        if ident.name in self.scope.declared:
            raise self._error(f"'{ident.name}' is already declared; the reversed time needs a name of its own",
                              ident.span)
        value = Lowering(self.scope, what="the reversed time").scalar(node)
        s = self.scope.time
        params = {d.symbol for d in self.scope.of_kind("param")}
        T = sympy.expand(value + s)
        if not isinstance(value, sympy.Expr) or not value.free_symbols <= params | {s} or T.has(s):
            raise self._error(
                f"'reverses {ident.name} = ...' reads '{ident.name} = T - {s.name}' with T a number or an "
                f"expression in the parameters, got '{self.source.excerpt(node.span)}'", node.span)
        self.reversal = (sympy.Symbol(ident.name), T)

    def _marginal_score(self, eq: ast.Equation) -> None:
        """``score = expr``: ∇ log p of this model's own marginal (one entry per state)."""
        if self.marginal_score is not None:
            raise self._error(f"the marginal score is given twice (first at line {self.marginal_score_span.line})",
                              eq.lhs.span)
        value = Lowering(self.scope, what="the marginal score").value(eq.rhs)
        entries = tuple(value) if isinstance(value, Vector) else (value,)
        n = len(self.scope.states)
        if len(entries) != n:
            raise self._error(f"'score = ...' needs {n} entr{'y' if n == 1 else 'ies'} (one per state), "
                              f"got {len(entries)}", eq.rhs.span)
        for entry in entries:
            if isinstance(entry, LinearForm):
                raise self._error("the marginal score cannot contain a differential", eq.rhs.span)
            self._check_finite(entry, eq.rhs, "the marginal score")
        self.marginal_score, self.marginal_score_span = entries, eq.lhs.span

    def _param(self, item: ast.ParamItem) -> None:
        name = item.name.name
        integer = False
        if item.type is not None:
            if item.type.name == "int":
                integer = True
            elif item.type.name != "real":
                raise self._error(
                    f"unknown parameter type '{item.type.name}'; expected 'int' or 'real'", item.type.span
                )
        interval = self._interval(item.interval, f"the interval of '{name}'") if item.interval else None
        value = None
        if item.default is not None:
            value = self._constant(item.default, f"the default of parameter '{name}'")
            if value in (sympy.oo, -sympy.oo):
                raise self._error(f"the default of parameter '{name}' must be finite", item.default.span)
            if integer:
                rounded = sympy.Integer(int(value))
                exact = sympy.Rational(value) if value.is_Float else value
                if rounded != exact:
                    raise self._error(
                        f"parameter '{name}' is declared ': int' but its default "
                        f"'{self.source.excerpt(item.default.span)}' is not an integer",
                        item.default.span,
                    )
                value = rounded
            if interval is not None and not interval.contains(value):
                raise self._error(
                    f"the default {self.source.excerpt(item.default.span)} of parameter '{name}' "
                    f"is outside its interval {interval}",
                    item.default.span,
                )
        self.parameters[name] = Param(sympy.Symbol(name), value, interval, integer)

    def _state_size(self, item: ast.StateItem) -> None:
        if item.size is None:
            return
        size = item.size
        message = (
            f"the size of '{item.name.name}[...]' must be a positive integer or an ': int' parameter"
        )
        if isinstance(size, ast.Number):
            value = Lowering(self.scope, names="none").scalar(size)
            if not value.is_Integer or value < 1:
                raise self._error(message, size.span)
            self.dimension = value
            return
        if isinstance(size, ast.Name):
            param = self.parameters.get(size.ident.name)
            if param is None or not param.integer:
                raise self._error(message + f"; '{size.ident.name}' is not one", size.span)
            if param.value is not None and param.value < 1:
                raise self._error(f"the size '{size.ident.name}' = {param.value} must be at least 1", size.span)
            self.dimension = param.symbol
            return
        raise self._error(message, size.span)

    def _let_or_density(self, decl) -> None:
        scope = self.scope
        name = decl.name.name
        if isinstance(decl, ast.DensityDecl):
            expr = Lowering(scope, what=f"density '{name}'").scalar(decl.expr)
            self._check_finite(expr, decl.expr, f"density '{name}'")
            if not decl.is_log and expr.is_number and not bool(expr > 0):
                raise self._error(f"density '{name}' = {sympy.sstr(expr)} is not a probability density "
                                  "(an unnormalised density is positive)", decl.expr.span)
            self.densities.append(Density(name, expr, decl.is_log))
            scope.values[name] = expr
            return
        if decl.formals is None:
            value = Lowering(scope, what=f"let '{name}'").value(decl.body)
            for entry in value if isinstance(value, Vector) else (value,):
                self._check_finite(entry, decl.body, f"let '{name}'")
            scope.values[name] = value
            return
        seen = set()
        for formal in decl.formals:
            scope.check_identifier(formal, "an argument")
            if formal.name in seen:
                raise self._error(f"argument '{formal.name}' is repeated", formal.span)
            seen.add(formal.name)
        function = LetFunction(name, tuple(f.name for f in decl.formals), decl.body, dict(scope.values), decl.span)
        # Check the body once, with each formal a fresh symbol, so mistakes show even if unused.
        dummies = {f.name: sympy.Dummy(f.name) for f in decl.formals}
        Lowering(scope, locals=dummies, visible=function.visible, what=f"let '{name}'").value(decl.body)
        scope.values[name] = function

    def _check_finite(self, expr: sympy.Expr, node: ast.Expr, what: str = "this expression") -> None:
        """No ∞, zoo, nan or i, every number within double precision, and an expanded size within
        the budget (all measured on the expression graph, so shared lets cost nothing extra)."""
        if not isinstance(expr, sympy.Basic):
            return
        text = self.source.excerpt(node.span)
        limit = max_expression_size()
        size = tree_size(expr, limit)
        if size > limit:
            raise self._error(
                f"{what} expands to more than {limit:,} terms (lets used inside lets multiply "
                "when written out); split it up, or raise the limit with SDELANG_MAX_EXPRESSION_SIZE",
                node.span)
        for atom in distinct_nodes(expr):
            if atom in NON_FINITE:
                raise self._error(f"'{text}' is undefined or infinite (division by zero?)", node.span)
            if atom is sympy.I:
                raise self._error(f"'{text}' is not a real number (it contains i = sqrt(-1))", node.span)
            if atom.is_Number and abs(atom) > DOUBLE_MAX:
                raise self._error(f"'{text}' holds a number too large for double precision", node.span)
