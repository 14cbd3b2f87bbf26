"""Timing shared by the benchmarks: both sides alternately, medians."""
from __future__ import annotations

import os
import statistics
import time


def paired_medians(ours, reference, repeats, sync):
    """Median seconds of ``ours`` and ``reference``, run alternately (after one warm-up each) so
    that a busy shared machine slows both alike."""
    for fn in (ours, reference):
        fn()
        sync()
    times = ([], [])
    for _ in range(repeats):
        for fn, out in zip((ours, reference), times):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def publish(lines, out) -> str:
    """The markdown table ``lines`` printed and, when ``out`` is a path, written there."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            fh.write(text)
    return text
