"""Entry points of the front end: ``sdelang.parse(text)`` and ``sdelang.load(path)``."""
from __future__ import annotations

import os
from typing import Optional, Union

from .errors import SpecError
from .model.model import Model


def parse(text: str, *, path: Optional[str] = None, **overrides) -> Model:
    """The Model that the ``.sde`` text describes; keyword arguments override parameter values.

    Any malformed input raises :class:`SpecError` (never another exception)."""
    from .model.build import build_model
    from .syntax.parser import parse_spec

    if not isinstance(text, str):
        raise SpecError(f"a spec is text, got {type(text).__name__}", path=path)
    spec = parse_spec(text, path=path)
    model = build_model(spec, text=text, path=path)
    if overrides:
        try:
            model = model.with_params(**overrides)
        except SpecError as err:
            raise _at_declaration(err, spec, overrides, text, path) from None
    return model


def _at_declaration(err: SpecError, spec, overrides, text: str, path) -> SpecError:
    """The override's error, located at the declaration of the parameter it names (if any)."""
    from .syntax import ast

    err.path = err.path or path
    if err.line is None:
        for statement in spec.statements:
            if not isinstance(statement, ast.ParamDecl):
                continue
            for item in statement.items:
                named = f"'{item.name.name}'" in err.message or len(overrides) == 1
                if item.name.name in overrides and named:
                    err.line, err.column = item.name.span.line, item.name.span.column
                    break
            if err.line is not None:
                break
    return err.located(text=text)


def load(path: Union[str, "os.PathLike[str]"], /, **overrides) -> Model:
    """Read and parse a ``.sde`` file; keyword arguments override parameter values."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", path=path) from None
    if b"\x00" in raw:
        raise SpecError("this is a binary file, not a .sde spec", path=path, line=1, column=1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError("the spec is not valid UTF-8 text", path=path, line=line, column=column) from None
    return parse(text, path=path, **overrides)
