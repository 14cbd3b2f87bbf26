"""glibc malloc settings that keep torch's freed CPU buffers for reuse.

torch allocates CPU tensors with malloc. glibc serves a block above its mmap threshold (128 KiB at
first, raised up to 32 MiB as such blocks are freed) by a fresh mmap, and returns the free top of
the heap to the system once it exceeds the trim threshold. A sampler or trainer step allocates and
frees the same activations every step (10 000 × 128 float32 = 5 MiB each), so those buffers keep
going back to the system and coming back as new pages, and every first write of a new page is a
page fault in which the kernel zeroes it. Measured here (torch PC sampler, ScoreMLP 2-128-128-128-2,
10 000 samples, one thread; ``benchmarks/bench_allocator.py``): with the settings below SiLU stops
paying for those faults (2.62 -> 2.28 ms per call) and sdelang's sampler takes 3.29 s instead of
3.85 s, where the hand-written loop takes 3.2 s either way.

The settings: M_MMAP_THRESHOLD = 32 MiB (glibc's largest; blocks below it come from the heap) and
M_TRIM_THRESHOLD = 256 MiB (free memory at the top of the heap is kept up to that much). They apply
to the whole process, once, at the first sdelang torch call (``SDELANG_TORCH_MALLOC``):
  unset, "" or "auto"  set them on Linux with glibc (elsewhere nothing happens);
  "off"                leave malloc alone.
The price: up to 256 MiB of freed memory stays with the process instead of going back to the system.
"""
from __future__ import annotations

import ctypes
import os
import platform

ENV_VAR = "SDELANG_TORCH_MALLOC"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
_applied = None


def keep_freed_memory() -> bool:
    """Apply the settings of the module docstring once per process; True when they are in force."""
    global _applied
    if _applied is not None:
        return _applied
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value not in ("", "auto", "off"):
        raise ValueError(f"{ENV_VAR} must be 'auto' or 'off', got {value!r}")
    _applied = False
    if value != "off" and platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL(None)
        _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


__all__ = ["ENV_VAR", "keep_freed_memory"]
