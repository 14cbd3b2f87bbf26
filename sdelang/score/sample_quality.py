"""How close are generated samples to real data? Two-sample distances and range checks, numpy only
(no torch / jax: samples from either backend are converted with ``np.asarray`` first).

- :func:`mmd2`: squared maximum mean discrepancy with the Gaussian kernel
  k(a, b) = exp(-|a - b|² / (2 h²)), by default the unbiased estimator (Gretton et al. 2012, eq. 3)

      MMD²_u = 1/(n(n-1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m-1)) Σ_{i≠j} k(y_i, y_j) - 2/(nm) Σ_{i,j} k(x_i, y_j),

  whose expectation is the population MMD² (0 for identical laws, so it can be negative), or
  the biased V-statistic (``unbiased=False``: means over all pairs, diagonals included), whose
  expectation for identical laws is the positive floor (1/n + 1/m)(1 - E k(X, X')).
- :func:`median_bandwidth`: the median heuristic, h = median{|z_i - z_j| : i < j} over the pooled
  reference points z (at most ``max_points`` of them, drawn without replacement). Fix h once from
  the real data and pass it to every comparison, so that the numbers share one kernel.
- :func:`energy_distance`: E = 2 E|X - Y| - E|X - X'| - E|Y - Y'| as the V-statistic of
  :func:`sdelang.check.two_sample.energy_distance_test` (the one implementation in the project);
  its expectation for identical laws is (1/n + 1/m) E|X - X'|.
- :func:`fraction_outside`: the fraction of values outside [low, high] (NaN and ±inf count as outside).
- :func:`split_halves`: two disjoint random halves of the real data, for the real-vs-real reference.

Samples of any shape (n, *shape) are flattened to (n, prod(shape)).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.spatial.distance

from sdelang.check.two_sample import energy_distance_test


def as_rows(x) -> np.ndarray:
    """x (numpy, torch or jax; shape (n, *shape)) as a float64 numpy array (n, prod(shape))."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("expected samples with a leading batch axis, got a scalar")
    if x.ndim == 1:
        return x[:, None]
    return x.reshape(x.shape[0], -1)


def median_bandwidth(*arrays, max_points: int = 2000, seed: int = 0) -> float:
    """The median heuristic: h = median of |z_i - z_j| (i < j) over the rows z of the pooled
    ``arrays`` (a random subset of ``max_points`` of them when there are more)."""
    pooled = np.concatenate([as_rows(a) for a in arrays])
    if len(pooled) > max_points:
        pooled = pooled[np.random.default_rng(seed).choice(len(pooled), max_points, replace=False)]
    if len(pooled) < 2:
        raise ValueError("the median heuristic needs at least two points")
    h = float(np.median(scipy.spatial.distance.pdist(pooled)))
    if not h > 0:
        raise ValueError("the median pairwise distance is 0: pass bandwidth= explicitly")
    return h


def gaussian_kernel(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """k(x_i, y_j) = exp(-|x_i - y_j|² / (2 h²)), shape (n, m)."""
    return np.exp(-scipy.spatial.distance.cdist(x, y, "sqeuclidean") / (2.0 * bandwidth ** 2))


def mmd2(x, y, bandwidth: Optional[float] = None, unbiased: bool = True) -> float:
    """MMD² between samples x (n, ...) and y (m, ...) with the Gaussian kernel of bandwidth h
    (``None``: the median heuristic on x and y pooled; pass one h for comparable numbers).
    Unbiased estimator by default (module docstring); ``unbiased=False``: the V-statistic."""
    x, y = as_rows(x), as_rows(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} numbers per sample, y has {y.shape[1]}")
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError("MMD² needs at least two samples on each side")
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    kxx, kyy, kxy = gaussian_kernel(x, x, h), gaussian_kernel(y, y, h), gaussian_kernel(x, y, h)
    if unbiased:
        sxx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    else:
        sxx, syy = kxx.mean(), kyy.mean()
    return float(sxx + syy - 2.0 * kxy.mean())


def energy_distance(x, y) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (V-statistic) between x (n, ...) and y (m, ...)."""
    x, y = as_rows(x), as_rows(y)
    value, _ = energy_distance_test(x, y, 0, np.random.default_rng(0))
    return float(value)


def fraction_outside(x, low: float = -1.1, high: float = 1.1) -> float:
    """Fraction of the values of x outside [low, high]; NaN and ±inf count as outside."""
    x = as_rows(x).ravel()
    if x.size == 0:
        return 0.0
    inside = (x >= low) & (x <= high)
    return float(1.0 - inside.mean())


def split_halves(data, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves (first: floor(N/2) rows, second: the rest) of ``data`` (N, ...),
    shapes kept, for a real-vs-real reference with the same sample sizes as a comparison."""
    data = np.asarray(data.detach().cpu().numpy() if hasattr(data, "detach") else data)
    order = np.random.default_rng(seed).permutation(len(data))
    half = len(data) // 2
    return data[order[:half]], data[order[half:]]
