"""Equations: the right side E = f dt + Σ_k g_k dW_k of ``dx_i = E`` gives row i of the drift (f)
and of the diffusion (g_k in the column of W_k); a term without a differential is located."""
from __future__ import annotations

from typing import Optional

import sympy

from ..errors import SpecError, did_you_mean
from ..syntax import ast
from .differentials import LinearForm, additive_terms
from .expressions import Lowering
from .symbols import SCORE_NET


class EquationPass:
    """The methods of the model builder that read the equations."""

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
