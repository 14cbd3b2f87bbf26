"""``sdelang compile SPEC --backend torch|jax [-o FILE]``: the generated Python source.

The backend is imported only here, on demand; an unknown or uninstalled backend is a usage error
(exit status 2). With ``-o`` the file is written atomically (no partial file on failure), through a symbolic
link to the file it names; the spec itself and anything that is not a regular file are refused.
"""
from __future__ import annotations

import argparse

from ..emit.registry import BackendError, available_backends, emit
from .common import UsageError, add_spec_arguments, load_model, output_target, write_atomically


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compile",
        help="generate solver code for a backend",
        description="Generate the Python source of the model for a backend (torch: torchsde/torchdiffeq; "
                    "jax: diffrax) and print it, or write it to FILE.",
    )
    add_spec_arguments(parser)
    parser.add_argument(
        "--backend", "-b", required=True, metavar="NAME",
        help=f"the backend ({', '.join(available_backends())})",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the source to FILE instead of stdout")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, out) -> int:
    model = load_model(args)
    try:
        source = emit(model, args.backend)
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    if args.output is None:
        out.write(source)
        return 0
    target = output_target(args.output, protected=(args.spec,) if args.spec != "-" else ())
    try:
        write_atomically(target, source)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0
