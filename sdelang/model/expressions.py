"""Expression AST → SymPy, built node by node (never through ``sympify`` or ``eval``).

A value is a scalar SymPy expression or a :class:`Vector` (``grad(U)``, a net's output,
``[a, b]``). A vector of length 1 is used as a scalar wherever a scalar is needed, so
``grad(log(p))`` in a one-state model and ``score(x, t)`` in an elementwise model read as numbers.

Functions (:mod:`.calls`): exp log sqrt sin cos tanh, abs and sign of a real argument (:mod:`.functions`),
sigmoid(z) = 1/(1 + exp(-z)); grad(f) = (∂f/∂x_i)_i,
div(v) = Σ_i ∂v_i/∂x_i, laplacian(f) = Σ_i ∂²f/∂x_i², dot(u, v) = Σ_i u_i v_i, sum(v) = Σ_i v_i.
``log`` takes exponentials apart, log(a·exp(z)) = log(a) + z (exact for real z), so that
``log(p)`` of ``density p = exp(-U)`` is -U.

Constants stay real numbers within double precision: ``log(-2)``, ``sqrt(-1)``, ``3^5000`` or
``1e308*10`` are errors at the node that makes them, never a complex or infinite value later.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import sympy

from ..syntax import ast
from .calls import MAX_EXPANSIONS, CallLowering, log_of, sigmoid
from .differentials import Differentials, LinearForm
from .literals import DOUBLE_MAX, DOUBLE_TINY, number
from .scope import FUNCTION_ARITY, KINDS_READABLE, LetFunction, Scope
from .values import Value, Vector

__all__ = ["DOUBLE_MAX", "DOUBLE_TINY", "MAX_EXPANSIONS", "Lowering", "Value", "Vector", "log_of", "number", "sigmoid"]

_MAX_EXACT_EXPONENT = 10_000
_LOG10_DOUBLE_MAX = math.log10(float(DOUBLE_MAX))


class Lowering(CallLowering):
    """Lowers expressions in one context.

    ``names``: which declared kinds may be read ("all"; "params": parameters only, for time
    bounds and laws; "none": constants only, for parameter defaults and intervals).
    ``differentials``: the equation's placeholders, or None outside equations.
    ``locals``: a let function's formals bound to argument values.
    ``visible``: the lets and densities defined so far (name -> value or LetFunction).
    """

    def __init__(
        self,
        scope: Scope,
        *,
        names: str = "all",
        differentials: Optional[Differentials] = None,
        allow_inf: bool = False,
        locals: Optional[Dict[str, Value]] = None,
        visible: Optional[Dict[str, object]] = None,
        what: str = "here",
    ):
        self.scope = scope
        self.source = scope.source
        self.names = names
        self.differentials = differentials
        self.allow_inf = allow_inf
        self.locals = locals or {}
        self.visible = scope.values if visible is None else visible
        self.what = what

    def _error(self, message: str, span):
        return self.source.error(message, span)

    def _real_constant(self, value: sympy.Expr, node: ast.Expr) -> sympy.Expr:
        """``value``, unless it is a constant that is not a real number within double precision."""
        if isinstance(value, sympy.Expr) and value.is_number:
            text = self.source.excerpt(node.span)
            if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
                raise self._error(f"'{text}' is undefined or infinite", node.span)
            if value.is_real is False or value.has(sympy.I):
                raise self._error(f"'{text}' is not a real number (it is {sympy.sstr(value)})", node.span)
            if value.is_Number and abs(value) > DOUBLE_MAX:
                raise self._error(f"'{text}' is too large for double precision", node.span)
        return value

    # ------------------------------------------------------------------ entry points
    def value(self, node: ast.Expr) -> Value:
        method = getattr(self, "_" + type(node).__name__)
        return method(node)

    def scalar(self, node: ast.Expr) -> sympy.Expr:
        return self.as_scalar(self.value(node), node)

    def as_scalar(self, value: Value, node: ast.Expr) -> sympy.Expr:
        """A number (a vector of length 1 is one); inside an equation possibly a LinearForm."""
        if isinstance(value, Vector):
            if len(value) == 1:
                return value[0]
            raise self._error(
                f"'{self.source.excerpt(node.span)}' is a vector of length {len(value)} where a "
                "number is needed (index it with [i], or use sum/dot)",
                node.span,
            )
        return value

    def plain(self, value: Value, node: ast.Expr, where: str) -> Value:
        """``value``, which must not contain a differential (dt, dW) since it sits ``where``."""
        if isinstance(value, LinearForm):
            raise self._error(
                f"{value.labels} cannot appear inside {where}: an equation must be linear in "
                f"d{self.scope.time.name} and the dW's (each term a coefficient times one differential)",
                node.span,
            )
        return value

    def plain_scalar(self, node: ast.Expr, where: str) -> sympy.Expr:
        return self.plain(self.scalar(node), node, where)

    def vector(self, value: Value, node: ast.Expr, what: str) -> Vector:
        value = self.plain(value, node, what)
        if isinstance(value, Vector):
            return value
        if len(self.scope.states) == 1 and not self.scope.elementwise:
            return Vector((value,))
        raise self._error(f"{what} needs a vector, but '{self.source.excerpt(node.span)}' is a number", node.span)

    # ------------------------------------------------------------------ leaves
    def _Number(self, node: ast.Number) -> Value:
        return number(node, self.scope)

    def _Name(self, node: ast.Name) -> Value:
        ident = node.ident
        name = ident.name
        if name in self.locals:
            return self.locals[name]
        if name == "pi":
            return sympy.pi
        if name == "inf":
            if self.allow_inf:
                return sympy.oo
            raise self._error("'inf' may only end an interval, as in 'in (0, inf)'", ident.span)
        declared = self.scope.declared.get(name)
        if declared is not None:
            return self._declared(declared, ident)
        if self.differentials is not None:
            placeholder = self.differentials.lookup(ident)
            if placeholder is not None:
                return placeholder
        elif self._looks_differential(name):
            raise self._error(
                f"'{name}' cannot appear in {self.what}; differentials only multiply the terms of an "
                f"equation 'dx = ... d{self.scope.time.name} + ... dW'",
                ident.span,
            )
        if name in FUNCTION_ARITY:
            raise self._error(f"'{name}' is a function; call it as {name}(...)", ident.span)
        if any(name == "d" + s.name for s in self.scope.states):
            raise self._error(
                f"'{name}' is the differential of state '{name[1:]}'; it may only stand left of '='",
                ident.span,
            )
        hint = " (write exp(...) for the exponential)" if name == "e" else self.scope.suggestion(name, self.locals)
        raise self._error(f"unknown name '{name}'{hint}", ident.span)

    def _looks_differential(self, name: str) -> bool:
        if name == "d" + self.scope.time.name or name.startswith("dW"):
            return True
        return name.startswith("d") and any(b.name == name[1:] for b in self.scope.of_kind("brownian"))

    def _declared(self, declared, ident: ast.Ident) -> Value:
        kind, name = declared.kind, declared.name
        allowed = {"all": True, "params": kind == "param", "none": False}[self.names]
        if kind in ("state", "param", "time"):
            if not allowed:
                raise self._error(f"{self.what} cannot use {KINDS_READABLE[kind]} ('{name}')", ident.span)
            return declared.symbol
        if kind == "brownian":
            raise self._error(
                f"'{name}' is a Brownian motion; its increment is written 'd{name}'", ident.span
            )
        if kind == "net":
            raise self._error(f"'{name}' is a net; call it as {name}(states..., time)", ident.span)
        if name not in self.visible:
            raise self._error(
                f"'{name}' is used before its definition (line {declared.span.line})", ident.span
            )
        if not allowed:
            raise self._error(f"{self.what} cannot use {KINDS_READABLE[kind]} ('{name}')", ident.span)
        value = self.visible[name]
        if isinstance(value, LetFunction):
            n = len(value.formals)
            raise self._error(
                f"'{name}' is a function of {n} argument{'s' if n != 1 else ''}; call it as {name}(...)",
                ident.span,
            )
        return value

    def _VectorLiteral(self, node: ast.VectorLiteral) -> Value:
        return Vector(self.plain_scalar(item, "a vector") for item in node.items)

    # ------------------------------------------------------------------ operators
    def _UnaryOp(self, node: ast.UnaryOp) -> Value:
        value = self._arith_operand(node.operand)
        if node.op == "+":
            return value
        if isinstance(value, LinearForm):
            return value.scaled(sympy.S.NegativeOne)
        if isinstance(value, Vector):
            return Vector(-v for v in value)
        return -value

    def _arith_operand(self, node: ast.Expr) -> Value:
        value = self.value(node)
        if isinstance(value, Vector) and len(value) == 1:
            return value[0]
        return value

    def _BinaryOp(self, node: ast.BinaryOp) -> Value:
        """A chain ``a + b - c`` (or ``a * b / c``) is lowered left to right without recursion, so a
        sum of thousands of terms is no deeper than one term."""
        nodes = ast.spine(node)
        value = self._arith_operand(nodes[-1].left)
        for step in reversed(nodes):
            value = self._combine(step, value, self._arith_operand(step.right))
        return value

    def _combine(self, node: ast.BinaryOp, left: Value, right: Value) -> Value:
        """``left node.op right`` for lowered operands (errors located at ``node``)."""
        op = node.op
        if isinstance(left, LinearForm) or isinstance(right, LinearForm):
            return self._linear(op, left, right, node)
        lv, rv = isinstance(left, Vector), isinstance(right, Vector)
        if op in "+-":
            if lv != rv:
                raise self._error(f"cannot {'add' if op == '+' else 'subtract'} a vector and a number", node.span)
            if lv:
                if len(left) != len(right):
                    raise self._error(f"vectors of lengths {len(left)} and {len(right)} do not match", node.span)
                return Vector(a + b if op == "+" else a - b for a, b in zip(left, right))
            return self._real_constant(left + right if op == "+" else left - right, node)
        if op == "*":
            if lv and rv:
                raise self._error("cannot multiply two vectors; use dot(u, v)", node.span)
            if lv:
                return Vector(a * right for a in left)
            if rv:
                return Vector(left * b for b in right)
            return self._real_constant(left * right, node)
        if op == "/":
            if rv:
                raise self._error("cannot divide by a vector", node.right.span)
            if right == 0:
                raise self._error("division by zero", node.right.span)
            if lv:
                return Vector(a / right for a in left)
            return self._real_constant(left / right, node)
        # power
        if lv or rv:
            raise self._error("a power needs numbers, not vectors", node.span)
        return self._power(left, right, node)

    def _linear(self, op: str, left: Value, right: Value, node: ast.BinaryOp) -> LinearForm:
        """Arithmetic that keeps a form linear in the differentials, or an error at ``node``."""
        text = self.source.excerpt(node.span)
        for side, side_node in ((left, node.left), (right, node.right)):
            if isinstance(side, Vector):
                self.as_scalar(side, side_node)  # a vector of length > 1 where a number is needed
        lf, rf = isinstance(left, LinearForm), isinstance(right, LinearForm)
        if op in "+-":
            sign = 1 if op == "+" else -1
            if lf:
                return left.plus(right, sign)
            return right.scaled(sympy.Integer(sign)).plus(left)
        if op == "*":
            if lf and rf:
                raise self._error(
                    f"'{text}' multiplies {left.labels} by {right.labels}: an equation must be linear "
                    f"in d{self.scope.time.name} and the dW's",
                    node.span,
                )
            return left.scaled(right) if lf else right.scaled(left)
        if op == "/" and not rf:
            if right == 0:
                raise self._error("division by zero", node.right.span)
            return left.scaled(1 / right)
        form = right if rf else left
        verb = "divides by" if op == "/" else "takes a power of"
        raise self._error(
            f"'{text}' {verb} {form.labels}: an equation must be linear in d{self.scope.time.name} "
            "and the dW's",
            node.span,
        )

    def _power(self, base: sympy.Expr, exponent: sympy.Expr, node: ast.BinaryOp) -> sympy.Expr:
        if base == 0 and exponent.is_number and exponent.is_negative:
            raise self._error("division by zero (0 to a negative power)", node.span)
        if (
            base.is_Rational and exponent.is_Rational and abs(exponent) > _MAX_EXACT_EXPONENT
            and base not in (0, 1, -1)
        ):
            raise self._error("this power is too large to compute exactly", node.span)
        if base.is_Number and exponent.is_Number and base not in (0, 1, -1):
            magnitude = float(exponent) * math.log10(abs(float(base))) if abs(base) <= DOUBLE_MAX else math.inf
            if abs(magnitude) > _LOG10_DOUBLE_MAX + 16:
                size = "large" if magnitude > 0 else "small"
                raise self._error(f"'{self.source.excerpt(node.span)}' is too {size} for double precision "
                                  f"(about 10^{magnitude:.0f})", node.span)
        if exponent.is_Number and abs(exponent) > DOUBLE_MAX:
            raise self._error("this exponent is too large for double precision", node.span)
        result = base ** exponent
        if result.has(sympy.zoo, sympy.nan):
            raise self._error(f"'{self.source.excerpt(node.span)}' is undefined", node.span)
        if result.is_Float and abs(result) > DOUBLE_MAX:
            raise self._error("this power is too large for double precision", node.span)
        return self._real_constant(result, node)

    # ------------------------------------------------------------------ indexing
    def _Index(self, node: ast.Index) -> Value:
        target = self.plain(self.value(node.target), node.target, "an indexed expression")
        position = self.plain_scalar(node.index, "an index")
        if not position.is_Integer:
            raise self._error(
                f"an index must be an integer constant, got '{self.source.excerpt(node.index.span)}'",
                node.index.span,
            )
        if not isinstance(target, Vector):
            raise self._error(
                f"'{self.source.excerpt(node.target.span)}' is a number and cannot be indexed", node.span
            )
        i = int(position)
        if not 0 <= i < len(target):
            raise self._error(
                f"index {i} is out of range for a vector of length {len(target)} (indices start at 0)",
                node.index.span,
            )
        return target[i]

