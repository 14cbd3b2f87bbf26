"""Timing shared by the benchmarks: both sides alternately, medians of the times and of the ratios."""
from __future__ import annotations

import os
import statistics
import time
from typing import NamedTuple


class Paired(NamedTuple):
    """Medians of a paired timing: seconds of each side and the median of the per-pair ratios,
    with the quartiles of those ratios (their spread on this machine)."""

    ours: float
    reference: float
    ratio: float
    ratio_q1: float = float("nan")
    ratio_q3: float = float("nan")


def paired_medians(ours, reference, repeats, sync) -> Paired:
    """Median seconds of ``ours`` and ``reference`` and the median of the ratios of the pairs, the
    two run alternately (after one warm-up each) so that a busy shared machine slows both alike;
    the ratio of each pair is taken under one load, so its median is steadier than the ratio of
    the medians. The order within a pair alternates (ours first, then the reference first), so
    that whatever the first of two runs pays (the allocator's state after the other side, caches)
    falls on both sides alike."""
    for fn in (ours, reference):
        fn()
        sync()
    times = ([], [])
    for k in range(repeats):
        order = ((ours, times[0]), (reference, times[1]))
        for fn, out in (order if k % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(*times)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    return Paired(statistics.median(times[0]), statistics.median(times[1]), statistics.median(ratios), q1, q3)


def publish(lines, out) -> str:
    """The markdown table ``lines`` printed and, when ``out`` is a path, written there."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            fh.write(text)
    return text
