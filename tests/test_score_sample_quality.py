"""sdelang.score.sample_quality against closed forms for Gaussian laws.

For X ~ N(μ₁, s₁² I_d), Y ~ N(μ₂, s₂² I_d) and the kernel exp(-|a - b|² / (2h²)):
E k(X, Y) = (h² / (h² + s₁² + s₂²))^{d/2} exp(-|μ₁ - μ₂|² / (2 (h² + s₁² + s₂²))), so the population
MMD² = E k(X, X') + E k(Y, Y') - 2 E k(X, Y) is known; for identical laws the unbiased estimator
is a degenerate U-statistic with variance τ (2/(n(n-1)) + 2/(m(m-1)) + 4/(nm)), τ = E k̃(X, X')²
for the centred kernel k̃, also in closed form. E|Z| for Z ~ N(0, v I_d) is √v · √2 Γ((d+1)/2) / Γ(d/2)
(the chi distribution's mean), which gives the energy distance's expectation.

Each statistical check is a z-test of a mean over R independent replicates at |z| < 4 (seeded,
so deterministic); a planted bug (the biased estimator where the unbiased one is claimed, a kernel
of the wrong width) fails the same check.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

from sdelang.score.sample_quality import (energy_distance, fraction_outside, median_bandwidth, mmd2,
                                          split_halves)

Z_MAX = 4.0


def expected_kernel(d, h, s1, s2, shift=0.0):
    """E exp(-|X - Y|² / (2h²)) for X ~ N(μ₁, s₁² I), Y ~ N(μ₂, s₂² I), |μ₁ - μ₂| = shift."""
    v = h ** 2 + s1 ** 2 + s2 ** 2
    return (h ** 2 / v) ** (d / 2) * math.exp(-shift ** 2 / (2 * v))


def population_mmd2(d, h, s1, s2, shift=0.0):
    return expected_kernel(d, h, s1, s1) + expected_kernel(d, h, s2, s2) - 2 * expected_kernel(d, h, s1, s2, shift)


def null_variance(d, h, s, n, m):
    """Var of the unbiased MMD² for two samples of N(0, s² I): τ (2/(n(n-1)) + 2/(m(m-1)) + 4/(nm))."""
    ek2 = (h ** 2 / (h ** 2 + 4 * s ** 2)) ** (d / 2)                     # E k(X, X')²
    ekk = (h ** 4 / ((h ** 2 + s ** 2) * (h ** 2 + 3 * s ** 2))) ** (d / 2)  # E k(X, X') k(X, X'')
    ek = (h ** 2 / (h ** 2 + 2 * s ** 2)) ** (d / 2)                        # E k(X, X')
    tau = ek2 - 2 * ekk + ek ** 2
    return tau * (2 / (n * (n - 1)) + 2 / (m * (m - 1)) + 4 / (n * m))


def chi_mean(d, v):
    """E|Z| for Z ~ N(0, v I_d)."""
    return math.sqrt(v) * math.sqrt(2) * math.exp(scipy.special.gammaln((d + 1) / 2) - scipy.special.gammaln(d / 2))


def replicate(statistic, n, m, d, s1, s2, shift=0.0, reps=300, seed=0):
    rng = np.random.default_rng(seed)
    mu = np.zeros(d)
    mu[0] = shift
    return np.array([statistic(mu + s1 * rng.standard_normal((n, d)), s2 * rng.standard_normal((m, d)))
                     for _ in range(reps)])


def z_of(values, expected):
    return (values.mean() - expected) / (values.std(ddof=1) / math.sqrt(len(values)))


# ---------------------------------------------------------------- MMD²
@pytest.mark.parametrize("s1, s2, shift", [(1.0, 1.0, 0.8), (1.0, 1.6, 0.0), (0.7, 1.0, 0.5)])
def test_unbiased_mmd2_matches_the_gaussian_closed_form(s1, s2, shift):
    d, h, n, m = 3, 1.5, 60, 80
    values = replicate(lambda x, y: mmd2(x, y, bandwidth=h), n, m, d, s1, s2, shift)
    expected = population_mmd2(d, h, s1, s2, shift)
    assert expected > 0.01
    assert abs(z_of(values, expected)) < Z_MAX


def test_unbiased_mmd2_is_zero_in_expectation_with_the_theoretical_spread():
    d, h, s, n, m = 4, 2.0, 1.0, 50, 70
    values = replicate(lambda x, y: mmd2(x, y, bandwidth=h), n, m, d, s, s, reps=600)
    assert abs(z_of(values, 0.0)) < Z_MAX
    assert (values < 0).any()                     # unbiased: negative values do occur
    ratio = values.var(ddof=1) / null_variance(d, h, s, n, m)
    assert 0.75 < ratio < 1.33, ratio


def test_biased_mmd2_has_the_closed_form_floor():
    d, h, s, n, m = 4, 2.0, 1.0, 50, 70
    values = replicate(lambda x, y: mmd2(x, y, bandwidth=h, unbiased=False), n, m, d, s, s)
    floor = (1 / n + 1 / m) * (1 - (h ** 2 / (h ** 2 + 2 * s ** 2)) ** (d / 2))
    assert abs(z_of(values, floor)) < Z_MAX


def test_planted_bugs_fail_the_closed_form_checks():
    d, h, s, n, m = 4, 2.0, 1.0, 50, 70
    # the V-statistic claimed as unbiased: its mean is not 0
    biased = replicate(lambda x, y: mmd2(x, y, bandwidth=h, unbiased=False), n, m, d, s, s)
    assert abs(z_of(biased, 0.0)) > Z_MAX
    # a kernel of the wrong width (h vs the closed form's h / 2)
    wrong = replicate(lambda x, y: mmd2(x, y, bandwidth=h), 60, 80, 3, 1.0, 1.0, 0.8)
    assert abs(z_of(wrong, population_mmd2(3, h / 2, 1.0, 1.0, 0.8))) > Z_MAX


def test_median_bandwidth_matches_the_chi_square_median():
    d, s = 5, 1.3
    x = s * np.random.default_rng(1).standard_normal((3000, d))
    expected = s * math.sqrt(2 * scipy.stats.chi2.ppf(0.5, d))   # |X - X'|² = 2 s² χ²_d
    assert median_bandwidth(x, max_points=2000) == pytest.approx(expected, rel=0.03)
    # pooled: two arrays count as one set of points
    assert median_bandwidth(x[:1000], x[1000:2000]) == pytest.approx(median_bandwidth(x[:2000]), rel=1e-12)


def test_mmd2_defaults_to_the_median_heuristic_and_flattens_images():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 1, 2, 3)), rng.standard_normal((30, 6)) + 0.5
    h = median_bandwidth(x.reshape(40, 6), y)
    assert mmd2(x, y) == pytest.approx(mmd2(x.reshape(40, 6), y, bandwidth=h), rel=1e-12)
    with pytest.raises(ValueError, match="numbers per sample"):
        mmd2(x, y[:, :5])


# ---------------------------------------------------------------- energy distance
@pytest.mark.parametrize("s1, s2", [(1.0, 1.0), (1.0, 1.5)])
def test_energy_distance_matches_the_gaussian_closed_form(s1, s2):
    d, n, m = 3, 60, 80
    values = replicate(energy_distance, n, m, d, s1, s2)
    expected = (2 * chi_mean(d, s1 ** 2 + s2 ** 2) - (1 - 1 / n) * chi_mean(d, 2 * s1 ** 2)
                - (1 - 1 / m) * chi_mean(d, 2 * s2 ** 2))
    assert abs(z_of(values, expected)) < Z_MAX
    if s1 == s2:   # identical laws: the V-statistic's floor (1/n + 1/m) E|X - X'|, not 0
        assert expected == pytest.approx((1 / n + 1 / m) * chi_mean(d, 2 * s1 ** 2))
        assert abs(z_of(values, 0.0)) > Z_MAX


def test_energy_distance_with_a_mean_shift_in_one_dimension():
    n, m, shift = 60, 80, 0.7

    def e_abs(delta, v):   # E|Z|, Z ~ N(delta, v)
        sd = math.sqrt(v)
        return sd * math.sqrt(2 / math.pi) * math.exp(-delta ** 2 / (2 * v)) + delta * (1 - 2 * scipy.stats.norm.cdf(-delta / sd))

    values = replicate(energy_distance, n, m, 1, 1.0, 1.0, shift)
    expected = 2 * e_abs(shift, 2.0) - (2 - 1 / n - 1 / m) * e_abs(0.0, 2.0)
    assert abs(z_of(values, expected)) < Z_MAX


# ---------------------------------------------------------------- range and halves
def test_fraction_outside_counts_values_nan_and_inf():
    x = np.array([[-1.2, -1.1, 0.0, 1.1], [1.2, np.nan, np.inf, 0.3]])
    assert fraction_outside(x) == pytest.approx(4 / 8)
    assert fraction_outside(x, -2.0, 2.0) == pytest.approx(2 / 8)
    assert fraction_outside(np.zeros((3, 1, 8, 8))) == 0.0


def test_split_halves_are_disjoint_and_cover_the_data():
    data = np.arange(11 * 4).reshape(11, 1, 2, 2)
    a, b = split_halves(data, seed=3)
    assert a.shape == (5, 1, 2, 2) and b.shape == (6, 1, 2, 2)
    rows = sorted(int(r[0, 0, 0]) for r in np.concatenate([a, b]))
    assert rows == list(range(0, 44, 4))
    a2, _ = split_halves(data, seed=3)
    np.testing.assert_array_equal(a, a2)
