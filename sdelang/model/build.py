"""The semantic pass: AST → :class:`Model`.

Two passes over the statements. The first declares every name (states, parameters, time,
Brownian motions, lets, densities, nets) so that duplicates and reserved names are caught where
they are written. The second lowers expressions to SymPy: parameter defaults and intervals,
vector sizes, the time interval, lets and densities in the order written (a let sees the lets
before it), then the equations, whose right sides E = f dt + Σ_k g_k dW_k give row i of the drift
(f) and of the diffusion (g_k in the column of W_k), then the laws and asserts.
"""
from __future__ import annotations

import contextlib
import keyword
from typing import Dict, List, Optional, Tuple

import sympy

from ..errors import SpecError, did_you_mean
from ..syntax import ast
from .differentials import Differentials, LinearForm, additive_terms
from .expression_size import distinct_nodes, max_expression_size, tree_size
from .expressions import DOUBLE_MAX, Lowering, Vector
from .model import Model
from .parts import Assertion, Density, Distribution, Interval, Net, Param
from .scope import Declaration, LetFunction, Scope, Source
from .symbols import SCORE_NET, NetOutput

#: Convert an unexpected internal exception into a SpecError naming the statement (the last
#: resort of DESIGN.md: "never a Python traceback for bad input"). The fuzz test turns it off
#: to prove that no such exception happens.
GUARD_UNEXPECTED = True

_NON_FINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def build_model(spec: ast.Spec, text: Optional[str] = None, path: Optional[str] = None) -> Model:
    """The Model that a parsed spec describes, or SpecError pointing at the offending text."""
    return _ModelBuilder(spec, Source(text or "", path)).build()


