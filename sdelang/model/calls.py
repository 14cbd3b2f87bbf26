"""Calls in expressions: the built-in functions, let functions (expanded at their arguments, with a
budget of expansions) and nets (``f(x, t)`` → the net's outputs)."""
from __future__ import annotations

from typing import Dict

import sympy

from ..errors import did_you_mean
from ..syntax import ast
from .differentials import LinearForm
from .expression_size import max_expression_size, tree_size
from .functions import RealAbs, RealSign
from .scope import FUNCTION_ARITY, KINDS_READABLE, LetFunction
from .symbols import NetOutput, net_output
from .values import Value, Vector


class _TooManyExpansions(Exception):
    """Raised inside nested let-function expansions; reported at the outermost call."""


def sigmoid(z: sympy.Expr) -> sympy.Expr:
    """σ(z) = 1 / (1 + exp(-z))."""
    return 1 / (1 + sympy.exp(-z))


def log_of(z: sympy.Expr) -> sympy.Expr:
    """log z with exponential factors taken out: log(a · Π exp(z_k)) = log(a) + Σ z_k."""
    factors = sympy.Mul.make_args(z)
    exponents = [f.args[0] for f in factors if isinstance(f, sympy.exp)]
    if not exponents:
        return sympy.log(z)
    rest = sympy.Mul(*[f for f in factors if not isinstance(f, sympy.exp)])
    return sympy.Add(*exponents) + (sympy.log(rest) if rest != 1 else sympy.S.Zero)


_SCALAR_FUNCTIONS = {
    "exp": sympy.exp, "log": log_of, "sqrt": sympy.sqrt, "sin": sympy.sin, "cos": sympy.cos,
    "tanh": sympy.tanh, "sigmoid": sigmoid, "abs": RealAbs, "sign": RealSign,
}
#: Let-function expansions allowed in one statement (each call at new arguments is one).
MAX_EXPANSIONS = 5_000
_ELEMENTWISE_UNSUPPORTED = {
    "div": "a divergence sums over the d components",
    "laplacian": "a Laplacian sums over the d components",
    "dot": "a dot product sums over the d components",
    "sum": "a sum runs over the d components",
}


