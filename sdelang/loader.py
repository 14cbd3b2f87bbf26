"""Entry points of the front end: ``sdelang.parse(text)`` and ``sdelang.load(path)``."""
from __future__ import annotations

import os
import stat
from typing import BinaryIO, Optional, Union

from .budget import BudgetExceeded, budget
from .errors import SpecError, normalize_newlines
from .model.model import Model


def parse(text: str, *, path: Optional[str] = None, **overrides) -> Model:
    """The Model that the ``.sde`` text describes; keyword arguments override parameter values.

    Any malformed input raises :class:`SpecError` (never another exception)."""
    if not isinstance(text, str):
        raise SpecError(f"a spec is text, got {type(text).__name__}", path=path)
    try:
        with budget("reading the spec"):
            return _parse(text, path, overrides)
    except BudgetExceeded as exc:
        raise SpecError(str(exc), path=path) from None


def _parse(text: str, path: Optional[str], overrides) -> Model:
    from .model.build import build_model
    from .syntax.parser import parse_spec

    if text.startswith("\ufeff"):  # a byte-order mark is no part of the spec
        text = text[1:]
    text = normalize_newlines(text)
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


#: The largest spec read (bytes): /dev/zero or a stray multi-gigabyte file ends with an error.
MAX_SPEC_BYTES = 10 * 2**20


def read_spec_text(stream: BinaryIO, path: str) -> str:
    """The text of a spec read from ``stream`` (at most MAX_SPEC_BYTES, UTF-8, no NUL bytes)."""
    raw = stream.read(MAX_SPEC_BYTES + 1)
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is larger than {MAX_SPEC_BYTES // 2**20} MiB; is this a spec?", path=path)
    if b"\x00" in raw:
        raise SpecError("this is a binary file, not a .sde spec", path=path, line=1, column=1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError("the spec is not valid UTF-8 text", path=path, line=line, column=column) from None
    return text


def load(path: Union[str, "os.PathLike[str]"], /, **overrides) -> Model:
    """Read and parse a ``.sde`` file; keyword arguments override parameter values."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise SpecError(f"a spec is named by a path (str or os.PathLike), got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): opening a FIFO would block
            raise SpecError("cannot read spec: it is not a regular file", path=path)
        with open(path, "rb") as fh:
            text = read_spec_text(fh, path)
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", path=path) from None
    return parse(text, path=path, **overrides)
