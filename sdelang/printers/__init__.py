"""Printers: a Model as `.sde` text (round-trips through the parser), LaTeX, or a plain summary."""
from .equation import equation_text
from .expression import SdeExpressionPrinter, UnprintableExpression, sde_expression
from .latex import to_latex
from .sde import to_sde
from .text import to_text
from ..model.methods import bind

bind(to_sde=to_sde, to_latex=to_latex, to_text=to_text)

__all__ = ["SdeExpressionPrinter", "equation_text", "UnprintableExpression", "sde_expression", "to_latex", "to_sde", "to_text"]
