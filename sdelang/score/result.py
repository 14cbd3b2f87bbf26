"""The result of a sampler."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class SampleResult:
    """Samples (n, dim) at t0 + t_min, the number of score-network evaluations made (NFE) and the
    sampler's name."""

    samples: Any
    nfe: int
    method: str
