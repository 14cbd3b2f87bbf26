"""The abstract syntax tree of a `.sde` spec: plain frozen dataclasses, each with its source span.

A :class:`Span` is 1-based: ``line``/``column`` of the first character and ``end_line``/
``end_column`` one past the last one (Lark's convention). Expressions are kept as written (no
SymPy yet); the semantic pass (:mod:`sdelang.model.build`) turns them into SymPy objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union


@dataclass(frozen=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: "Span") -> "Span":
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True)
class Ident:
    """A name as written, with its position."""

    name: str
    span: Span


# ----------------------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Number:
    """A numeric literal, text as written (``1``, ``.5``, ``1e-3``, ``1_000``)."""

    text: str
    span: Span

    @property
    def is_integer(self) -> bool:
        return not any(c in self.text for c in ".eE")


@dataclass(frozen=True)
class Name:
    ident: Ident

    @property
    def span(self) -> Span:
        return self.ident.span


@dataclass(frozen=True)
class BinaryOp:
    """``left op right`` with op one of ``+ - * / ^``; ``juxtaposed`` marks ``a*b dW`` products."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span
    juxtaposed: bool = False


@dataclass(frozen=True)
class UnaryOp:
    op: str  # "-" or "+"
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    func: Ident
    args: Tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class Index:
    target: "Expr"
    index: "Expr"
    span: Span


@dataclass(frozen=True)
class VectorLiteral:
    items: Tuple["Expr", ...]
    span: Span


Expr = Union[Number, Name, BinaryOp, UnaryOp, Call, Index, VectorLiteral]


# ----------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Interval:
    """``(lo, hi]`` and friends; ``lo``/``hi`` are expressions (``inf`` allowed)."""

    lo: Expr
    hi: Expr
    lo_closed: bool
    hi_closed: bool
    span: Span


@dataclass(frozen=True)
class TimeDecl:
    """``time s in [0, 1]``, and for a reversed model ``... reverses t = 1 - s`` (its time s is
    T - t of the model it reverses)."""

    name: Ident
    interval: Optional[Interval]
    span: Span
    reverses: Optional[Ident] = None
    reverses_expr: Optional["Expr"] = None


@dataclass(frozen=True)
class StateItem:
    name: Ident
    size: Optional[Expr]  # ``x[d]``: the vector size expression
    span: Span


@dataclass(frozen=True)
class StateDecl:
    items: Tuple[StateItem, ...]
    span: Span


@dataclass(frozen=True)
class ParamItem:
    name: Ident
    type: Optional[Ident]  # ``: int``
    default: Optional[Expr]
    interval: Optional[Interval]
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    items: Tuple[ParamItem, ...]
    span: Span


@dataclass(frozen=True)
class BrownianDecl:
    names: Tuple[Ident, ...]
    span: Span


@dataclass(frozen=True)
class LetDecl:
    """``let U = expr`` (``formals is None``) or ``let beta(t) = expr``."""

    name: Ident
    formals: Optional[Tuple[Ident, ...]]
    body: Expr
    span: Span


@dataclass(frozen=True)
class DensityDecl:
    name: Ident
    expr: Expr
    is_log: bool
    span: Span


@dataclass(frozen=True)
class NetDecl:
    name: Ident
    formals: Tuple[Ident, ...]
    span: Span


@dataclass(frozen=True)
class CalculusDecl:
    kind: Ident
    span: Span


@dataclass(frozen=True)
class LawDecl:
    """``init x ~ Normal(0, 1)`` / ``prior x ~ data``: ``args is None`` when written without ``()``."""

    which: str  # "init" | "prior"
    state: Ident
    law: Ident
    args: Optional[Tuple[Expr, ...]]
    span: Span


@dataclass(frozen=True)
class AssertDecl:
    kind: Ident
    target: Ident
    span: Span


@dataclass(frozen=True)
class Equation:
    """``dx = rhs``; ``lhs`` is the differential's name as written (``dx``)."""

    lhs: Ident
    rhs: Expr
    span: Span


Statement = Union[
    TimeDecl, StateDecl, ParamDecl, BrownianDecl, LetDecl, DensityDecl, NetDecl, CalculusDecl,
    LawDecl, AssertDecl, Equation,
]


@dataclass(frozen=True)
class Spec:
    """A whole file: ``model NAME { statements }``."""

    name: Ident
    statements: Tuple[Statement, ...]
    span: Span


# ----------------------------------------------------------------------------- nesting
_CHAINS = {"+": "+-", "-": "+-", "*": "*/", "/": "*/"}


def children(node) -> Tuple["Expr", ...]:
    """The expressions directly inside ``node`` (an expression, interval or statement)."""
    out = []
    for value in vars(node).values():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, (Number, Name, BinaryOp, UnaryOp, Call, Index, VectorLiteral, Interval,
                                 StateItem, ParamItem)):
                out.append(item)
    return tuple(out)


def spine(node: BinaryOp) -> Tuple[BinaryOp, ...]:
    """The nodes of a left-associated chain ``a + b - c`` (or ``a * b / c``), outermost first,
    found without recursion: the innermost node's ``left`` is the chain's first operand."""
    family = _CHAINS.get(node.op, node.op)
    nodes = []
    while isinstance(node, BinaryOp) and node.op in family:
        nodes.append(node)
        node = node.left
    return tuple(nodes)


def deepest(node):
    """(depth, node) of the most deeply nested expression under ``node``, counting a chain
    ``a + b + c`` (or ``a * b * c``) as one level, without recursion."""
    best = (0, node)
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > best[0]:
            best = (depth, current)
        if isinstance(current, BinaryOp) and current.op in _CHAINS:
            family = _CHAINS[current.op]
            for child in children(current):
                same = isinstance(child, BinaryOp) and child.op in family and child is current.left
                stack.append((child, depth if same else depth + 1))
        else:
            stack.extend((child, depth + 1) for child in children(current))
    return best
