"""The time embedding of the default score networks (the same in both backends)."""
from __future__ import annotations

import math
from typing import List

FREQUENCIES = 8


def fourier_frequencies(count: int = FREQUENCIES) -> List[float]:
    """ω_k = 2π k, k = 1..count: the features [sin(ω_k t), cos(ω_k t)] of t on [0, 1]."""
    return [2 * math.pi * k for k in range(1, int(count) + 1)]
