"""Timing shared by the benchmarks: both sides alternately, medians of the times and of the ratios."""
from __future__ import annotations

import os
import statistics
import time
from typing import NamedTuple


class Paired(NamedTuple):
    """Medians of a paired timing: seconds of each side and the median of the per-pair ratios."""

    ours: float
    reference: float
    ratio: float


def paired_medians(ours, reference, repeats, sync) -> Paired:
    """Median seconds of ``ours`` and ``reference`` and the median of the ratios of the pairs, the
    two run alternately (after one warm-up each) so that a busy shared machine slows both alike;
    the ratio of each pair is taken under one load, so its median is steadier than the ratio of
    the medians."""
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
    ratio = statistics.median(a / b for a, b in zip(*times))
    return Paired(statistics.median(times[0]), statistics.median(times[1]), ratio)


def publish(lines, out) -> str:
    """The markdown table ``lines`` printed and, when ``out`` is a path, written there."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            fh.write(text)
    return text
