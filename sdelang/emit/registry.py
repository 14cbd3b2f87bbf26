"""Backend registry: backends are plug-ins found through the entry-point group ``sdelang.backends``.

A backend is an object with ``name``, ``emit(model, **options) -> str`` (Python source) and
``compile(model, **nets) -> module``. A backend's package is imported only when it is asked for,
so the front end never loads torch or jax by itself.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Dict

from ..budget import budget
from ..model.methods import bind

GROUP = "sdelang.backends"

# Backends shipped in this repository, used when the distribution's entry points are not
# installed (running from a source checkout).
_BUILTIN = {"torch": "sdelang_torch:backend", "jax": "sdelang_jax:backend"}

_loaded: Dict[str, object] = {}


class BackendError(LookupError):
    """No backend of that name, or its framework is not installed."""


def available_backends() -> list:
    """Names of every backend registered (installed or shipped), without importing any."""
    names = {ep.name for ep in entry_points(group=GROUP)}
    return sorted(names | set(_BUILTIN))


def get_backend(name: str):
    """The backend object registered under ``name`` (imported on first use)."""
    if name in _loaded:
        return _loaded[name]
    target = None
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            target = ep.value
            break
    if target is None:
        target = _BUILTIN.get(name)
    if target is None:
        raise BackendError(f"unknown backend '{name}'; available: {', '.join(available_backends())}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(
            f"backend '{name}' needs a package that is not installed ({exc}); "
            f"install sdelang with the '{name}' extra"
        ) from exc
    backend = getattr(module, attr) if attr else module
    _loaded[name] = backend
    return backend


def emit(model, backend: str, /, **options) -> str:
    """The generated Python source of ``model`` for ``backend``, as text."""
    with budget("code generation"):
        return get_backend(backend).emit(model, **options)


def compile_model(model, backend: str, /, **nets):
    """A ready module object of ``backend`` for ``model``, with networks attached by name."""
    return get_backend(backend).compile(model, **nets)


bind(compile=compile_model, emit=emit)
