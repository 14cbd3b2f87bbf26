"""What both score examples report: energy distance with a permutation p-value, and a plot of
samples over data (one panel per sampler, axes from the data). Shared by examples/score_torch.py and score_jax.py."""
from __future__ import annotations

import numpy as np

from sdelang.check.two_sample import energy_distance_test
from sdelang.score.plots import scatter_panels

PERMUTATIONS = 499


def energy(x: np.ndarray, y: np.ndarray, seed: int) -> tuple:
    """(energy distance, permutation p-value) between two (n, 2) samples."""
    return energy_distance_test(x, y, PERMUTATIONS, np.random.default_rng(seed))


def plot(path: str, data: np.ndarray, results: dict, title: str, color: str = "C0") -> None:
    """Samples (one panel per entry of ``results``) over the data, saved to ``path``; the axes
    follow the data (sdelang.score.plots.scatter_panels: 0.5 %/99.5 % quantiles plus 8 % padding)."""
    scatter_panels(path, data, results, title, color=color)
