"""Late binding of the Model methods that derive, print or compile.

:mod:`sdelang.derive`, :mod:`sdelang.printers` and :mod:`sdelang.emit.registry` import the model;
so the model does not import them: each binds the functions behind its methods here
(``bind(kfp=kfp, ...)``) and ``Model.kfp()`` calls ``bound("kfp")``. ``import sdelang`` imports all
three, so every method is bound before any Model can exist.
"""
from __future__ import annotations

from typing import Callable, Dict

_BOUND: Dict[str, Callable] = {}


def bind(**functions: Callable) -> None:
    """Make each function the implementation of the Model method of its keyword's name."""
    _BOUND.update(functions)


def bound(method: str) -> Callable:
    """The function behind ``Model.<method>``."""
    try:
        return _BOUND[method]
    except KeyError:
        raise RuntimeError(f"Model.{method}() is not bound; importing sdelang binds it") from None
