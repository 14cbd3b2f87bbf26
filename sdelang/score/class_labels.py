"""Class labels of a conditional score network (the same in both backends).

A network for K classes takes labels y ∈ {0, …, K-1} and one more, the null label ∅ = K, that
stands for "no class": ``net(x, t)`` and ``net(x, t, None)`` are the unconditional score, which
classifier-free guidance needs and label dropout trains (Ho & Salimans 2022). The label enters as
the one-hot vector e_y ∈ R^{K+1}: appended to the MLP's input, or through a Linear map added to the
U-Net's time embedding.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def check_num_classes(num_classes: Optional[int]) -> Optional[int]:
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
    return int(num_classes)


def null_label(num_classes: int) -> int:
    """∅ = K: the label of the unconditional score."""
    return int(num_classes)


def checked_labels(labels, count: int, num_classes: int, what: str = "labels") -> np.ndarray:
    """``labels`` as int64 of shape (count,) with values in {0, …, K-1} (a single int is repeated),
    or a ValueError saying what is wrong."""
    values = np.asarray(labels)
    if values.ndim == 0:
        values = np.full(int(count), values)
    if values.shape != (int(count),):
        raise ValueError(f"{what} must have shape ({count},) (one per sample), got {values.shape}")
    if values.size and not np.all(np.equal(np.mod(values, 1), 0)):
        raise ValueError(f"{what} must be integers in [0, {num_classes - 1}]")
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"{what} must lie in [0, {num_classes - 1}] for num_classes={num_classes}, "
                         f"got values from {values.min()} to {values.max()}")
    return values
