"""The subcommands of the ``sdelang`` command line: derive, compile, check."""
from . import check, compile, derive

SUBCOMMANDS = (derive, compile, check)

__all__ = ["SUBCOMMANDS", "check", "compile", "derive"]
