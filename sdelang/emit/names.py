"""One name table for every backend: the Python name of each identifier a generated module uses.

Every user identifier (states, parameters, networks, Brownian motions, the time, the model's name)
is checked here at emission, whatever built the Model: it must be a plain ASCII identifier
``[A-Za-z_][A-Za-z0-9_]*``, or :class:`~sdelang.errors.EmitError` is raised and nothing is
generated. Identifiers that cannot be used as they are (Python keywords, builtins, the generated
code's own names, a backend's class members, a leading ``_``, which the generated code keeps for
its temporaries) are renamed collision-free: ``_a`` → ``u_a`` and ``lambda`` → ``lambda_``, with
more ``_`` appended until the name differs from every other name of the model, so
``param lambda, lambda_`` become ``lambda__`` and ``lambda_``. Same model, same names.
"""
from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

import sympy

from ..errors import EmitError
from ..model.symbols import NetOutput

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Names every generated module uses for itself (imports, method arguments, locals).
RESERVED = frozenset(
    {"torch", "torchsde", "torchdiffeq", "math", "jax", "jnp", "lx", "diffrax", "eqx", "np", "nn",
     "self", "y", "t", "args", "cls", "runtime", "batch", "dtype", "device", "Optional", "Any"}
    | set(dir(builtins))
    | set(keyword.kwlist)
    | set(getattr(keyword, "softkwlist", ()))
)

def checked_identifier(name, what: str) -> str:
    """``name`` itself when it is a plain ASCII identifier, else EmitError."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise EmitError(f"{what} {name!r} is not a valid identifier ([A-Za-z_][A-Za-z0-9_]*); "
                        "it cannot be generated as code")
    return name


def class_name(model_name, reserved: Iterable[str] = ()) -> str:
    """The generated class's name: the model's name with every character that is not an
    identifier character replaced by ``_`` (never executed, never a reserved name)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", str(model_name or "")) or "Model"
    if cleaned[0].isdigit():
        cleaned = "M" + cleaned
    taken = RESERVED | set(reserved)
    while cleaned in taken:
        cleaned += "_"
    return cleaned


def comment(text) -> str:
    """Text that is safe inside a ``#`` comment: one line of printable characters."""
    return "".join(c if c.isprintable() else " " for c in " ".join(str(text).split()))


def _needs_rename(name: str, reserved) -> bool:
    return name.startswith("_") or name in reserved or keyword.iskeyword(name)


def assign_names(names: Sequence[str], reserved: Iterable[str] = ()) -> List[str]:
    """Collision-free Python names for distinct identifiers ``names`` (in order): a name that can
    be used is kept; any other gets ``u`` before a leading ``_`` and ``_`` appended until it is
    neither reserved nor taken by any name of the list."""
    reserved = RESERVED | set(reserved)
    kept = {n for n in names if not _needs_rename(n, reserved)}
    used: set = set()
    out = []
    for name in names:
        if name in kept:
            out.append(name)
            used.add(name)
            continue
        candidate = "u" + name if name.startswith("_") else name
        while candidate in reserved or candidate in kept or candidate in used or keyword.iskeyword(candidate):
            candidate += "_"
        out.append(candidate)
        used.add(candidate)
    return out


def called_nets(model) -> List[str]:
    """Networks the equations call that ``model.nets`` does not declare, sorted by name."""
    declared = {n.name for n in model.nets}
    called = {node.net_name for e in list(model.drift_matrix) + list(model.diffusion_matrix)
              for node in e.atoms(NetOutput)}
    return sorted(called - declared)


@dataclass(frozen=True)
class NameTable:
    """Python names of a model's identifiers: ``states`` (symbol, name), ``params`` and ``nets``
    (identifier, name), the time symbol (printed by each backend as its own argument) and the
    class name. One namespace: no two entries share a Python name."""

    class_name: str
    states: Tuple[Tuple[sympy.Symbol, str], ...]
    params: Tuple[Tuple[str, str], ...]
    nets: Tuple[Tuple[str, str], ...]
    time: sympy.Symbol

    def param(self, name: str) -> str:
        return dict(self.params)[name]

    def net(self, name: str) -> str:
        return dict(self.nets)[name]

    @property
    def net_names(self) -> Tuple[str, ...]:
        return tuple(name for name, _ in self.nets)

    def symbol_names(self) -> Dict[sympy.Symbol, str]:
        """{symbol: code} for the printers: states and parameters (the time is the backend's)."""
        out = {sym: local for sym, local in self.states}
        out.update({sympy.Symbol(name): local for name, local in self.params})
        return out


def name_table(model, *, reserved: Iterable[str] = (), extra_nets: Sequence[str] = ()) -> NameTable:
    """The checked, collision-free names of ``model``'s identifiers. Nets: those declared, then
    those the equations call, then ``extra_nets`` that no other identifier already names.
    ``reserved``: names the backend's generated class keeps for itself (e.g. its methods)."""
    for b in model.brownians:
        checked_identifier(b.name, "Brownian motion")
    checked_identifier(model.time.name, "the time")
    states = [checked_identifier(s.name, "state") for s in model.states]
    params = [checked_identifier(p.name, "parameter") for p in model.parameters]
    nets = [checked_identifier(n.name, "net") for n in model.nets] + called_nets(model)
    nets += [n for n in extra_nets if n not in set(states) | set(params) | set(nets)]
    everything = states + params + nets
    seen: Dict[str, int] = {}
    for name in everything:
        seen[name] = seen.get(name, 0) + 1
    twice = sorted(n for n, k in seen.items() if k > 1)
    if twice:
        raise EmitError(f"model {model.name!r}: {', '.join(map(repr, twice))} names two different things "
                        "(a state, parameter or net); every identifier must be unique")
    if model.time.name in set(states) | set(params):
        raise EmitError(f"model {model.name!r}: the time {model.time.name!r} is also a state or parameter")
    python = assign_names(everything, reserved)
    k, p = len(states), len(params)
    return NameTable(
        class_name=class_name(model.name, reserved),
        states=tuple(zip(model.states, python[:k])),
        params=tuple(zip(params, python[k:k + p])),
        nets=tuple(zip(nets, python[k + p:])),
        time=model.time,
    )
