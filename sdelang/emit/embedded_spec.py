"""The model's own `.sde` text, embedded in generated code as a string literal.

A generated file used on its own (``sdelang compile SPEC -o FILE``, then imported) re-parses it on
demand to build what depends on the symbolic model (reverse-time SDE, probability flow,
log-likelihood). The text is printed by sdelang's printer from validated symbols, never copied from
user input, and enters the source as a readable triple-quoted string with every character that could
end or bend the literal escaped (:func:`sdelang.emit.source.python_string`).
"""
from __future__ import annotations

from typing import Optional


def spec_text(model) -> Optional[str]:
    """``model.to_sde()``, or None when the model has no `.sde` form (an unprintable expression)."""
    try:
        return model.to_sde()
    except ValueError:
        return None


def model_from_spec(text: Optional[str], where: str):
    """The Model a generated module embeds; ``where`` names the caller for the error message."""
    if text is None:
        raise RuntimeError(f"{where} needs the sdelang Model, and this generated module embeds none; "
                           "compile it with model.compile(...) instead")
    from ..loader import parse

    return parse(text)
