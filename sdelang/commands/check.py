"""``sdelang check SPEC``: decide the spec's claims.

Symbolically, for every ``assert stationary p`` (and every ``--density p``) the density is plugged
into the Kolmogorov forward equation, ∂p/∂t = -Σ ∂_i(f_i p) + ½ Σ ∂_i∂_j(D_ij p); p is stationary
when the right-hand side vanishes identically (``Model.check_stationary``). With ``--numeric`` the
claim is also tested by simulation (``sdelang.check.numeric.run_numeric_check``); a picture of
the particles is written only when ``--plot [PATH]`` asks for one. Exit status 0
when every claim holds, 1 when one fails or is undecided.
"""
from __future__ import annotations

import argparse
import importlib
from typing import List

from ..emit.registry import available_backends
from ..model.model import Model
from .common import UsageError, add_spec_arguments, load_model, require_density

_NUMERIC_MODULE = "sdelang.check.numeric"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="check the spec's stationarity claims",
        description="Check that each density claimed stationary (assert stationary p, or --density p) "
                    "makes the Kolmogorov forward equation's right-hand side vanish. Exit status 0 if "
                    "all hold, 1 if one fails or cannot be decided, 2 for a bad spec or arguments.",
    )
    add_spec_arguments(parser)
    parser.add_argument("--density", "-d", action="append", default=[], metavar="NAME",
                        help="also check this declared density (repeatable)")
    parser.add_argument("--numeric", action="store_true", help="also test stationarity by simulation")
    parser.add_argument("--backend", "-b", metavar="NAME",
                        help="backend for --numeric (torch or jax; default torch)")
    plot = parser.add_mutually_exclusive_group()
    plot.add_argument("--plot", nargs="?", const=True, default=None, metavar="PATH",
                      help="with --numeric: save a picture of the particles over p, before and after, "
                           "to PATH (default SPEC.stationarity.png next to the spec; "
                           "MODEL.stationarity.png for standard input). Without --plot no file is written")
    plot.add_argument("--no-plot", dest="plot", action="store_false",
                      help="with --numeric: write no picture (the default; overrides an earlier --plot)")
    parser.add_argument("--seed", type=int, metavar="N", help="with --numeric: random seed (default 0)")
    parser.set_defaults(run=run)
    return parser


def stationary_claims(model: Model, extra: List[str]) -> List[str]:
    """The densities to check: the spec's ``assert stationary`` targets, then ``--density`` names."""
    names: List[str] = []
    for assertion in model.asserts:
        if assertion.kind != "stationary":
            raise UsageError(f"sdelang check cannot decide 'assert {assertion.kind} {assertion.target}'")
        names.append(assertion.target)
    names += extra
    for name in names:
        require_density(model, name)
    return list(dict.fromkeys(names))


def _verdict(holds: bool, undecided: bool = False) -> str:
    """"holds", "FAILS" or "UNDECIDED"."""
    if holds:
        return "holds"
    return "UNDECIDED" if undecided else "FAILS"


def _explain(result, out) -> None:
    out.write("".join(f"  {line}\n" for line in str(result).strip().splitlines()))


def check_symbolic(model: Model, name: str, out) -> bool:
    """Print ``stationary p: holds`` (or FAILS / UNDECIDED) and why (the explanation names the
    residual); True when it holds."""
    result = model.check_stationary(name)
    out.write(f"stationary {name}: {_verdict(result.holds, result.status == 'undecided')}\n")
    _explain(result, out)
    return result.holds


def numeric_checker():
    """``run_numeric_check`` from :mod:`sdelang.check.numeric`, or a usage error when absent."""
    try:
        module = importlib.import_module(_NUMERIC_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name is not None and _NUMERIC_MODULE.startswith(exc.name):
            raise UsageError("numeric check not available in this installation") from None
        raise
    return module.run_numeric_check


def plot_request(args: argparse.Namespace, model: Model):
    """What ``run_numeric_check(plot=...)`` gets: False (no picture: the default, and --no-plot),
    a path (--plot PATH), or for a bare --plot ``SPEC.stationarity.png`` next to the spec
    (``MODEL.stationarity.png`` in the working directory when the spec came from standard input)."""
    if args.plot is None or args.plot is False:
        return False
    if args.plot is True:
        if args.spec == "-":
            return f"{model.name}.stationarity.png"
        return f"{args.spec}.stationarity.png"
    return args.plot


def check_numeric(model: Model, name: str, args: argparse.Namespace, out) -> bool:
    result = numeric_checker()(
        model, name,
        backend=args.backend or "torch",
        seed=0 if args.seed is None else args.seed,
        plot=plot_request(args, model),
    )
    holds = bool(result.passed)
    out.write(f"stationary {name} (numeric): {_verdict(holds)}\n")
    _explain(result, out)
    return holds


def run(args: argparse.Namespace, out) -> int:
    if not args.numeric:
        given = [flag for flag, value in (("--backend", args.backend), ("--plot", args.plot or None),
                                          ("--seed", args.seed)) if value is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise UsageError(f"{' and '.join(given)} {verb} only with --numeric")
    model = load_model(args)
    names = stationary_claims(model, args.density)
    if args.numeric:
        numeric_checker()  # fail early (exit 2) when the numeric check is not installed
        if (args.backend or "torch") not in available_backends():
            raise UsageError(f"unknown backend '{args.backend}'; available: {', '.join(available_backends())}")
    if not names:
        declared = ", ".join(d.name for d in model.densities)
        out.write("nothing to check: the spec asserts no stationary density. To check one, "
                  + (f"pass --density NAME (declared: {declared}) or add 'assert stationary NAME'"
                     if declared else "declare it ('density p = ...') and add 'assert stationary p'")
                  + "; or derive the stationary law with 'sdelang derive SPEC --stationary'.\n")
        return 0
    all_hold = True
    for name in names:
        all_hold &= check_symbolic(model, name, out)
        if args.numeric:
            all_hold &= check_numeric(model, name, args, out)
    return 0 if all_hold else 1
