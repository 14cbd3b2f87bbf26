"""The toy data sets of sdelang.toy_data (backend-free): seeded, 2-D, about unit scale."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sdelang.toy_data import TOY_DATA, eight_gaussians_log_density, sample_toy

ALPHA = 1e-3


@pytest.mark.parametrize("name", sorted(TOY_DATA))
def test_toy_data_is_seeded_two_dimensional_and_about_unit_scale(name):
    a, b = sample_toy(name, 5000, seed=1), sample_toy(name, 5000, seed=1)
    assert a.shape == (5000, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, sample_toy(name, 5000, seed=2))
    assert np.all(np.abs(a.mean(0)) < 0.1) and np.all((a.std(0) > 0.5) & (a.std(0) < 1.5))


def test_eight_gaussians_has_eight_equally_weighted_modes():
    x = sample_toy("eight_gaussians", 8000, seed=0)
    k = np.round(np.arctan2(x[:, 1], x[:, 0]) / (2 * np.pi / 8)).astype(int) % 8
    assert stats.chisquare(np.bincount(k, minlength=8)).pvalue > ALPHA
    assert np.allclose(np.linalg.norm(x, axis=1).mean(), 1.5, atol=0.02)


def test_eight_gaussians_log_density_is_normalised():
    g = np.linspace(-3, 3, 601)
    X, Y = np.meshgrid(g, g)
    p = np.exp(eight_gaussians_log_density(np.stack([X.ravel(), Y.ravel()], 1)))
    assert p.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-6)
