"""Pictures of samples: an image grid for image-shaped samples and a 2-D scatter of samples over
data whose axes follow the data. matplotlib is imported inside the functions (Agg backend, so no
display is needed); inputs may be numpy, torch or jax arrays.

    image_grid(result.samples, "out/grid.png", title="EM, 500 steps")   # (n, C, H, W) or (n, H, W)
    scatter_panels("out/vp.png", data, {"EM": x_em, "ODE": x_ode}, title="VP")
"""
from __future__ import annotations

import math
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


def to_numpy(x) -> np.ndarray:
    """numpy / torch / jax array as a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def pyplot():
    """matplotlib.pyplot on the Agg backend (unless a backend was chosen already)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path, dpi: int) -> str:
    plt = pyplot()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return os.fspath(path)


def as_images(samples) -> np.ndarray:
    """(n, H, W) or (n, C, H, W) as (n, H, W) (one channel) or (n, H, W, C) (C = 3 or 4)."""
    x = to_numpy(samples)
    if x.ndim == 3:
        return x
    if x.ndim != 4:
        raise ValueError(f"image_grid takes samples of shape (n, H, W) or (n, C, H, W), got {x.shape}")
    channels = x.shape[1]
    if channels == 1:
        return x[:, 0]
    if channels in (3, 4):
        return np.transpose(x, (0, 2, 3, 1))
    raise ValueError(f"image_grid shows 1, 3 or 4 channels, got {channels} (shape {x.shape})")


def tile(images: np.ndarray, ncol: int, pad: int, fill: float) -> np.ndarray:
    """The images (n, H, W[, C]) tiled row by row into one array with ``pad`` pixels between them."""
    n, h, w = images.shape[:3]
    nrow = math.ceil(n / ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, *images.shape[3:]), fill)
    for k in range(n):
        r, c = divmod(k, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = images[k]
    return grid


def image_grid(samples, path, *, ncol: Optional[int] = None, max_images: int = 100,
               value_range: Tuple[float, float] = (-1.0, 1.0), title: Optional[str] = None, pad: int = 1,
               cmap: str = "gray", scale: float = 0.12, dpi: int = 110) -> str:
    """Save the first ``max_images`` of ``samples`` ((n, H, W) or (n, C, H, W) with C = 1, 3, 4) as
    one grid of ``ncol`` columns (default ⌈√n⌉) to ``path``; values are shown on ``value_range``
    (clipped to it: out-of-range pixels appear saturated). Returns the path."""
    images = as_images(samples)[:max_images]
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    low, high = value_range
    images = np.clip((np.nan_to_num(images, nan=low) - low) / (high - low), 0.0, 1.0)
    ncol = int(ncol or math.ceil(math.sqrt(len(images))))
    grid = tile(images, ncol, pad, fill=1.0)
    plt = pyplot()
    height, width = grid.shape[:2]
    fig = plt.figure(figsize=(max(2.0, width * scale), max(2.0, height * scale) + (0.4 if title else 0.0)))
    ax = fig.add_axes((0, 0, 1, height * scale / fig.get_figheight()))
    ax.imshow(grid, cmap=cmap if grid.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.05 / fig.get_figheight())
    return save(fig, path, dpi)


def data_limits(*arrays, quantile: float = 0.995, pad: float = 0.08) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    """((x_lo, x_hi), (y_lo, y_hi)) for 2-D points: the [1 - quantile, quantile] quantiles of the
    pooled finite points per axis, widened by ``pad`` times the span on each side."""
    pooled = np.concatenate([to_numpy(a).reshape(-1, 2) for a in arrays])
    pooled = pooled[np.all(np.isfinite(pooled), axis=1)]
    if len(pooled) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    limits = []
    for j in range(2):
        lo, hi = np.quantile(pooled[:, j], [1.0 - quantile, quantile])
        span = hi - lo if hi > lo else max(1.0, abs(lo))
        limits.append((float(lo - pad * span), float(hi + pad * span)))
    return limits[0], limits[1]


def scatter_panels(path, data, results: Dict[str, object], title: str = "", *, color: str = "C0",
                   limits=None, quantile: float = 0.995, pad: float = 0.08, dpi: int = 110) -> str:
    """Samples (one panel per entry of ``results``, each (n, 2)) over ``data`` (grey), saved to
    ``path``. The axes come from the data (:func:`data_limits` with ``quantile`` and ``pad``) unless
    ``limits`` = ((x_lo, x_hi), (y_lo, y_hi)) is given; a panel's title says how many samples fall
    outside the view. Returns the path."""
    data = to_numpy(data)
    (x_lo, x_hi), (y_lo, y_hi) = limits if limits is not None else data_limits(data, quantile=quantile, pad=pad)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.2), sharex=True, sharey=True,
                             squeeze=False)
    for ax, (name, samples) in zip(axes[0], results.items()):
        samples = to_numpy(samples).reshape(-1, 2)
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.75", label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c=color, alpha=0.6, label="samples")
        outside = int(np.sum(~((samples[:, 0] >= x_lo) & (samples[:, 0] <= x_hi)
                               & (samples[:, 1] >= y_lo) & (samples[:, 1] <= y_hi))))
        ax.set_title(name + (f"\n({outside} of {len(samples)} outside the view)" if outside else ""))
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.set_aspect("equal")
    axes[0][0].legend(loc="upper left", markerscale=4)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path, dpi)


__all__: Sequence[str] = ("image_grid", "scatter_panels", "data_limits", "as_images", "tile")