class _ModelBuilder:
    def __init__(self, spec: ast.Spec, source: Source):
        self.spec = spec
        self.source = source
        self.scope = Scope(source)
        self.differentials = Differentials(self.scope)
        self.parameters: Dict[str, Param] = {}
        self.dimension: Optional[sympy.Expr] = None
        self.t0: sympy.Expr = sympy.S.Zero
        self.t1: sympy.Expr = sympy.S.One
        self.calculus: Optional[Tuple[str, ast.Span]] = None
        self.densities: List[Density] = []
        self.nets: List[Net] = []
        self.equations: Dict[str, ast.Equation] = {}
        self.drift: Dict[str, sympy.Expr] = {}
        self.diffusion: Dict[Tuple[str, str], sympy.Expr] = {}
        self.laws: Dict[str, Dict[str, Tuple[Distribution, ast.Span]]] = {"init": {}, "prior": {}}
        self.asserts: List[Assertion] = []
        self.marginal_score: Optional[Tuple[sympy.Expr, ...]] = None
        self.marginal_score_span = None
        self.reversal: Optional[Tuple[sympy.Symbol, sympy.Expr]] = None

    def _error(self, message: str, span) -> SpecError:
        return self.source.error(message, span)

    @contextlib.contextmanager
    def _statement(self, node):
        """Errors inside one statement: SpecErrors pass; too-deep nesting and (as a last resort)
        unexpected exceptions become SpecErrors located at the statement."""
        self.scope.expansion_count = self.scope.expansion_depth = 0
        try:
            yield
        except SpecError:
            raise
        except RecursionError:
            raise self._error("this statement is nested too deeply", node.span) from None
        except Exception as exc:
            if not GUARD_UNEXPECTED:
                raise
            raise self._error(
                f"internal error while reading this statement ({type(exc).__name__}: {exc}); "
                "please report it", node.span,
            ) from exc

    # ================================================================== driver
    def build(self) -> Model:
        statements = self.spec.statements
        self._check_model_name(self.spec.name)
        self._declare_time(statements)
        for statement in statements:
            with self._statement(statement):
                self._declare(statement)
        self._finish_declarations()
        by_kind = lambda cls: [s for s in statements if isinstance(s, cls)]
        for statement in by_kind(ast.TimeDecl):
            with self._statement(statement):
                self._time_interval(statement)
        for statement in by_kind(ast.ParamDecl):
            for item in statement.items:
                with self._statement(item):
                    self._param(item)
        for statement in by_kind(ast.StateDecl):
            for item in statement.items:
                with self._statement(item):
                    self._state_size(item)
        for statement in statements:
            if isinstance(statement, (ast.LetDecl, ast.DensityDecl)):
                with self._statement(statement):
                    self._let_or_density(statement)
        for statement in by_kind(ast.Equation):
            with self._statement(statement):
                self._equation(statement)
        for statement in statements:
            with self._statement(statement):
                if isinstance(statement, ast.LawDecl):
                    self._law(statement)
                elif isinstance(statement, ast.AssertDecl):
                    self._assert(statement)
                elif isinstance(statement, ast.CalculusDecl):
                    self._calculus(statement)
        return self._model()

    # ================================================================== pass 1: declarations
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
                raise self._error(f"names beginning with '__' are reserved", formal.span)
            if formal.name in seen:
                raise self._error(f"argument '{formal.name}' is repeated", formal.span)
            seen.add(formal.name)
        self.nets.append(Net(decl.name.name, tuple(f.name for f in decl.formals)))

    # ================================================================== pass 2: values
    def _constant(self, node: ast.Expr, what: str, *, allow_inf: bool = False, names: str = "none") -> sympy.Expr:
        """A real number (or ±inf where allowed) written as an expression of constants."""
        value = Lowering(self.scope, names=names, allow_inf=allow_inf, what=what).scalar(node)
        if names == "none":
            infinite = value in (sympy.oo, -sympy.oo)
            real = value.is_extended_real if infinite else (value.is_finite and value.is_real)
            if not value.is_number or value.has(sympy.zoo, sympy.nan) or real is not True:
                raise self._error(f"{what} must be a real number, got '{self.source.excerpt(node.span)}'", node.span)
        elif value.has(*_NON_FINITE):
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
            if atom in _NON_FINITE:
                raise self._error(f"'{text}' is undefined or infinite (division by zero?)", node.span)
            if atom is sympy.I:
                raise self._error(f"'{text}' is not a real number (it contains i = sqrt(-1))", node.span)
            if atom.is_Number and abs(atom) > DOUBLE_MAX:
                raise self._error(f"'{text}' holds a number too large for double precision", node.span)

    # ================================================================== equations
    def _equation(self, eq: ast.Equation) -> None:
        lhs = eq.lhs.name
        if lhs == SCORE_NET:
            self._marginal_score(eq)
            return
        state_names = [s.name for s in self.scope.states]
        state = lhs[1:] if lhs.startswith("d") else None
        if state not in state_names:
            differentials = ["d" + s for s in state_names]
            if state is None or lhs in self.scope.declared:
                raise self._error(
                    f"'{lhs} = ...' is not a statement: an equation reads 'd{state_names[0]} = ... "
                    f"d{self.scope.time.name} + ... dW'; a definition reads 'let {lhs} = ...'",
                    eq.lhs.span,
                )
            raise self._error(
                f"equation for '{lhs}', but there is no state '{state}'{did_you_mean(lhs, differentials)}",
                eq.lhs.span,
            )
        if state in self.equations:
            first = self.equations[state]
            raise self._error(
                f"second equation for state '{state}' (the first is at line {first.span.line})", eq.lhs.span
            )
        self.equations[state] = eq
        lowering = Lowering(self.scope, differentials=self.differentials, what="an equation")
        form = lowering.scalar(eq.rhs)
        if not isinstance(form, LinearForm) or self._mixed(form):
            raise self._inhomogeneous_error(eq, lowering)
        for coefficient in form.terms.values():
            self._check_finite(coefficient, eq.rhs, f"the equation for '{state}'")
        self.drift[state] = form.terms.get(self.differentials.time_label, sympy.S.Zero)
        for name in self.differentials.brownians:
            if "d" + name in form.terms:
                self.diffusion[(state, name)] = form.terms["d" + name]

    def _inhomogeneous_error(self, eq: ast.Equation, lowering: Lowering) -> SpecError:
        """Point at the innermost term that carries no differential."""
        dt_name = self.differentials.time_label
        term = self._term_without_differential(eq.rhs, lowering) or eq.rhs
        text = self.source.excerpt(term.span)
        return self._error(
            f"the term '{text}' has no {dt_name} or dW: every term of an equation is a coefficient "
            f"times {dt_name} or a Brownian increment, e.g. '{text} {dt_name}'",
            term.span,
        )

    @staticmethod
    def _mixed(value) -> bool:
        """A form with a part free of differentials (r ≠ 0 in Σ c_s s + r)."""
        return isinstance(value, LinearForm) and value.rest != 0 and sympy.expand(value.rest) != 0

    def _term_without_differential(self, node: ast.Expr, lowering: Lowering) -> Optional[ast.Expr]:
        for _sign, term in additive_terms(node):
            value = lowering.scalar(term)
            if not isinstance(value, LinearForm):
                return term
            if self._mixed(value):
                children = []
                if isinstance(term, ast.BinaryOp) and term.op in "*/":
                    children = [term.left, term.right]
                elif isinstance(term, ast.UnaryOp):
                    children = [term.operand]
                for child in children:
                    if self._mixed(lowering.value(child)):
                        return self._term_without_differential(child, lowering) or child
                return term
        return None

    # ================================================================== laws, asserts, calculus
    def _law(self, decl: ast.LawDecl) -> None:
        state = decl.state.name
        if state not in [s.name for s in self.scope.states]:
            raise self._error(
                f"'{decl.which} {state} ~ ...' names no state{did_you_mean(state, [s.name for s in self.scope.states])}",
                decl.state.span,
            )
        previous = self.laws[decl.which].get(state)
        if previous is not None:
            raise self._error(
                f"second '{decl.which}' for state '{state}' (the first is at line {previous[1].line})", decl.span
            )
        law = decl.law.name
        if law == "Normal":
            args = decl.args or ()
            if len(args) != 2:
                raise self._error(f"Normal takes 2 arguments (loc, scale), got {len(args)}", decl.law.span)
            loc = self._constant(args[0], "the mean of Normal", names="params")
            scale = self._constant(args[1], "the scale of Normal", names="params")
            if scale.is_number and not bool(scale > 0):
                raise self._error("the scale of Normal must be positive", args[1].span)
            distribution = Distribution("normal", loc, scale)
        elif law == "data":
            if decl.args is not None:
                raise self._error("'data' takes no arguments", decl.law.span)
            distribution = Distribution("data")
        else:
            raise self._error(
                f"unknown distribution '{law}'{did_you_mean(law, ['Normal', 'data'])}; expected "
                "Normal(loc, scale) or data",
                decl.law.span,
            )
        self.laws[decl.which][state] = (distribution, decl.span)

    def _assert(self, decl: ast.AssertDecl) -> None:
        kind, target = decl.kind.name, decl.target.name
        if kind != "stationary":
            raise self._error(f"unknown assertion '{kind}'; expected 'assert stationary DENSITY'", decl.kind.span)
        declared = self.scope.declared.get(target)
        if declared is None or declared.kind != "density":
            names = [d.name for d in self.densities]
            what = f" ('{target}' is {self._kind(declared)})" if declared is not None else ""
            raise self._error(
                f"'assert stationary {target}' needs a declared density{what}{did_you_mean(target, names)}",
                decl.target.span,
            )
        self.asserts.append(Assertion("stationary", target))

    @staticmethod
    def _kind(declared: Declaration) -> str:
        from .scope import KINDS_READABLE

        return KINDS_READABLE[declared.kind]

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

    # ================================================================== assembly
    def _model(self) -> Model:
        scope = self.scope
        states = scope.states
        brownians = list(self.differentials.brownians)
        if self.calculus is not None and self.calculus[0] == "stratonovich":
            for (state, _), g in self.diffusion.items():
                if g.has(NetOutput):
                    raise self._error(
                        f"the diffusion of '{state}' calls a net, which a Stratonovich model cannot do: "
                        "its Itô drift needs the derivative of the diffusion, and a net's Jacobian is "
                        "unknown here; write the model in Itô form", self.equations[state].rhs.span)
        drift = sympy.Matrix([[self.drift.get(s.name, sympy.S.Zero)] for s in states])
        diffusion = sympy.Matrix(
            len(states), len(brownians),
            lambda i, k: self.diffusion.get((states[i].name, brownians[k]), sympy.S.Zero),
        )
        nets = list(self.nets)
        for name in scope.implicit_nets:
            nets.append(Net(name, tuple(s.name for s in states) + (scope.time.name,)))
        try:
            return Model(
                name=self.spec.name.name,
                states=states,
                drift_matrix=drift,
                diffusion_matrix=diffusion,
                brownians=tuple(self.differentials.brownians.values()),
                time=scope.time,
                t0=self.t0,
                t1=self.t1,
                parameters=tuple(self.parameters.values()),
                calculus=self.calculus[0] if self.calculus else "ito",
                dimension=self.dimension,
                densities=tuple(self.densities),
                nets=tuple(nets),
                init=tuple((s, d) for s, (d, _) in self.laws["init"].items()),
                prior=tuple((s, d) for s, (d, _) in self.laws["prior"].items()),
                asserts=tuple(self.asserts),
                marginal_score=self.marginal_score,
                reversal=self.reversal,
                path=self.source.path,
            )
        except ValueError as exc:  # the Model's own consistency checks
            raise self._error(f"inconsistent model: {exc}", self.spec.name.span) from None
