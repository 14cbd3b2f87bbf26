"""Time budgets for symbolic steps: past its budget a step stops with a message, never a hang.

SymPy can take unbounded time on innocent-looking input (a 3 x 3 symbolic matrix exponential, a
trigonometric ``simplify``). Every derivation, the reading of a spec and code generation run
inside ``budget(step)``: when the step's time runs out it raises :class:`BudgetExceeded` (a
:class:`~sdelang.errors.DerivationError`) naming the step and the limit. Nested steps share the
tighter deadline, and the message names the innermost step.

The limit is ``DEFAULT_SECONDS`` (60 s), or the environment variable ``SDELANG_TIME_BUDGET``
(seconds; 0 switches budgets off), or, for a block of code, ``with sdelang.time_budget(seconds):``.
Budgets use ``SIGALRM`` and so apply in the main thread on POSIX systems; elsewhere steps run
unbounded.
"""
from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import List, Optional

from .errors import DerivationError

DEFAULT_SECONDS = 60.0


class BudgetExceeded(DerivationError):
    """A symbolic step ran past its time budget."""

    def __init__(self, step: str, seconds: float):
        self.step = step
        self.seconds = seconds
        super().__init__(
            f"{step} did not finish within its time budget of {seconds:g} s; raise it with "
            f"SDELANG_TIME_BUDGET=<seconds> or `with sdelang.time_budget(<seconds>):`, or simplify the model")


class _Expired(BaseException):
    """Raised by the alarm inside the running step (a BaseException, so that no ``except
    Exception`` in SymPy swallows it); turned into BudgetExceeded where the step began."""


@dataclass
class _Step:
    name: str
    deadline: float
    seconds: float


_active: List[_Step] = []
_override: List[Optional[float]] = []


def default_seconds() -> Optional[float]:
    """The budget of a step: the innermost ``time_budget`` block, else SDELANG_TIME_BUDGET, else
    DEFAULT_SECONDS; None (no budget) for 0 or less."""
    if _override:
        seconds = _override[-1]
    else:
        raw = os.environ.get("SDELANG_TIME_BUDGET", "").strip()
        try:
            seconds = float(raw) if raw else DEFAULT_SECONDS
        except ValueError:
            seconds = DEFAULT_SECONDS
    return seconds if seconds is not None and seconds > 0 else None


def share(fraction: float, at_most: float) -> Optional[float]:
    """A part of the step budget for one attempt inside a step (an exact derivation tried before
    a cheaper one, one rewrite among several): ``fraction`` of it, at most ``at_most`` seconds;
    None when budgets are off."""
    seconds = default_seconds()
    return None if seconds is None else min(at_most, seconds * fraction)


@contextlib.contextmanager
def time_budget(seconds: Optional[float]):
    """Every step started inside the block gets ``seconds`` (None or 0: no budget)."""
    _override.append(seconds)
    try:
        yield
    finally:
        _override.pop()


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _on_alarm(signum, frame):
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # again, should this one be swallowed somewhere
    raise _Expired()


def _arm(now: float) -> None:
    if _active:
        signal.setitimer(signal.ITIMER_REAL, max(_active[-1].deadline - now, 1e-4))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextlib.contextmanager
def budget(step: str, seconds: Optional[float] = None):
    """Run the block as the symbolic step ``step`` within ``seconds`` (default: default_seconds())."""
    seconds = default_seconds() if seconds is None else seconds
    if seconds is None or not _can_alarm():
        yield
        return
    now = time.monotonic()
    entry = _Step(step, now + seconds, seconds)
    if _active and _active[-1].deadline < entry.deadline:
        entry = _Step(step, _active[-1].deadline, _active[-1].seconds)
    previous = signal.getsignal(signal.SIGALRM) if not _active else None
    if not _active:
        signal.signal(signal.SIGALRM, _on_alarm)
    _active.append(entry)
    _arm(now)
    try:
        yield
    except _Expired:
        raise BudgetExceeded(entry.name, entry.seconds) from None
    finally:
        _active.pop()
        if not _active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        else:
            _arm(time.monotonic())


def budgeted(step: str):
    """Decorator: run the function as the budgeted step ``step``."""

    def wrap(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            with budget(step):
                return function(*args, **kwargs)

        return run

    return wrap
