"""torch's intra-op thread count for the duration of one sdelang call.

    with intra_op_threads(numel):      # numel: elements of one step's state, e.g. x0.numel()
        ...                            # torch ops here run with threads_for(numel) threads

On a shared 2-core CPU, torch's default of one intra-op thread per core made small batched work
20-60x slower under load (the pool's threads spin waiting for a core that another process holds),
and it buys nothing when quiet: an elementwise op on fewer than 32 768 elements runs on one thread
anyway (torch's grain size), and a 2 -> 64 -> 64 -> 2 MLP on a few thousand rows is too small to
split. So sdelang uses one thread for small work and leaves larger work to torch.

The knob: the environment variable ``SDELANG_TORCH_THREADS``, read at every call:
  unset, "" or "auto"  1 thread when ``numel`` < ``SMALL_WORK`` (65 536), else torch's current
                       count (``torch.get_num_threads()``, i.e. what the user or torch chose);
  "torch"              never change torch's setting;
  an integer n >= 1    n threads for every sdelang call.
The count in force before the call is restored afterwards (also when the call raises). Samplers,
trainers and other runtime entry points apply it the same way: wrap the call's body in
``with intra_op_threads(x.numel()):``.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

import torch

from .allocator import keep_freed_memory

ENV_VAR = "SDELANG_TORCH_THREADS"
SMALL_WORK = 1 << 16
"""Below this many elements per step the "auto" policy runs on one thread."""


def threads_for(numel: Optional[int] = None) -> Optional[int]:
    """The intra-op thread count for work of ``numel`` elements per step (None: unknown size),
    following ``SDELANG_TORCH_THREADS``; None means "leave torch's setting alone"."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    current = torch.get_num_threads()
    if value in ("", "auto"):
        if numel is not None and numel < SMALL_WORK:
            return 1
        return None
    if value == "torch":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{ENV_VAR} must be 'auto', 'torch' or a positive integer, got {value!r}")
    return n if n != current else None


@contextlib.contextmanager
def intra_op_threads(numel: Optional[int] = None) -> Iterator[int]:
    """Set torch's intra-op threads to :func:`threads_for` ``(numel)`` for the body of the
    ``with`` block and restore the previous count afterwards; yields the count in force. Also
    applies the malloc settings of :mod:`sdelang_torch.allocator` (once per process)."""
    keep_freed_memory()
    before = torch.get_num_threads()
    n = threads_for(numel)
    if n is None or n == before:
        yield before
        return
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


__all__ = ["ENV_VAR", "SMALL_WORK", "intra_op_threads", "threads_for"]
