"""The ``sdelang`` command line (``sdelang derive|compile|check SPEC ...``).

Exit status: 0 success, 1 a check that does not hold (or an unexpected failure), 2 a bad spec or
bad arguments. A bad spec prints its SpecError (``path:line:col: message``, the line, a caret) on
stderr, never a traceback; set ``SDELANG_DEBUG=1`` to see tracebacks of unexpected failures.
Neither torch nor jax is imported unless ``check --numeric`` simulates (``compile`` only writes
source text and imports no framework).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .commands import SUBCOMMANDS
from .commands.common import UsageError
from .errors import DerivationError, SpecError
from .printers import UnprintableExpression

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdelang",
        description="Declarative SDE/ODE models: derive (KFP, reverse-time SDE, probability flow), "
                    "compile to torch or JAX, check stationarity.",
    )
    parser.add_argument("--version", "-V", action="version", version=f"sdelang {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(subparsers)
    return parser


def _debug() -> bool:
    return os.environ.get("SDELANG_DEBUG", "") not in ("", "0")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage errors (status 2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:  # bare `sdelang`: the overview, as --help prints it
        parser.print_help(sys.stdout)
        return EXIT_OK
    try:
        return args.run(args, sys.stdout)
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"sdelang {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DerivationError, UnprintableExpression) as exc:  # the model does not admit what was asked
        print(f"sdelang {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `sdelang derive spec | head`
        return EXIT_OK
    except Exception as exc:
        if _debug():
            raise
        message = str(exc).splitlines()[0] if str(exc) else ""
        print(f"sdelang {args.command}: error: {type(exc).__name__}: {message} "
              f"(set SDELANG_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_FAILED
