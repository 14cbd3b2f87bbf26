"""Pieces every subcommand shares: the SPEC argument, ``--param NAME=VALUE`` overrides, loading,
usage errors (exit status 2) and atomic file output."""
from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import tempfile
from typing import Dict, List, Tuple, Union

from ..errors import did_you_mean
from ..loader import load, parse, read_spec_text
from ..model.model import Model

Number = Union[int, float]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")


class UsageError(Exception):
    """Bad command-line arguments that argparse cannot see (exit status 2)."""


def parse_param_assignment(text: str) -> Tuple[str, Number]:
    """``"theta=2"`` -> ``("theta", 2)``; ``"sigma=0.5"`` -> ``("sigma", 0.5)`` (argparse ``type``)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not _IDENTIFIER.match(name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if _INTEGER.match(raw):
        return name, int(raw)
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"parameter '{name}' needs a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"parameter '{name}' needs a finite number, got {raw!r}")
    return name, value


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """``SPEC`` and ``--param NAME=VALUE`` (repeatable)."""
    parser.add_argument("spec", metavar="SPEC", help="the .sde file")
    parser.add_argument(
        "--param", "-p", dest="params", metavar="NAME=VALUE", action="append", default=[],
        type=parse_param_assignment,
        help="override a parameter's value (repeatable), e.g. --param theta=2.0",
    )


def param_overrides(assignments: List[Tuple[str, Number]]) -> Dict[str, Number]:
    overrides: Dict[str, Number] = {}
    for name, value in assignments:
        if name in overrides:
            raise UsageError(f"parameter '{name}' is given twice")
        overrides[name] = value
    return overrides


def load_model(args: argparse.Namespace) -> Model:
    """The spec of ``args.spec`` (``-``: standard input) with the ``--param`` overrides
    (SpecError if either is bad)."""
    overrides = param_overrides(args.params)
    if args.spec == "-":
        return parse(read_spec_text(sys.stdin.buffer, "<stdin>"), path="<stdin>", **overrides)
    return load(args.spec, **overrides)


def require_density(model: Model, name: str) -> None:
    """UsageError unless the model declares a density ``name``."""
    names = [d.name for d in model.densities]
    if name not in names:
        declared = ", ".join(names) if names else "none"
        raise UsageError(f"no density '{name}' in the spec{did_you_mean(name, names)}; declared: {declared}")


def output_target(path: str, protected: Tuple[str, ...] = ()) -> str:
    """The regular file that writing to ``path`` may replace: ``path`` itself, or the file a
    symbolic link points to (written through, as ``cp`` does; the link stays). UsageError for
    anything that is not a regular file (a directory, FIFO, socket or device) and for a file in
    ``protected`` (the spec being compiled), however it is named."""
    target = os.path.realpath(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"refusing to write {path}: it is not a regular file")
    for other in protected:
        try:
            if os.path.samefile(target, other):
                raise UsageError(f"refusing to write {path}: it is the spec {other} itself")
        except OSError:
            continue
    return target


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and ``os.replace``:
    readers see the old file or the complete new one, never a partial write. ``path`` must be a
    regular file or not exist (see :func:`output_target`)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
