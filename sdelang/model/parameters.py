"""Parameter overrides: ``sdelang.load(path, theta=2.0)`` checks each value against its declaration,
and the overridden model against what the parser checks of literal values (sizes, time interval,
Normal scales)."""
from __future__ import annotations

import numbers
from typing import Dict, Iterable, Optional, Tuple

import sympy

from ..errors import SpecError, did_you_mean
from .literals import DOUBLE_MAX
from .parts import Param


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
        if isinstance(raw, bool) or not isinstance(raw, (numbers.Real, sympy.Number)):
            raise SpecError(f"parameter '{name}' needs a number, got {raw!r}", path=path)
        if isinstance(raw, numbers.Integral):
            raw = int(raw)
        elif isinstance(raw, numbers.Real) and not isinstance(raw, sympy.Basic):
            raw = float(raw)
        value = sympy.sympify(raw)
        if not value.is_finite or not value.is_real:
            raise SpecError(f"parameter '{name}' needs a finite number, got {raw!r}", path=path)
        if abs(value) > DOUBLE_MAX:
            raise SpecError(f"parameter '{name}' = {sympy.sstr(value)[:40]} is too large for double "
                            "precision", path=path)
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


def _numeric(expr, values):
    value = sympy.sympify(expr).xreplace(values)
    return value if value.is_number else None


def check_overridden_model(model) -> None:
    """SpecError unless the model's parameter values make sense where they are used: an
    elementwise size d >= 1, a time interval t0 < t1, Normal scales > 0 for init and prior."""
    values = model.param_substitution()
    if model.dimension is not None:
        d = _numeric(model.dimension, values)
        if d is not None and d < 1:
            raise SpecError(f"the size '{model.dimension}' = {d} must be at least 1", path=model.path)
    t0, t1 = _numeric(model.t0, values), _numeric(model.t1, values)
    if t0 is not None and t1 is not None and not t0 < t1:
        raise SpecError(f"the time interval [{t0}, {t1}] is empty: its start must be below its end",
                        path=model.path)
    for which, laws in (("init", model.init), ("prior", model.prior)):
        for state, law in laws:
            scale = _numeric(law.scale, values) if law.kind == "normal" else None
            if scale is not None and not scale > 0:
                raise SpecError(f"{which} {state} ~ Normal(..., scale): the scale {scale} must be positive",
                                path=model.path)
