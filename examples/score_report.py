"""What both score examples report: energy distance with a permutation p-value, and a plot of
samples over data (one panel per sampler). Shared by examples/score_torch.py and score_jax.py."""
from __future__ import annotations

import os

import numpy as np

from sdelang.check.two_sample import energy_distance_test

PERMUTATIONS = 499


def energy(x: np.ndarray, y: np.ndarray, seed: int) -> tuple:
    """(energy distance, permutation p-value) between two (n, 2) samples."""
    return energy_distance_test(x, y, PERMUTATIONS, np.random.default_rng(seed))


def plot(path: str, data: np.ndarray, results: dict, title: str, color: str = "C0") -> None:
    """Samples (one panel per entry of ``results``) over the data, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.2), sharex=True, sharey=True)
    for ax, (name, samples) in zip(np.atleast_1d(axes), results.items()):
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.75", label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c=color, alpha=0.6, label="samples")
        ax.set_title(name)
        ax.set_xlim(-3.5, 3.5)
        ax.set_ylim(-3.5, 3.5)
        ax.set_aspect("equal")
    np.atleast_1d(axes)[0].legend(loc="upper left", markerscale=4)
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
