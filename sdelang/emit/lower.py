"""Lowering a Model's expressions to straight-line code that any array backend can print.

A :class:`Block` is what one generated function computes: learned-network calls first (each network
evaluated once per distinct time argument on the whole state ``y``), then common subexpressions
(``sympy.cse``), then the outputs. Backends print a Block with their own expression printer; the
lowering itself is framework-free and deterministic (same Model, same Block, same bytes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import sympy

from ..model.symbols import NetOutput


@dataclass(frozen=True)
class NetCall:
    """``var = net(y, time)``: one evaluation of a learned network on the whole state."""

    var: str
    net: str
    time: sympy.Expr
    components: Tuple[Tuple[str, int], ...]  # (variable, index) unpacked from var[..., index]


@dataclass(frozen=True)
class Block:
    """Straight-line code: network calls, then ``temps`` (name, expr) in order, then ``outputs``.

    ``outputs_depend_on_state[k]`` is False when output k is constant across the batch (a backend
    broadcasts those to the state's shape).
    """

    net_calls: Tuple[NetCall, ...]
    temps: Tuple[Tuple[str, sympy.Expr], ...]
    outputs: Tuple[sympy.Expr, ...]
    outputs_depend_on_state: Tuple[bool, ...]
    uses_time: bool
    params_used: Tuple[str, ...]


def _replace_net_outputs(exprs: Sequence[sympy.Expr], elementwise: bool, prefix: str):
    """Replace every NetOutput by a plain symbol; group them into one NetCall per (net, time)."""
    calls: Dict[Tuple[str, sympy.Expr], Dict[int, str]] = {}
    order: List[Tuple[str, sympy.Expr]] = []
    for e in exprs:
        for node in sorted(e.atoms(NetOutput), key=sympy.default_sort_key):
            key = (node.net_name, node.time_arg)
            if key not in calls:
                calls[key] = {}
                order.append(key)
            calls[key].setdefault(node.index, "")
    net_calls = []
    mapping = {}
    for k, key in enumerate(order):
        var = f"{prefix}net{k}"
        comps = []
        for index in sorted(calls[key]):
            comp_var = var if elementwise else f"{var}_{index}"
            if not elementwise:
                comps.append((comp_var, index))
            calls[key][index] = comp_var
        net_calls.append(NetCall(var, key[0], key[1], tuple(comps)))
    for e in exprs:
        for node in e.atoms(NetOutput):
            mapping[node] = sympy.Symbol(calls[(node.net_name, node.time_arg)][node.index])
    return [e.xreplace(mapping) for e in exprs], tuple(net_calls)


def lower_block(model, exprs: Iterable[sympy.Expr], prefix: str = "_") -> Block:
    """CSE-lowered straight-line code computing ``exprs`` for ``model`` (states, params, time)."""
    exprs = [sympy.sympify(e) for e in exprs]
    if any(e.has(sympy.Derivative) for e in exprs):
        raise ValueError("cannot generate code for an unevaluated derivative; evaluate it first")
    replaced, net_calls = _replace_net_outputs(exprs, model.elementwise, prefix)
    temps, reduced = sympy.cse(replaced, symbols=sympy.numbered_symbols(prefix + "c"), order="canonical")
    states = set(model.states)
    net_vars = {sympy.Symbol(v) for call in net_calls for v, _ in call.components} | {
        sympy.Symbol(call.var) for call in net_calls
    }
    state_like = states | net_vars
    depends: Dict[sympy.Symbol, bool] = {}
    for sym, e in temps:
        depends[sym] = bool(e.free_symbols & state_like) or any(depends.get(s, False) for s in e.free_symbols)
    out_dep = tuple(
        bool(e.free_symbols & state_like) or any(depends.get(s, False) for s in e.free_symbols)
        for e in reduced
    )
    all_syms = set().union(*(e.free_symbols for _, e in temps), *(e.free_symbols for e in reduced),
                           *(c.time.free_symbols for c in net_calls))
    params_used = tuple(p.name for p in model.parameters if p.symbol in all_syms)
    return Block(
        net_calls=net_calls,
        temps=tuple((s.name, e) for s, e in temps),
        outputs=tuple(reduced),
        outputs_depend_on_state=out_dep,
        uses_time=model.time in all_syms,
        params_used=params_used,
    )


def is_diagonal(model) -> bool:
    """True when G is square and diagonal (or the model is elementwise): torchsde's "diagonal"."""
    G = model.diffusion_matrix
    n, m = G.shape
    if model.elementwise:
        return True
    return n == m and all(G[i, j] == 0 for i in range(n) for j in range(m) if i != j)


def numeric_params(model) -> Dict[str, float]:
    """Parameter values as Python numbers (ints for ``: int`` params), for generated defaults."""
    out = {}
    for p in model.parameters:
        if p.value is None:
            continue
        out[p.name] = int(p.value) if p.integer else float(p.value)
    return out
