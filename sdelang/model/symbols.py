"""Symbolic building blocks shared by every stage: named symbol tuples and learned-network outputs."""
from __future__ import annotations

from typing import Iterable, Union

import sympy


#: The built-in learned network ``score(x, t)`` (∇ log p_t) that reverse-time and probability-flow
#: models call; in a spec it names nothing but a net.
SCORE_NET = "score"


class SymbolTuple(tuple):
    """A tuple of SymPy symbols that can also be indexed by name: ``m.params["theta"]``."""

    def __new__(cls, symbols: Iterable[sympy.Symbol] = ()):
        return super().__new__(cls, tuple(symbols))

    def __getitem__(self, key: Union[int, slice, str]):
        if isinstance(key, str):
            for s in self:
                if s.name == key:
                    return s
            raise KeyError(key)
        return super().__getitem__(key)

    def __contains__(self, item) -> bool:
        if isinstance(item, str):
            return any(s.name == item for s in self)
        return super().__contains__(item)

    @property
    def names(self) -> tuple:
        return tuple(s.name for s in self)


class NetOutput(sympy.Function):
    """Component ``index`` of the learned network ``name`` evaluated at state ``x`` and time ``t``.

    ``NetOutput(name, index, t, *states)`` stands for ``net(x, t)[index]`` where ``x`` stacks
    ``states``. ``name`` is a SymPy Symbol, ``index`` a SymPy Integer. In an elementwise vector model
    (``state x[d]``) ``states == (x,)`` and index 0 means "the component of the output that belongs to
    the current component of x". The time argument may be any expression (a reverse-time model calls
    its networks at ``t = T - s``). Derivatives with respect to the states stay unevaluated
    (``Derivative(NetOutput(...), x)``): backends evaluate them by automatic differentiation.
    """

    @classmethod
    def eval(cls, *args):
        if len(args) < 3:
            raise TypeError("NetOutput(name, index, t, *states) needs at least three arguments")
        return None

    @property
    def net_name(self) -> str:
        return self.args[0].name

    @property
    def index(self) -> int:
        return int(self.args[1])

    @property
    def time_arg(self) -> sympy.Expr:
        return self.args[2]

    @property
    def state_args(self) -> tuple:
        return tuple(self.args[3:])

    def _latex(self, printer):
        inner = ", ".join(printer._print(a) for a in self.state_args + (self.time_arg,))
        name = printer._print(sympy.Symbol(self.net_name))
        return rf"{name}\left({inner}\right)_{{{self.index}}}"

    def _sympystr(self, printer):
        inner = ", ".join(printer._print(a) for a in self.state_args + (self.time_arg,))
        return f"{self.net_name}({inner})[{self.index}]"


def net_output(name: str, index: int, time: sympy.Expr, states: Iterable[sympy.Expr]) -> NetOutput:
    """``net(x, t)[index]`` as a SymPy expression."""
    return NetOutput(sympy.Symbol(name), sympy.Integer(index), time, *tuple(states))


def net_outputs(expr: sympy.Basic) -> set:
    """Every NetOutput occurring in ``expr`` (derivatives of them included)."""
    return set(expr.atoms(NetOutput))
