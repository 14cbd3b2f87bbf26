"""The `.sde` front end's syntax stage: grammar, parser and AST (with source spans)."""
from . import ast
from .parser import parse_spec

__all__ = ["ast", "parse_spec"]
