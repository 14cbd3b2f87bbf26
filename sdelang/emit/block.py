"""The body of one generated method, the same for every backend: parameter locals, the time,
state unpacking, network calls, the common subexpressions of :func:`~sdelang.emit.lower.lower_block`
as named temporaries, then the output expressions.

What differs between array frameworks (how a parameter is read, how the time is converted, how a
network is called, how a constant is broadcast, which functions print) is a :class:`Target`,
subclassed by each backend, as SymPy has one printer per language.
"""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import sympy

from ..errors import EmitError
from .lower import Block, lower_block
from .names import NameTable
from .printer import ArrayExprPrinter, print_block
from .source import INDENT, method


@dataclass(frozen=True)
class BlockCode:
    """Lines of a method body and the code of each output (state-shaped or broadcast)."""

    lines: Tuple[str, ...]
    outputs: Tuple[str, ...]


@dataclass(frozen=True)
class TimeSetup:
    """How a block sees the time: lines converting it, its name in expressions and in network
    calls, and whether it is an array (else a Python number)."""

    lines: Tuple[str, ...] = ()
    name: str = "t"
    net_name: str = "t"
    array: bool = True
    used: bool = False


class Target:
    """The statements of one array framework's generated code (a backend subclasses it)."""

    #: The expression printer: an :class:`ArrayExprPrinter` subclass with its namespaces.
    printer_class = ArrayExprPrinter

    def printer(self, names: Dict[sympy.Symbol, str], arrays) -> ArrayExprPrinter:
        return self.printer_class(names=names, array_symbols=arrays)

    def param_value(self, name: str, local: str) -> str:
        """Code reading parameter ``name`` (Python name ``local``) from ``self``."""
        raise NotImplementedError

    def time_setup(self, model, used: bool, has_nets: bool) -> TimeSetup:
        raise NotImplementedError

    def call_net(self, model, table: NameTable, net: str, time_code: str, time: TimeSetup) -> str:
        """One evaluation of network ``net`` on the whole state ``y``."""
        raise NotImplementedError

    def broadcast(self, model, code: str) -> str:
        """``code`` (constant across the batch) shaped like one state component."""
        raise NotImplementedError

    def broadcast_lines(self, model) -> List[str]:
        """Lines a block starts with when one of its outputs is broadcast."""
        return []

    def stack(self, codes: Sequence[str], axis: int) -> str:
        raise NotImplementedError

    def stack_state(self, model, outputs: Sequence[str]) -> str:
        """(..., n) from per-state outputs (an elementwise model's single output is already the state)."""
        return outputs[0] if model.elementwise else self.stack(outputs, -1)


def _used_symbols(block: Block) -> set:
    used = set()
    for _, e in block.temps:
        used |= e.free_symbols
    for e in block.outputs:
        used |= e.free_symbols
    for call in block.net_calls:
        used |= call.time.free_symbols
    return used


def _varying_outputs(block: Block, extra_arrays: set) -> Tuple[bool, ...]:
    """Which outputs vary across the batch: they depend on the state (as lowered), a network
    output or an extra array argument, directly or through a temporary."""
    varying = set(extra_arrays) | {sympy.Symbol(c.var) for c in block.net_calls}
    varying |= {sympy.Symbol(v) for c in block.net_calls for v, _ in c.components}
    for name, e in block.temps:
        if e.free_symbols & varying:
            varying.add(sympy.Symbol(name))
    return tuple(dep or bool(e.free_symbols & varying) for dep, e in zip(block.outputs_depend_on_state, block.outputs))


def param_lines(table: NameTable, target: Target, used) -> List[str]:
    """``local = <parameter>`` for every parameter among the symbols ``used``."""
    return [f"{INDENT}{local} = {target.param_value(name, local)}" for name, local in table.params
            if sympy.Symbol(name) in used]


