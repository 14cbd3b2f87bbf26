"""Sizes and scans of SymPy expressions that stay linear in the size of the expression *graph*.

``let a2 = a1 * (a1 + 1)`` ... ``let a40 = a39 * (a39 + 1)`` is 40 small nodes in memory (SymPy
shares the subexpressions), but a tree walk (``expr.atoms``, ``expr.has``, ``diff``, printing)
visits 2^40 of them. The front end therefore measures expressions on the graph: each distinct
node is visited once, and the tree size is summed with memoisation, so a spec whose expansion is
too large is refused with a located message instead of hanging.
"""
from __future__ import annotations

from typing import Dict, Iterator

import sympy

#: Largest expanded size (tree nodes) of one let, density or equation that the front end accepts;
#: override with the environment variable SDELANG_MAX_EXPRESSION_SIZE.
DEFAULT_MAX_SIZE = 200_000


def max_expression_size() -> int:
    import os

    raw = os.environ.get("SDELANG_MAX_EXPRESSION_SIZE", "")
    return int(raw) if raw.strip().isdigit() else DEFAULT_MAX_SIZE


def distinct_nodes(expr) -> Iterator[sympy.Basic]:
    """Every distinct subexpression of ``expr`` once (an iterative walk of the graph)."""
    if not isinstance(expr, sympy.Basic):
        return
    seen = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        key = id(node)
        if key in seen:
            continue
        seen.add(key)
        yield node
        stack.extend(node.args)


def tree_size(expr, limit: int) -> int:
    """The number of nodes of ``expr`` written out as a tree, capped at ``limit + 1`` (computed on
    the graph by a post-order walk, in time linear in its distinct nodes)."""
    if not isinstance(expr, sympy.Basic):
        return 1
    cap = limit + 1
    sizes: Dict[int, int] = {}
    stack = [(expr, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if children_done:
            sizes[key] = min(cap, 1 + sum(sizes[id(c)] for c in node.args))
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in node.args if id(c) not in sizes)
    return sizes[id(expr)]


def has_any(expr, *types) -> bool:
    """True when a node of one of ``types`` (or equal to one of them) occurs in ``expr``."""
    classes = tuple(t for t in types if isinstance(t, type))
    values = [t for t in types if not isinstance(t, type)]
    for node in distinct_nodes(expr):
        if (classes and isinstance(node, classes)) or any(node == v for v in values):
            return True
    return False


def brief(expr, limit: int = 400) -> str:
    """``sympy.sstr(expr)`` for an expression of at most ``limit`` nodes, else a short description
    (printing a huge expression only to put it in a message or a comment costs more than the work)."""
    size = tree_size(expr, limit)
    if size > limit:
        return f"<an expression of more than {limit} terms>"
    return sympy.sstr(expr)
