"""The body of one generated method: parameter locals, time, state unpacking, network calls,
common subexpressions and the output expressions (``sdelang.emit.lower`` + ``printer``).

Two flavours of time: ``time_kind="tensor"`` (torchsde / torchdiffeq pass ``t`` as a tensor; it
is converted once with ``runtime.as_time``) and ``time_kind="float"`` (the fused simulation step
gets ``t`` as a Python float, so time-only subexpressions are printed with ``math``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import sympy

from sdelang.emit.lower import lower_block
from sdelang.errors import EmitError
from sdelang.emit.printer import ArrayExprPrinter, print_block

from sdelang.emit.names import NameTable

INDENT = "        "


@dataclass(frozen=True)
class BlockCode:
    """Lines of a method body and the code of each output (state-shaped or broadcast)."""

    lines: Tuple[str, ...]
    outputs: Tuple[str, ...]


def _used_symbols(block) -> set:
    used = set()
    for _, e in block.temps:
        used |= e.free_symbols
    for e in block.outputs:
        used |= e.free_symbols
    for call in block.net_calls:
        used |= call.time.free_symbols
    return used


def _varying_outputs(block, extra_arrays: set) -> Tuple[bool, ...]:
    """Which outputs vary across the batch: they depend on the state (as lowered), a network
    output or an extra array argument, directly or through a temporary."""
    varying = set(extra_arrays) | {sympy.Symbol(c.var) for c in block.net_calls}
    varying |= {sympy.Symbol(v) for c in block.net_calls for v, _ in c.components}
    for name, e in block.temps:
        if e.free_symbols & varying:
            varying.add(sympy.Symbol(name))
    return tuple(dep or bool(e.free_symbols & varying) for dep, e in zip(block.outputs_depend_on_state, block.outputs))


def block_code(model, table: NameTable, exprs: Sequence[sympy.Expr], *, time_kind: str,
               extra_arrays: Dict[sympy.Symbol, str] = None,
               extra_scalars: Dict[sympy.Symbol, str] = None) -> BlockCode:
    """Code computing ``exprs`` from ``t``, ``y`` and extra symbols: arrays (noise increments,
    a vector ``v``) and Python scalars (the step size), each given with its code.

    Every free symbol must be a state, a parameter, the time or an extra symbol: anything else
    (a name that did not pass validation) raises ValueError instead of being printed.
    """
    extra_arrays = dict(extra_arrays or {})
    block = lower_block(model, exprs)
    names = table.symbol_names()
    names[model.time] = "t"
    names.update(extra_arrays)
    names.update(extra_scalars or {})
    internal = {sympy.Symbol(n) for n, _ in block.temps}
    internal |= {sympy.Symbol(c.var) for c in block.net_calls}
    internal |= {sympy.Symbol(v) for c in block.net_calls for v, _ in c.components}
    used = _used_symbols(block)
    unknown = used - set(names) - internal
    if unknown:
        raise EmitError(f"model {model.name!r}: unknown symbols {sorted(map(str, unknown))} in an expression")

    lines: List[str] = []
    for name, local in table.params:
        if sympy.Symbol(name) in used:
            lines.append(f"{INDENT}{local} = self.param_values[{name!r}]")
    time_used = model.time in used
    if time_kind == "tensor" and time_used:
        lines.append(f"{INDENT}t = runtime.as_time(t, y, {model.elementwise!r})")
    for sym, local in table.states:
        if sym in used:
            lines.append(f"{INDENT}{local} = {'y' if model.elementwise else f'y[..., {table.states.index((sym, local))}]'}")

    arrays = {sym for sym, _ in table.states} | set(extra_arrays)
    if time_kind == "tensor":
        arrays.add(model.time)
    printer = ArrayExprPrinter("torch", names, arrays, scalar_namespace="math")

    def call_net(net: str, time_code: str) -> str:
        if time_kind == "tensor" and time_used and model.elementwise:
            time_arg = f"runtime.net_time({time_code}, y)"
        elif time_kind == "tensor" and time_used:
            time_arg = f"runtime.as_time({time_code}, y, False)"
        else:
            time_arg = f"y.new_full((), {time_code})"
        return f"runtime.call_net(self.nets_by_name, {net!r}, y, {time_arg})"

    def broadcast(code: str) -> str:
        return "_zero" if code == "0" else f"(_zero + {code})"

    varies = _varying_outputs(block, set(extra_arrays))
    block = dataclasses.replace(block, outputs_depend_on_state=varies)
    body, outputs = print_block(block, printer, call_net, broadcast, indent=INDENT)
    lines.extend(body)
    if not all(varies):
        zero_of = "y" if model.elementwise else "y[..., 0]"
        lines.insert(0, f"{INDENT}_zero = torch.zeros_like({zero_of})")
    return BlockCode(tuple(lines), tuple(outputs))
