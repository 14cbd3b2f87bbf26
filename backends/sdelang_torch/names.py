"""Python names for everything a generated torch module mentions.

User identifiers (states, parameters, nets, the model's name) reach the generated source only
through this table: each must be a plain Python identifier, goes through
:func:`sdelang.emit.lower.python_name`, and is kept away from the generated code's own locals
(which all start with ``_``). Anything else raises ``ValueError`` instead of being written out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Tuple

import sympy

from sdelang.emit.lower import python_name
from sdelang.model.symbols import NetOutput


def checked_identifier(name: str, what: str) -> str:
    """``name`` itself when it is a Python identifier (ASCII letters, digits, ``_``), else ValueError."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{what} {name!r} is not a valid identifier; it cannot be generated")
    return name


def local_name(name: str, what: str) -> str:
    """A safe local variable for a user identifier (a leading ``_`` becomes ``u_``)."""
    checked_identifier(name, what)
    if name.startswith("_"):
        name = "u" + name
    return python_name(name)


def class_name(model_name: str) -> str:
    """The generated class's name: the model's name with anything not an identifier character
    replaced by ``_`` (derived models may carry names like ``OU-reverse``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", str(model_name)) or "Model"
    if cleaned[0].isdigit():
        cleaned = "M" + cleaned
    return python_name(cleaned)


@dataclass(frozen=True)
class NameTable:
    """Local names of the model's states, parameters and nets (time is always the argument ``t``)."""

    states: Tuple[Tuple[sympy.Symbol, str], ...]
    params: Tuple[Tuple[str, str], ...]  # (parameter name, local name)
    nets: Tuple[str, ...]
    time: sympy.Symbol

    def symbol_names(self) -> Dict[sympy.Symbol, str]:
        """{symbol: code} for the printer: states, parameters and time."""
        out = {sym: local for sym, local in self.states}
        out.update({sympy.Symbol(name): local for name, local in self.params})
        out[self.time] = "t"
        return out


def name_table(model) -> NameTable:
    """Checked, collision-free local names for ``model``'s identifiers. Nets: those declared in
    ``model.nets``, then any other network the equations call (sorted by name)."""
    states = tuple((s, local_name(s.name, "state")) for s in model.states)
    params = tuple((p.name, local_name(p.name, "parameter")) for p in model.parameters)
    declared = [n.name for n in model.nets]
    called = sorted({node.net_name for e in list(model.drift_matrix) + list(model.diffusion_matrix)
                     for node in e.atoms(NetOutput)} - set(declared))
    nets = tuple(checked_identifier(name, "net") for name in declared + called)
    checked_identifier(model.time.name, "time")
    for b in model.brownians:
        checked_identifier(b.name, "Brownian motion")
    locals_ = [local for _, local in states] + [local for _, local in params]
    if len(set(locals_)) != len(locals_):
        raise ValueError(f"model {model.name!r}: two identifiers map to the same Python name: {locals_}")
    return NameTable(states, params, nets, model.time)
