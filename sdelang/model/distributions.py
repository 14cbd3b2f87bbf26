"""Statements about distributions: initial laws and priors (``init x ~ Normal(0, 1)``, ``prior x ~
data``) and stationarity assertions (``assert stationary p``)."""
from __future__ import annotations

from ..errors import did_you_mean
from ..syntax import ast
from .parts import Assertion, Distribution
from .scope import KINDS_READABLE, Declaration


class DistributionPass:
    """The methods of the model builder that read laws and assertions."""

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
        return KINDS_READABLE[declared.kind]
