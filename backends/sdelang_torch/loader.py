"""Loading generated source: executed into a fresh module namespace (never ``eval`` of user text:
the source was printed from validated names and SymPy expressions), registered in ``linecache``
so that tracebacks show the generated lines, and in ``sys.modules`` under a name carrying the
source's hash (so ``inspect.getsource`` and ``pickle`` find the class). ``cls.source`` is the text."""
from __future__ import annotations

import hashlib
import linecache
import sys
import types


def load_source(source: str, class_name: str) -> type:
    """The class ``class_name`` defined by ``source``, from a fresh module."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    filename = f"<sdelang_torch:{class_name}:{digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(f"sdelang_torch_generated_{class_name}_{digest}")
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    sys.modules[module.__name__] = module  # inspect.getsource and pickle find the class
    cls = getattr(module, class_name)
    cls.source = source
    return cls
