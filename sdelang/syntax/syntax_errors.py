"""Lark's syntax errors → :class:`SpecError` with a position, the line, a caret and what was expected.

Three Lark errors reach here: ``UnexpectedCharacters`` (the lexer met a character no token
starts with: a string quote, ``$``, ``@`` ...), ``UnexpectedToken`` (a token the grammar does not
allow there) and ``UnexpectedEOF``. Before those, an unclosed or unmatched bracket is reported
at the bracket itself, since that is where the mistake usually is.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import SpecError, source_lines
from .grammar import lark_parser

_READABLE = {
    "NAME": "a name",
    "NUMBER": "a number",
    "_NL": "a new line",
    "$END": "the end of the file",
    "POW": "'^'",
    "DENSITY": "'density'",
    "LAW": "'init'",
}
_CLOSING = {"(": ")", "[": "]"}
_MAX_EXPECTED = 12


def _source_line(text: str, line: int) -> Optional[str]:
    lines = source_lines(text)
    return lines[line - 1] if 1 <= line <= len(lines) else None


def _error(message: str, text: str, path: Optional[str], line: int, column: int) -> SpecError:
    return SpecError(message, path=path, line=line, column=column, source_line=_source_line(text, line))


def _terminal_text(name: str) -> str:
    """How a terminal reads in a message: ``'('`` for punctuation and keywords, else a phrase."""
    if name in _READABLE:
        return _READABLE[name]
    for terminal in lark_parser().terminals:
        if terminal.name == name and terminal.pattern.type == "str":
            return repr(terminal.pattern.value)
    return name.lower()


def _expected_text(names: Iterable[str]) -> str:
    readable = sorted({_terminal_text(n) for n in names}, key=lambda s: (not s.startswith("a "), s))
    if "'^'" in readable:
        readable[readable.index("'^'")] = "'^' or '**'"
    if not readable:
        return ""
    if len(readable) > _MAX_EXPECTED:
        readable = readable[:_MAX_EXPECTED] + ["..."]
    if len(readable) == 1:
        return f"; expected {readable[0]}"
    return "; expected one of " + ", ".join(readable)


def _scan_brackets(text: str) -> Tuple[List[Tuple[str, int, int, int]], Optional[Tuple[str, int, int, int]]]:
    """(openers still open at the end, first closer without an opener), each as
    (char, line, column, offset); comments are skipped. Bracket kinds are not matched to each
    other because intervals read ``(0, inf]``."""
    stack: List[Tuple[str, int, int, int]] = []
    stray = None
    line, column, in_comment = 1, 1, False
    for offset, char in enumerate(text):
        if char == "\n":
            line, column, in_comment = line + 1, 1, False
            continue
        if not in_comment:
            if char == "#":
                in_comment = True
            elif char in "([":
                stack.append((char, line, column, offset))
            elif char in ")]":
                if stack:
                    stack.pop()
                elif stray is None:
                    stray = (char, line, column, offset)
        column += 1
    return stack, stray


def _bracket_error(text: str, path: Optional[str], error_offset: int) -> Optional[SpecError]:
    unclosed, stray = _scan_brackets(text)
    if stray is not None and stray[3] <= error_offset:
        char, line, column, _ = stray
        opener = {")": "(", "]": "["}[char]
        return _error(f"unmatched '{char}': there is no '{opener}' before it", text, path, line, column)
    for char, line, column, offset in unclosed:
        if offset < error_offset:
            return _error(
                f"'{char}' is never closed; expected a matching '{_CLOSING[char]}'",
                text, path, line, column,
            )
    return None


def _end_of_text(text: str) -> Tuple[int, int]:
    """1-based (line, column) just after the last non-blank character."""
    lines = source_lines(text.rstrip()) or [""]
    return len(lines), len(lines[-1]) + 1


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(l) + 1 for l in lines[: line - 1]) + column - 1


def syntax_error(exc: UnexpectedInput, text: str, path: Optional[str]) -> SpecError:
    """The SpecError that explains a Lark parse failure."""
    if isinstance(exc, UnexpectedCharacters):
        bracket = _bracket_error(text, path, exc.pos_in_stream)
        if bracket is not None:
            return bracket
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if char in "\"'":
            message = "string literals are not part of the .sde language; names and numbers only"
        elif char == "\u2218":
            message = "'∘' is not an operator: write 'calculus stratonovich' and plain products 'g dW'"
        elif char.isprintable() and not char.isspace():
            message = f"unexpected character {char!r}" + _expected_text(exc.allowed or ())
        else:
            message = f"unexpected character {char!r} (U+{ord(char):04X})" if char else "unexpected input"
        return _error(message, text, path, exc.line, exc.column)

    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        bracket = _bracket_error(text, path, _offset(text, token.line, token.column))
        if bracket is not None:
            return bracket
        expected = exc.accepts or exc.expected
        if token.type == "_NL":
            message = "unexpected end of line" + _expected_text(expected)
            line, column = token.line, token.column
            return _error(message, text, path, line, column)
        if token.type != "NAME" and "NAME" in expected and str(token).isidentifier():
            message = f"'{token}' is a reserved word and cannot be used as a name"
        elif token.type == "NAME" and ("LSQB" in expected or "STAR" in expected) and "_NL" in expected:
            message = (
                f"unexpected name '{token}' (a missing operator or new line?)" + _expected_text(expected)
            )
        else:
            message = f"unexpected {str(token)!r}" + _expected_text(expected)
        return _error(message, text, path, token.line, token.column)

    # the end of the file came too early
    line, column = _end_of_text(text)
    bracket = _bracket_error(text, path, len(text))
    if bracket is not None:
        return bracket
    expected = set()
    if isinstance(exc, UnexpectedEOF):
        expected = set(exc.expected or ())
    elif isinstance(exc, UnexpectedToken):
        expected = set(exc.accepts or exc.expected)
    if "RBRACE" in expected:
        message = "missing '}' at the end of the model"
    else:
        message = "unexpected end of the file" + _expected_text(expected)
    return _error(message, text, path, line, column)
