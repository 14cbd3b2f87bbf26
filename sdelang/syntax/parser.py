"""Text → AST: the Lark LALR parser (:mod:`.grammar`) and the tree → :mod:`ast` conversion.

``parse_spec(text, path)`` returns an :class:`ast.Spec` or raises :class:`SpecError` with the
file, line, column, the source line and what was expected there. Nothing of the text is ever
evaluated: numbers stay strings until the semantic pass builds SymPy numbers from them.
"""
from __future__ import annotations

from typing import Optional

from lark import Token, v_args
from lark.visitors import Transformer_NonRecursive
from lark.exceptions import UnexpectedInput, VisitError

from ..errors import SpecError, normalize_newlines, source_lines
from . import ast
from .grammar import lark_parser
from .syntax_errors import syntax_error

#: The deepest nesting of expressions (function calls, powers, signs, brackets of operators)
#: accepted; sums and products of any length count as one level.
MAX_NESTING = 100


def _span(meta) -> ast.Span:
    return ast.Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(token: Token) -> ast.Span:
    return ast.Span(token.line, token.column, token.end_line, token.end_column)


def _ident(token: Token) -> ast.Ident:
    return ast.Ident(str(token), _token_span(token))


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Lark parse tree → :mod:`sdelang.syntax.ast` nodes (one method per grammar rule)."""

    # ------------------------------------------------------------------ top level
    def start(self, meta, children):
        (model,) = [c for c in children if isinstance(c, ast.Spec)]
        return model

    def model(self, meta, children):
        name, *statements = children
        return ast.Spec(_ident(name), tuple(s for s in statements if s is not None), _span(meta))

    # ------------------------------------------------------------------ statements
    def time_decl(self, meta, children):
        name, interval, original, original_expr = children
        return ast.TimeDecl(_ident(name), interval, _span(meta),
                            _ident(original) if original is not None else None, original_expr)

    def state_decl(self, meta, children):
        return ast.StateDecl(tuple(children), _span(meta))

    def state_item(self, meta, children):
        name, size = children
        return ast.StateItem(_ident(name), size, _span(meta))

    def param_decl(self, meta, children):
        return ast.ParamDecl(tuple(children), _span(meta))

    def param_item(self, meta, children):
        name, type_, default, interval = children
        return ast.ParamItem(
            _ident(name), _ident(type_) if type_ is not None else None, default, interval, _span(meta)
        )

    def brownian_decl(self, meta, children):
        return ast.BrownianDecl(tuple(_ident(c) for c in children), _span(meta))

    def let_decl(self, meta, children):
        name, formals, body = children
        return ast.LetDecl(_ident(name), formals, body, _span(meta))

    def formals(self, meta, children):
        return tuple(_ident(c) for c in children if c is not None)

    def density_decl(self, meta, children):
        keyword, name, expr = children
        return ast.DensityDecl(_ident(name), expr, str(keyword) == "log_density", _span(meta))

    def net_decl(self, meta, children):
        name, formals = children
        return ast.NetDecl(_ident(name), formals, _span(meta))

    def calculus_decl(self, meta, children):
        (kind,) = children
        return ast.CalculusDecl(_ident(kind), _span(meta))

    def law_decl(self, meta, children):
        keyword, state, (law, args) = children
        return ast.LawDecl(str(keyword), _ident(state), law, args, _span(meta))

    def law(self, meta, children):
        name, args = children
        if args is None and meta.end_pos > name.end_pos:  # written as `Normal()`
            args = ()
        return (_ident(name), args)

    def assert_decl(self, meta, children):
        kind, target = children
        return ast.AssertDecl(_ident(kind), _ident(target), _span(meta))

    def equation(self, meta, children):
        lhs, rhs = children
        return ast.Equation(_ident(lhs), rhs, _span(meta))

    def interval(self, meta, children):
        opening, lo, _comma, hi, closing = children
        return ast.Interval(lo, hi, str(opening) == "[", str(closing) == "]", _span(meta))

    # ------------------------------------------------------------------ expressions
    def arguments(self, meta, children):
        return tuple(children)

    def number(self, meta, children):
        (token,) = children
        return ast.Number(str(token), _token_span(token))

    def name(self, meta, children):
        (token,) = children
        return ast.Name(_ident(token))

    def call(self, meta, children):
        func, args = children
        return ast.Call(_ident(func), args if args is not None else (), _span(meta))

    def vector(self, meta, children):
        (items,) = children
        return ast.VectorLiteral(items, _span(meta))

    def index(self, meta, children):
        target, index = children
        return ast.Index(target, index, _span(meta))

    def _binary(op, juxtaposed=False):
        def method(self, meta, children):
            left, right = children
            return ast.BinaryOp(op, left, right, _span(meta), juxtaposed)

        return method

    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    juxt = _binary("*", juxtaposed=True)
    del _binary

    def pow(self, meta, children):
        base, _op, exponent = children
        return ast.BinaryOp("^", base, exponent, _span(meta))

    def neg(self, meta, children):
        (operand,) = children
        return ast.UnaryOp("-", operand, _span(meta))

    def pos(self, meta, children):
        (operand,) = children
        return ast.UnaryOp("+", operand, _span(meta))


_TO_AST = _ToAst()


def parse_spec(text: str, path: Optional[str] = None) -> ast.Spec:
    """The AST of a `.sde` spec, or SpecError (with path, line, column and what was expected)."""
    if not isinstance(text, str):
        raise SpecError(f"a spec is text, got {type(text).__name__}", path=path)
    if text.startswith("\ufeff"):  # a byte-order mark is no part of the spec
        text = text[1:]
    text = normalize_newlines(text)
    lines = source_lines(text)
    if all(not line.strip() or line.lstrip().startswith("#") for line in lines):
        raise SpecError(
            "the spec is empty (nothing but blanks and comments); expected 'model NAME { ... }'",
            path=path, line=1, column=1, source_line=lines[0] if lines else "",
        )
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput as exc:
        raise syntax_error(exc, text, path) from None
    except RecursionError:
        raise SpecError("the spec is nested too deeply to parse", path=path, line=1, column=1) from None
    try:
        spec = _TO_AST.transform(tree)  # iterative: any tree the grammar accepts
    except VisitError as exc:
        raise exc.orig_exc
    for statement in spec.statements:
        depth, node = ast.deepest(statement)
        if depth > MAX_NESTING:
            span = getattr(node, "span", statement.span)
            raise SpecError(
                f"this expression is nested more than {MAX_NESTING} levels deep (a chain a + b + ... "
                "counts as one level); write it with lets", path=path, line=span.line, column=span.column,
                source_line=_line(text, span.line))
    return spec


def _line(text: str, number: int) -> Optional[str]:
    lines = source_lines(text)
    return lines[number - 1] if 1 <= number <= len(lines) else None
