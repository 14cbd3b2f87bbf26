"""Names of a package imported on first use (PEP 562), so importing the package stays cheap."""
from __future__ import annotations

import importlib
from typing import Callable, Dict, Tuple


def lazy_exports(package: str, exports: Dict[str, str], namespace: dict) -> Tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a name to the module defining
    it (``".nets"`` relative to the package, ``"sdelang.score"`` absolute); a name, once imported,
    is stored in the package's ``namespace``."""

    def __getattr__(name: str):
        source = exports.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source, package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
