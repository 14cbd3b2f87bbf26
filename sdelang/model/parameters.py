"""Parameter overrides: ``sdelang.load(path, theta=2.0)`` checks each value against its declaration."""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import sympy

from ..errors import SpecError, did_you_mean
from .model import Param


def override_parameters(
    parameters: Iterable[Param], values: Dict[str, object], *, path: Optional[str] = None
) -> Tuple[Param, ...]:
    """Replace the values of named parameters; unknown names, non-numbers, non-integers for
    ``: int`` parameters and values outside the declared interval raise SpecError."""
    params = list(parameters)
    by_name = {p.name: i for i, p in enumerate(params)}
    for name, raw in values.items():
        if name not in by_name:
            raise SpecError(f"unknown parameter '{name}'{did_you_mean(name, by_name)}", path=path)
        p = params[by_name[name]]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, sympy.Number)):
            raise SpecError(f"parameter '{name}' needs a number, got {raw!r}", path=path)
        value = sympy.sympify(raw)
        if not value.is_finite:
            raise SpecError(f"parameter '{name}' needs a finite number, got {raw!r}", path=path)
        if p.integer:
            if value != int(value):
                raise SpecError(f"parameter '{name}' is declared ': int', got {raw!r}", path=path)
            value = sympy.Integer(int(value))
        elif isinstance(raw, float):
            value = sympy.Float(raw)
        if p.interval is not None and not p.interval.contains(value):
            raise SpecError(
                f"parameter '{name}' = {raw!r} is outside its interval {p.interval}", path=path
            )
        params[by_name[name]] = Param(p.symbol, value, p.interval, p.integer)
    return tuple(params)
