"""The time embedding of the default score networks (the same in both backends)."""
from __future__ import annotations

import math
from typing import List

FREQUENCIES = 8


def fourier_frequencies(count: int = FREQUENCIES) -> List[float]:
    """ω_k = π k, k = 1..count: the features [sin(ω_k t), cos(ω_k t)] of t on [0, 1]. Their common
    period is 2, so they tell every two times of [0, 1] apart (cos πt alone is monotone there);
    2πk would give t = 1 exactly the features of t = 0, the prior's time those of the data's."""
    return [math.pi * k for k in range(1, int(count) + 1)]