class CallLowering:
    """The call-lowering methods of :class:`.expressions.Lowering`."""

    def _Call(self, node: ast.Call) -> Value:
        name = node.func.name
        if name in self.locals:
            raise self._error(f"'{name}' is an argument here, not a function", node.func.span)
        if name in FUNCTION_ARITY:
            self._check_arity(node, FUNCTION_ARITY[name], f"'{name}'")
            return self._builtin(name, node)
        declared = self.scope.declared.get(name)
        if declared is not None and declared.kind in ("function", "let"):
            if name not in self.visible:
                raise self._error(
                    f"'{name}' is used before its definition (line {declared.span.line})", node.func.span
                )
            value = self.visible[name]
            if not isinstance(value, LetFunction):
                raise self._error(
                    f"'{name}' is a let without arguments, not a function (write '{name} * (...)' to multiply)",
                    node.func.span,
                )
            return self._expand(value, node)
        if declared is not None and declared.kind == "net" or name == "score" and declared is None:
            return self._net_call(name, node)
        if declared is not None:
            hint = f" (write '{name} * (...)' to multiply)" if declared.kind in ("state", "param", "time", "density") else ""
            raise self._error(
                f"'{name}' is {KINDS_READABLE[declared.kind]}, not a function{hint}", node.func.span
            )
        callables = set(FUNCTION_ARITY) | {n for n, d in self.scope.declared.items() if d.kind in ("function", "net")}
        raise self._error(f"unknown function '{name}'{did_you_mean(name, callables)}", node.func.span)

    def _check_arity(self, node: ast.Call, expected: int, what: str) -> None:
        got = len(node.args)
        if got != expected:
            raise self._error(
                f"{what} takes {expected} argument{'s' if expected != 1 else ''}, got {got}", node.span
            )

    def _builtin(self, name: str, node: ast.Call) -> Value:
        args = node.args
        where = f"{name}(...)"
        if name in _SCALAR_FUNCTIONS:
            result = _SCALAR_FUNCTIONS[name](self.plain_scalar(args[0], where))
            if result.has(sympy.zoo, sympy.nan):
                raise self._error(f"'{self.source.excerpt(node.span)}' is undefined", node.span)
            return self._real_constant(result, node)
        if self.scope.elementwise and name in _ELEMENTWISE_UNSUPPORTED:
            raise self._error(
                f"'{name}' is not available in an elementwise model (state x[d]): "
                f"{_ELEMENTWISE_UNSUPPORTED[name]}",
                node.span,
            )
        states = self.scope.states
        if name == "grad":
            f = self.plain_scalar(args[0], where)
            return Vector(sympy.diff(f, s) for s in states)
        if name == "laplacian":
            f = self.plain_scalar(args[0], where)
            return sympy.Add(*[sympy.diff(f, s, 2) for s in states])
        if name == "div":
            v = self.vector(self.value(args[0]), args[0], "div")
            if len(v) != len(states):
                raise self._error(
                    f"div needs a vector with one entry per state ({len(states)}), got {len(v)}", node.span
                )
            return sympy.Add(*[sympy.diff(vi, s) for vi, s in zip(v, states)])
        if name == "sum":
            v = self.vector(self.value(args[0]), args[0], "sum")
            return sympy.Add(*v)
        # dot
        u = self.vector(self.value(args[0]), args[0], "dot")
        v = self.vector(self.value(args[1]), args[1], "dot")
        if len(u) != len(v):
            raise self._error(f"dot of vectors of lengths {len(u)} and {len(v)}", node.span)
        return sympy.Add(*[a * b for a, b in zip(u, v)])

    def _expand(self, function: LetFunction, node: ast.Call) -> Value:
        """A let function's body with its formals bound to the arguments (lexical scope)."""
        self._check_arity(node, len(function.formals), f"'{function.name}'")
        bound = {formal: self.value(arg) for formal, arg in zip(function.formals, node.args)}
        key = None
        if not any(isinstance(v, LinearForm) for v in bound.values()):
            key = (function.name, self.names, tuple(bound.values()))
            if key in self.scope.expansions:  # f(u) + f(u): the same expansion, shared
                return self.scope.expansions[key]
        scope = self.scope
        scope.expansion_count += 1
        outermost = scope.expansion_depth == 0
        scope.expansion_depth += 1
        try:
            if scope.expansion_count > MAX_EXPANSIONS:
                raise _TooManyExpansions(f"needs more than {MAX_EXPANSIONS:,} expansions of let functions")
            value = self._expand_body(function, bound)
            limit = max_expression_size()
            for entry in value if isinstance(value, Vector) else (value,):
                if isinstance(entry, sympy.Basic) and tree_size(entry, limit) > limit:
                    raise _TooManyExpansions(f"expands to more than {limit:,} terms")
        except _TooManyExpansions as exc:
            if not outermost:
                raise
            raise self._error(
                f"'{self.source.excerpt(node.span)}' {exc} (let functions calling let functions at new "
                "arguments multiply); simplify the lets, or raise the limit with SDELANG_MAX_EXPRESSION_SIZE",
                node.span) from None
        finally:
            scope.expansion_depth -= 1
        if key is not None:
            self.scope.expansions[key] = value
        return value

    def _expand_body(self, function: LetFunction, bound: Dict[str, Value]) -> Value:
        inner = type(self)(
            self.scope, names=self.names, differentials=self.differentials, allow_inf=False,
            locals=bound, visible=function.visible, what=self.what,
        )
        return inner.value(function.body)

    def _net_call(self, name: str, node: ast.Call) -> Value:
        """``f(x, y, t)`` → (NetOutput(f, i, t, x, y))_i: the states in declared order, then time."""
        if self.names != "all":
            raise self._error(f"{self.what} cannot call a net", node.func.span)
        states = self.scope.states
        state_names = ", ".join(s.name for s in states)
        expected = f"{name}({state_names}, {self.scope.time.name})"
        if len(node.args) != len(states) + 1:
            raise self._error(
                f"net '{name}' takes the states in declared order and then the time, as in "
                f"{expected}; got {len(node.args)} argument{'s' if len(node.args) != 1 else ''}",
                node.span,
            )
        for arg, state in zip(node.args, states):
            value = self.value(arg)
            if isinstance(value, LinearForm) or value != state:
                raise self._error(
                    f"argument '{self.source.excerpt(arg.span)}' of net '{name}' must be the state "
                    f"'{state.name}' (nets are called as {expected})",
                    arg.span,
                )
        time_arg = node.args[-1]
        time_lowering = type(self)(
            self.scope, names=self.names, differentials=None, locals=self.locals,
            visible=self.visible, what="a net's time argument",
        )
        t = time_lowering.plain_scalar(time_arg, "a net's time argument")
        if t.has(NetOutput):
            raise self._error(f"the time argument of net '{name}' calls a net; a net's time is an "
                              "expression in the time and the parameters", time_arg.span)
        if t.free_symbols & set(states):
            raise self._error(
                f"the time argument '{self.source.excerpt(time_arg.span)}' of net '{name}' depends on the "
                f"state; a net's time is an expression in the time and the parameters, e.g. {expected}",
                time_arg.span)
        self.scope.use_net(name, node.func.span)
        return Vector(net_output(name, i, t, states) for i in range(len(states)))
