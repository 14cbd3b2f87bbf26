"""``sdelang derive SPEC``: print the model, or what follows from it.

Order of operations: ``--reverse``/``--flow`` build the derived model, ``--to`` converts its
calculus, ``--kfp`` prints the forward (Kolmogorov–Fokker–Planck) equation of the result instead of
the model itself; ``--format`` picks `.sde` text (default; a model parses back, an equation is
written in the `.sde` expression language), LaTeX or readable text.
"""
from __future__ import annotations

import argparse

import sympy

from ..model.model import Model
from ..printers import equation_text, to_latex, to_sde, to_text
from ..printers.equation import latex
from ..printers.expression import SdeExpressionPrinter
from .common import UsageError, add_spec_arguments, load_model, require_density

FORMATS = ("sde", "latex", "text")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "derive",
        help="print the model or a derived model / equation",
        description=(
            "Print the model (as .sde text by default), or the model derived from it: --reverse "
            "(reverse-time SDE in its own time s = T - t), --flow (probability-flow ODE), "
            "--to (the other calculus), --kfp (the Kolmogorov forward equation). Derivations apply "
            "in that order: --reverse/--flow, then --to, then --kfp."
        ),
    )
    add_spec_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--reverse", action="store_true", help="the reverse-time SDE")
    which.add_argument("--flow", action="store_true", help="the probability-flow ODE")
    parser.add_argument("--to", choices=("ito", "stratonovich"), help="convert to this calculus")
    parser.add_argument("--kfp", action="store_true", help="print the Kolmogorov forward (Fokker–Planck) equation")
    parser.add_argument("--stationary", action="store_true",
                        help="print the stationary density derived in closed form (1-D diffusions, detailed balance)")
    parser.add_argument(
        "--score", metavar="NAME",
        help="with --reverse/--flow: use the exact score of the declared density NAME "
             "(default: a learned network score(x, t))",
    )
    parser.add_argument("--format", "-f", choices=FORMATS, default="sde",
                        help="output format (default: sde): a model as .sde text that parses back, an "
                             "equation (--kfp) in the .sde expression language (grad(p)); latex; text "
                             "(a model's summary, an equation with ∂²p/∂x²)")
    parser.set_defaults(run=run)
    return parser


def derived_model(model: Model, args: argparse.Namespace) -> Model:
    """The model after ``--reverse``/``--flow`` and ``--to``."""
    if args.score is not None:
        if not (args.reverse or args.flow):
            raise UsageError("--score needs --reverse or --flow")
        require_density(model, args.score)
    if args.reverse:
        model = model.reverse(score=args.score)
    elif args.flow:
        model = model.probability_flow(score=args.score)
    if args.to == "ito":
        model = model.to_ito()
    elif args.to == "stratonovich":
        model = model.to_stratonovich()
    if args.to is not None and model.is_ode and model.calculus != "ito":
        # An ODE has no noise, so no calculus: its Itô and Stratonovich forms are the same
        # equation, and `calculus stratonovich` in its text would only mislead.
        model = model.replace(calculus="ito")
    return model


def format_model(model: Model, fmt: str) -> str:
    if fmt == "latex":
        return to_latex(model) + "\n"
    if fmt == "text":
        return to_text(model) + "\n"
    return to_sde(model)


def format_equation(model: Model, equation: sympy.Eq, fmt: str) -> str:
    """A PDE such as the KFP, ``∂p/∂t = rhs``: the right side in the `.sde` expression language
    (``grad(p)``, ``^``), readable text (``∂²p/∂x²``) or LaTeX (:mod:`sdelang.printers.equation`)."""
    return equation_text(model, equation, fmt) + "\n"


def format_density(model: Model, p: sympy.Expr, fmt: str) -> str:
    """The stationary density: a `.sde` density statement, LaTeX, or ``p(x, y) ∝ ...``."""
    states = ", ".join(s.name for s in model.states)
    if fmt == "latex":
        return rf"p({states}) \propto {latex(p)}" + "\n"
    if fmt == "text":
        return f"p({states}) ∝ {SdeExpressionPrinter(states=model.states, strict=False).doprint(p)}\n"
    printer = SdeExpressionPrinter(states=model.states, symbols=set(model.states) | set(model.params))
    return f"density p = {printer.doprint(p)}\n"


def run(args: argparse.Namespace, out) -> int:
    model = derived_model(load_model(args), args)
    if args.stationary:
        if args.kfp:
            raise UsageError("--stationary and --kfp print different things; choose one")
        out.write(format_density(model, model.stationary_density(), args.format))
        return 0
    if args.kfp:
        out.write(format_equation(model, model.kfp(), args.format))
    else:
        out.write(format_model(model, args.format))
    return 0
