"""Fuzzing the front end: any text either parses to a Model or raises SpecError — nothing else.

The last-resort guard of the semantic pass (which would turn an internal exception into a
SpecError) is switched off here, so an internal bug shows up as the exception it is.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdelang import Model, SpecError
from sdelang.loader import parse
from sdelang.model import build

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.sde"))
SEED = 20240611
MUTATIONS_PER_EXAMPLE = 110

# Characters and fragments a mutation may insert: the language's own vocabulary plus junk.
FRAGMENTS = [
    "(", ")", "[", "]", "{", "}", ",", ";", "=", "~", ":", "+", "-", "*", "/", "^", "**", "\n",
    " ", "#", "\"", "'", "$", "@", "\\", "\t", "\x00", "é", "0", "1", ".5", "1e309", "1e-3",
    "1_000", "x", "y", "dt", "dW", "dW1", "dW2", "dx", "dy", "t", "s", "p", "U", "d", "inf", "pi",
    "exp", "log", "grad", "div", "laplacian", "dot", "sum", "sigmoid", "abs", "score", "state",
    "param", "let", "net", "time", "in", "brownian", "density", "log_density", "calculus",
    "stratonovich", "init", "prior", "assert", "stationary", "Normal", "data", ": int", "__x",
    "lambda", "model", "9999999999999999999999", "^ 99999", "0^-1", "1/0", "[0]", "[5]", "(x, t)",
]


@pytest.fixture(autouse=True)
def strict_front_end(monkeypatch):
    monkeypatch.setattr(build, "GUARD_UNEXPECTED", False)


def parses_or_spec_error(text: str) -> None:
    try:
        result = parse(text, path="fuzz.sde")
    except SpecError as err:
        assert err.path == "fuzz.sde"
        assert err.message
        str(err)  # renders
        return
    assert isinstance(result, Model)


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits: insert, delete, replace, duplicate/drop a line, truncate, swap."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(7)
        pos = rng.randrange(len(text) + 1)
        if kind == 0:
            text = text[:pos] + rng.choice(FRAGMENTS) + text[pos:]
        elif kind == 1 and text:
            end = min(len(text), pos + rng.randint(1, 6))
            text = text[:pos] + text[end:]
        elif kind == 2 and text:
            end = min(len(text), pos + rng.randint(1, 4))
            text = text[:pos] + rng.choice(FRAGMENTS) + text[end:]
        elif kind == 3:
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[rng.randrange(len(lines))])
            text = "\n".join(lines)
        elif kind == 4:
            lines = text.split("\n")
            del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        elif kind == 5:
            text = text[:pos]
        else:
            words = text.split(" ")
            if len(words) > 2:
                i, j = rng.randrange(len(words)), rng.randrange(len(words))
                words[i], words[j] = words[j], words[i]
                text = " ".join(words)
    return text


def test_examples_are_not_empty():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_mutated_examples(path):
    original = path.read_text()
    rng = random.Random(f"{SEED}-{path.name}")
    for _ in range(MUTATIONS_PER_EXAMPLE):
        parses_or_spec_error(mutate(original, rng))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_arbitrary_text(text):
    parses_or_spec_error(text)


TOKENS = st.sampled_from(FRAGMENTS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=25))
def test_token_soup_inside_a_model(tokens):
    body = " ".join(tokens)
    parses_or_spec_error("model M {\n state x, y\n param a = 1\n dx = " + body + "\n}\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TOKENS, max_size=25))
def test_token_soup_as_statements(tokens):
    body = " ".join(tokens)
    parses_or_spec_error("model M {\n state x\n " + body + "\n dx = -x dt + dW\n}\n")


def test_public_parse_is_the_same_entry_point():
    """``sdelang.parse`` stays the function after every front-end subpackage is imported."""
    import sdelang.syntax.parser  # noqa: F401
    import sdelang.model.build  # noqa: F401

    assert isinstance(sdelang.parse("model M { state x\n dx = -x dt }"), Model)
    with pytest.raises(SpecError):
        sdelang.parse("model M { state x\n dx = -x }")
