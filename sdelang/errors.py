"""Errors a user sees: a bad spec (with file, line, column and a caret) or an impossible derivation."""
from __future__ import annotations

import difflib
from typing import Iterable, Optional


def source_lines(text: str) -> list:
    """The lines of a spec as the parser counts them: split at ``\n`` only (``str.splitlines``
    also splits at form feeds, U+0085, U+2028 ..., which would put carets on the wrong line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def normalize_newlines(text: str) -> str:
    """``\r\n`` and a lone ``\r`` (old Mac files) become ``\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


_SHOWN_WIDTH = 100  # characters of a long source line shown around the error's column


class SpecError(Exception):
    """A malformed or meaningless `.sde` spec.

    Attributes: ``path`` (str or None), ``line`` and ``column`` (1-based, or None), ``message``
    (what is wrong and what was expected), ``source_line`` (the offending line of text).
    ``str(err)`` reads ``path:line:column: message`` followed by the line and a caret under the column.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
        source_line: Optional[str] = None,
    ):
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.source_line = source_line
        super().__init__(self.__str__())

    def located(self, *, path=None, text: Optional[str] = None) -> "SpecError":
        """The same error with its path and source line filled in from the spec's text."""
        if path is not None and self.path is None:
            self.path = path
        if text is not None and self.source_line is None and self.line is not None:
            lines = source_lines(text)
            if 1 <= self.line <= len(lines):
                self.source_line = lines[self.line - 1]
        self.args = (self.__str__(),)
        return self

    def __str__(self) -> str:
        where = self.path if self.path is not None else "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.source_line is not None:
            shown = "".join(c if c.isprintable() else "\ufffd"
                            for c in self.source_line.expandtabs(1).rstrip("\n"))
            caret = max((self.column or 1) - 1, 0)
            if len(shown) > _SHOWN_WIDTH:  # a window around the column
                start = max(0, min(caret - _SHOWN_WIDTH // 2, len(shown) - _SHOWN_WIDTH))
                window = shown[start:start + _SHOWN_WIDTH]
                prefix = "..." if start > 0 else ""
                shown = prefix + window + ("..." if start + _SHOWN_WIDTH < len(shown) else "")
                caret = caret - start + len(prefix)
            text += "\n    " + shown
            if self.column is not None:
                text += "\n    " + " " * caret + "^"
        return text


class DerivationError(ValueError):
    """A derivation that the model does not admit (e.g. ``marginal()`` of a non-affine SDE)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or the empty string."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class EmitError(SpecError, ValueError):
    """A Model that cannot be written as code: an identifier that is not a plain Python name, a
    number outside double precision, a symbol or function no backend knows. Raised at emission,
    whatever built the Model (the parser or Python code), so nothing unchecked reaches generated
    source."""

    def __init__(self, message: str, *, path: Optional[str] = None):
        super().__init__(message, path=path)
