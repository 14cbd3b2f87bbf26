"""A picture of a numeric stationarity check (matplotlib, Agg backend: no display needed).

1-D (or the first coordinate of an elementwise model): histograms of the particles before and after
the simulation over the normalised target density. 2-D and more: scatter of the first two
coordinates before and after over the contours of log p (in higher dimensions the other
coordinates are held at their reference means, so the contours are a slice, as the title says).
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np


def plot_stationarity(
    path: str,
    log_density: Callable[[np.ndarray], np.ndarray],
    before: np.ndarray,
    after: np.ndarray,
    reference: np.ndarray,
    names: Sequence[str],
    title: str,
    marginal_log_density: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> str:
    """Save the figure to ``path`` (folders are created) and return the path.

    ``marginal_log_density``: log p of the first coordinate alone (x (K, 1) -> (K,)); when given
    (1-D models, elementwise models) the plot is the histogram of that coordinate over it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    dim = after.shape[1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
    finite = lambda a: a[np.all(np.isfinite(a), axis=1)]
    before, after = finite(before), finite(after)
    lo, hi = np.percentile(reference, 0.05, axis=0), np.percentile(reference, 99.95, axis=0)
    pad = 0.15 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    if dim == 1 or marginal_log_density is not None:
        grid = np.linspace(lo[0], hi[0], 400)
        marginal = marginal_log_density if marginal_log_density is not None else log_density
        lp = marginal(grid[:, None])
        dens = np.exp(lp - np.nanmax(lp))
        dens /= np.trapezoid(dens, grid)
        for ax, sample, label in ((axes[0], before, "start"), (axes[1], after, "after simulation")):
            ax.hist(sample[:, 0], bins=80, range=(lo[0], hi[0]), density=True, alpha=0.55, label=label)
            ax.plot(grid, dens, "k-", lw=1.5, label="p")
            ax.set_xlabel(names[0])
            ax.legend()
    else:
        gx, gy = np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200)
        X, Y = np.meshgrid(gx, gy)
        pts = np.tile(reference.mean(axis=0), (X.size, 1))
        pts[:, 0], pts[:, 1] = X.ravel(), Y.ravel()
        lp = log_density(pts).reshape(X.shape)
        lp = np.where(np.isfinite(lp), lp - np.nanmax(lp), -50)
        for ax, sample, label in ((axes[0], before, "start"), (axes[1], after, "after simulation")):
            k = min(len(sample), 3000)
            ax.scatter(sample[:k, 0], sample[:k, 1], s=2, alpha=0.35, label=label)
            ax.contour(X, Y, lp, levels=[-8, -4.5, -2, -0.5], colors="k", linewidths=0.8)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_xlabel(names[0])
            ax.set_ylabel(names[1])
            ax.legend(loc="upper right", markerscale=4)
        if dim > 2:
            title += f"  (contours: slice at the mean of {', '.join(names[2:])})"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