def block_code(model, table: NameTable, exprs: Sequence[sympy.Expr], target: Target, *,
               arrays: Optional[Dict[sympy.Symbol, str]] = None,
               scalars: Optional[Dict[sympy.Symbol, str]] = None) -> BlockCode:
    """Code computing ``exprs`` from ``t``, ``y`` and extra symbols: ``arrays`` (noise increments,
    a vector ``v``) and Python ``scalars`` (the step size), each given with its code.

    Every free symbol must be a state, a parameter, the time or an extra symbol: anything else
    raises EmitError instead of being printed.
    """
    arrays = dict(arrays or {})
    block = lower_block(model, exprs)
    names = table.symbol_names()
    names.update(arrays)
    names.update(scalars or {})
    internal = {sympy.Symbol(n) for n, _ in block.temps}
    internal |= {sympy.Symbol(c.var) for c in block.net_calls}
    internal |= {sympy.Symbol(v) for c in block.net_calls for v, _ in c.components}
    used = _used_symbols(block)
    unknown = used - set(names) - internal - {model.time}
    if unknown:
        raise EmitError(f"model {model.name!r}: unknown symbols {sorted(map(str, unknown))} in an expression")

    lines = param_lines(table, target, used)
    time = target.time_setup(model, model.time in used, bool(block.net_calls))
    lines += list(time.lines)
    for k, (sym, local) in enumerate(table.states):
        if sym in used:
            lines.append(f"{INDENT}{local} = {'y' if model.elementwise else f'y[..., {k}]'}")

    array_symbols = {sym for sym, _ in table.states} | set(arrays)
    if time.array:
        array_symbols.add(model.time)
    printer = target.printer({**names, model.time: time.name}, array_symbols)
    time_printer = None
    if time.net_name != time.name:
        time_printer = target.printer({**names, model.time: time.net_name}, array_symbols)

    varies = _varying_outputs(block, set(arrays))
    block = dataclasses.replace(block, outputs_depend_on_state=varies)
    body, outputs = print_block(
        block, printer,
        lambda net, time_code: target.call_net(model, table, net, time_code, time),
        lambda code: target.broadcast(model, code), indent=INDENT, time_printer=time_printer)
    if not all(varies):
        lines = target.broadcast_lines(model) + lines
    return BlockCode(tuple(lines + body), tuple(outputs))


def scalar_code(model, table: NameTable, target: Target, exprs: Sequence[sympy.Expr],
                what: str) -> Tuple[List[str], List[str]]:
    """Lines reading the parameters and the code of each parameter-only expression (a time bound,
    a prior's loc and scale); EmitError when one depends on anything else."""
    exprs = [sympy.sympify(e) for e in exprs]
    params = {sympy.Symbol(name) for name, _ in table.params}
    used = set().union(*(e.free_symbols for e in exprs))
    if used - params:
        raise EmitError(f"{what} of {model.name!r} depends on {sorted(map(str, used - params))}, "
                        "not only parameters")
    printer = target.printer(table.symbol_names(), set())
    return param_lines(table, target, used), [printer.doprint(e) for e in exprs]


def scalar_property(model, table: NameTable, target: Target, label: str, expr, doc: str,
                    wrap: str = "") -> List[str]:
    """``@property label(self)``: a parameter-only value (a time bound, a size), ``wrap``-ped in a
    conversion such as ``float`` when given."""
    lines, (code,) = scalar_code(model, table, target, [sympy.sympify(expr)], label)
    value = f"{wrap}({code})" if wrap else code
    return ["    @property"] + method(f"{label}(self)", doc, lines + [f"{INDENT}return {value}"])


def vector_argument(model, arg: str, count: int, prefix: str):
    """Symbols for the components of a vector argument ``arg`` of the generated method (an
    elementwise model: one symbol for the whole array), their code names, and the lines that
    unpack them. The symbols' names hold a ``$``: they never equal a user symbol."""
    if model.elementwise:
        sym = sympy.Symbol("$" + prefix)
        return [sym], {sym: prefix}, ([] if prefix == arg else [f"{INDENT}{prefix} = {arg}"])
    syms = [sympy.Symbol(f"${prefix}{j}") for j in range(count)]
    codes = {s: f"{prefix}{j}" for j, s in enumerate(syms)}
    return syms, codes, [f"{INDENT}{prefix}{j} = {arg}[..., {j}]" for j in range(count)]


def noise_products(model, diagonal: bool, vector: Sequence[sympy.Symbol]) -> List[sympy.Expr]:
    """(G v)_i for every state: G_ii v_i for diagonal noise, else Σ_j G_ij v_j."""
    G = model.diffusion_matrix
    if diagonal:
        return [G[i, i] * vector[i] for i in range(model.n_states)]
    return [sum((G[i, j] * vector[j] for j in range(model.n_brownians)), sympy.S.Zero)
            for i in range(model.n_states)]


def plus_increment(model, target: Target, outputs: Sequence[str]) -> str:
    """``y + (Δ)``: the state plus the increment, the increment evaluated first (an elementwise
    model's bare sum is parenthesized, so that y + a - b is never (y + a) - b)."""
    delta = target.stack_state(model, outputs)
    try:
        atomic = isinstance(ast.parse(delta, mode="eval").body, (ast.Call, ast.Name, ast.Attribute, ast.Subscript))
    except SyntaxError:
        atomic = False
    return f"y + {delta}" if atomic else f"y + ({delta})"


def euler_increments(model, diagonal: bool, h: sympy.Symbol, dw: Sequence[sympy.Symbol]) -> List[sympy.Expr]:
    """Δ of one Euler–Maruyama step, per state: f h + G dw (an ODE, or no ``dw``: f h). The
    generated step returns y + Δ, so the increment is never re-associated with y."""
    drift = [f * h for f in model.drift_matrix]
    if model.is_ode or not dw:
        return drift
    return [f + p for f, p in zip(drift, noise_products(model, diagonal, dw))]
