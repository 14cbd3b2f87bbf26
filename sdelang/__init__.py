"""sdelang: a declarative language for stochastic and ordinary differential equations.

    import sdelang
    m = sdelang.load("examples/ou.sde", theta=2.0)
    m.kfp(); m.reverse(); m.probability_flow(); m.compile("torch")
"""
from __future__ import annotations

from .budget import BudgetExceeded, time_budget
from .emit.registry import BackendError, available_backends, emit
from .errors import DerivationError, EmitError, SpecError
from .model import Model
from .model.symbols import NetOutput
from .loader import load, parse
from . import derive, printers  # noqa: F401  (importing them binds Model's methods: sdelang.model.methods)

__all__ = [
    "BackendError", "BudgetExceeded", "DerivationError", "EmitError", "Model", "NetOutput", "SpecError",
    "available_backends", "emit", "load", "parse", "time_budget",
]
__version__ = "0.1.0"
