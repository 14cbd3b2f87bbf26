"""Loading generated source: execute it into a fresh module (registered in ``linecache`` so that
tracebacks show the generated lines) and return its model class."""
from __future__ import annotations

import hashlib
import itertools
import linecache
import sys
import types

from .codegen import emit_source, jax_name_table

_MODULE_PREFIX = "sdelang_jax.generated_"
_serial = itertools.count()


def exec_source(source: str, label: str) -> types.ModuleType:
    """A new module holding the definitions of ``source`` (a fresh one on every call, so that the
    class can carry its own sympy Model)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    serial = next(_serial)
    module_name = f"{_MODULE_PREFIX}{label}_{digest}_{serial}"
    filename = f"<sdelang-jax {label} {digest} #{serial}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


_CLASSES: dict = {}  # source -> class: the same class for the same source, so jitted code is reused


def load_class(model):
    """The generated class of ``model``, with the sympy Model attached as ``sdelang_model``
    (used to derive reverse-time and probability-flow modules on demand). Equal sources share one
    class: a new class per compile would make every ``filter_jit`` trace again."""
    source = emit_source(model)
    if source not in _CLASSES:
        name = jax_name_table(model).class_name
        cls = getattr(exec_source(source, name), name)
        cls.sdelang_model = model
        _CLASSES[source] = cls
    return _CLASSES[source]
