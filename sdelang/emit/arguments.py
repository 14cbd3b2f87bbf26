"""The keyword arguments of ``model.compile(backend, **kwargs)``, checked before any backend sees them.

Parameter values get exactly the checks ``sdelang.load(path, theta=...)`` gives them (a number,
finite, within double precision, an integer for ``: int``, inside the declared interval) and the
model the checks of literal values (size d ≥ 1, a non-empty time interval, Normal scales > 0).
A 0-d array (a torch tensor, a JAX or NumPy array) is checked by its value and passed on as it
is (so JAX can differentiate with respect to it); a traced value cannot be read and is passed on.
Networks must be callable as net(x, t) (or None: not attached).
"""
from __future__ import annotations

import numbers
from typing import Dict

from ..errors import SpecError
from ..model.symbols import SCORE_NET
from .names import called_nets


def _concrete_scalar(value):
    """A Python number for a 0-d array, None when the array is traced (no concrete value), and
    the value itself otherwise."""
    if isinstance(value, (numbers.Number, str, bytes)) or not hasattr(value, "shape"):
        return value
    if tuple(getattr(value, "shape", ())) != ():
        raise SpecError(f"a parameter needs one number, got an array of shape {tuple(value.shape)}")
    try:
        number = value.item()
    except Exception:  # a tracer (jax.jit, grad): its value is not known here
        return None
    return number


def check_compile_arguments(model, kwargs: Dict[str, object]) -> Dict[str, object]:
    """``kwargs`` checked, NumPy scalars as Python numbers (``: int`` parameters as ints):
    SpecError for a bad parameter value, TypeError for a network that is not callable. Other
    names are left to the backend (it names them)."""
    param_names = {p.name for p in model.parameters}
    net_names = {n.name for n in model.nets} | set(called_nets(model)) | {SCORE_NET}
    params = {k: v for k, v in kwargs.items() if k in param_names}
    nets = {k: v for k, v in kwargs.items() if k in net_names and k not in param_names}
    readable = {}
    for name, value in params.items():
        try:
            number = _concrete_scalar(value)
        except SpecError as err:
            raise SpecError(f"parameter '{name}': {err.message}", path=model.path) from None
        if number is not None:
            readable[name] = number
    if readable:
        model.with_params(**readable)  # SpecError when a value is not allowed
    for name, net in nets.items():
        if net is not None and not callable(net):
            raise TypeError(f"network '{name}' must be callable as net(x, t), got {type(net).__name__} {net!r:.40}")
    integers = {p.name for p in model.parameters if p.integer}
    out = dict(kwargs)
    for name, number in readable.items():
        if name in integers:
            out[name] = int(number)
        elif isinstance(params[name], numbers.Number) and not isinstance(params[name], (int, float)):
            out[name] = float(number)  # a NumPy scalar
    return out
