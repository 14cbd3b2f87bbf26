"""Statistical tests of ``simulate`` against the exact law of the Euler–Maruyama chain itself
(VERIFICATION.md: no step bias to tune around), α = 1e-3 per test (Bonferroni inside a test),
each paired with a planted bug that the same test must reject."""
from __future__ import annotations

import math

import pytest
from scipy import stats

torch = pytest.importorskip("torch")
torchsde = pytest.importorskip("torchsde")

from sdelang_torch import backend  # noqa: E402

from test_torch_models import gbm, heston, ou, ou_elementwise  # noqa: E402

ALPHA = 1e-3


def gaussian_moments_pvalue(x: torch.Tensor, mean: float, var: float) -> float:
    """Smallest Bonferroni-corrected p-value of a z-test on the mean and a χ² test on the scaled
    sum of squares Σ (x - mean)² / var ~ χ²_N (two-sided), over every column of x."""
    x = x.double()
    n = x.shape[0]
    pvalues = []
    for col in x.T:
        z = (col.mean().item() - mean) / math.sqrt(var / n)
        pvalues.append(2 * stats.norm.sf(abs(z)))
        q = ((col - mean) ** 2).sum().item() / var
        tail = stats.chi2.sf(q, n)
        pvalues.append(2 * min(tail, 1 - tail))
    return min(1.0, min(pvalues) * len(pvalues))


def ou_em_law(theta, mu, sigma, h, n, m0, v0):
    """Mean and variance of the EM chain x_{k+1} = x_k + θ(μ - x_k) h + σ ΔW after n steps from
    N(m0, v0): m_n = μ + (m0 - μ)(1 - θh)^n, v_n = v∞ + (v0 - v∞)(1 - θh)^{2n},
    v∞ = (σ²/2θ)/(1 - θh/2)."""
    r = 1 - theta * h
    v_inf = (sigma ** 2 / (2 * theta)) / (1 - theta * h / 2)
    return mu + (m0 - mu) * r ** n, v_inf + (v0 - v_inf) * r ** (2 * n)


def _ou_samples(model, theta, mu, sigma, d, seed):
    mod = backend.compile(model, theta=theta, sigma=sigma, **({"mu": mu} if "mu" in model.param_values else {}))
    g = torch.Generator().manual_seed(10_000 + seed)  # not the simulation's own noise stream
    x0 = torch.randn(20000, d, generator=g, dtype=torch.float64)  # N(0, 1)
    out = mod.simulate(x0, torch.tensor([0.0, 0.5, 1.0]), dt=0.05, seed=seed)
    return out


def test_ou_matches_the_em_chain_law():
    out = _ou_samples(ou(), 1.0, 1.0, 0.5, 1, seed=0)
    for k, steps in ((1, 10), (2, 20)):
        m, v = ou_em_law(1.0, 1.0, 0.5, 0.05, steps, 0.0, 1.0)
        assert gaussian_moments_pvalue(out[k], m, v) > ALPHA


def test_elementwise_ou_matches_the_em_chain_law_and_a_halved_drift_fails():
    out = _ou_samples(ou_elementwise(d=2), 1.0, 0.0, 0.5, 2, seed=1)
    m, v = ou_em_law(1.0, 0.0, 0.5, 0.05, 20, 0.0, 1.0)
    assert gaussian_moments_pvalue(out[-1], m, v) > ALPHA
    # Planted bug: the drift halved (θ/2) must be rejected by the same test.
    bad = _ou_samples(ou_elementwise(d=2), 0.5, 0.0, 0.5, 2, seed=1)
    assert gaussian_moments_pvalue(bad[-1], m, v) < ALPHA
    # Planted bug: g / sqrt(2).
    bad = _ou_samples(ou_elementwise(d=2), 1.0, 0.0, 0.5 / math.sqrt(2), 2, seed=1)
    assert gaussian_moments_pvalue(bad[-1], m, v) < ALPHA


def gbm_em_moments(mu, sigma, h, n, s0=1.0):
    """EM chain S_{k+1} = S_k (1 + μh + σΔW): E S_n = S0 (1 + μh)^n, E S_n² = S0² ((1 + μh)² + σ²h)^n."""
    return s0 * (1 + mu * h) ** n, s0 ** 2 * ((1 + mu * h) ** 2 + sigma ** 2 * h) ** n


def _gbm_mean_pvalue(samples, mu_ito, sigma, h, n):
    m1, m2 = gbm_em_moments(mu_ito, sigma, h, n)
    x = samples.double().flatten()
    z = (x.mean().item() - m1) / math.sqrt((m2 - m1 ** 2) / x.numel())
    return 2 * stats.norm.sf(abs(z))


def test_gbm_mean_is_the_em_mean():
    mod = backend.compile(gbm(mu=1.0, sigma=0.5))
    x0 = torch.ones(20000, 1, dtype=torch.float64)
    out = mod.simulate(x0, torch.tensor([0.0, 1.0]), dt=0.01, seed=2)
    assert _gbm_mean_pvalue(out[-1], 1.0, 0.5, 0.01, 100) > ALPHA


def test_stratonovich_gbm_is_simulated_with_its_ito_drift():
    pytest.importorskip("sdelang.derive.calculus")
    x0 = torch.ones(20000, 1, dtype=torch.float64)
    strat = backend.compile(gbm(mu=1.0, sigma=0.5, calculus="stratonovich"))
    out = strat.simulate(x0, torch.tensor([0.0, 1.0]), dt=0.01, seed=3)
    # Itô drift of the Stratonovich GBM: μ + σ²/2.
    assert _gbm_mean_pvalue(out[-1], 1.0 + 0.125, 0.5, 0.01, 100) > ALPHA
    # Planted bug: treating the Stratonovich drift as Itô (E S_1 ≈ e instead of e^1.125).
    ito = backend.compile(gbm(mu=1.0, sigma=0.5)).simulate(x0, torch.tensor([0.0, 1.0]), dt=0.01, seed=3)
    assert _gbm_mean_pvalue(ito[-1], 1.0 + 0.125, 0.5, 0.01, 100) < ALPHA


def test_heston_through_sdeint_with_two_methods():
    # ξ = 0.1: far inside the Feller condition (2κθ = 0.16 ≫ ξ²), so the EM variance stays positive.
    mod = backend.compile(heston(), xi=0.1)
    batch, dt = 2000, 0.01
    y0 = torch.tensor([[1.0, 0.04]], dtype=torch.float64).repeat(batch, 1)
    ts = torch.linspace(0, 1, 6, dtype=torch.float64)
    outs = {}
    for method, module in (("euler", mod), ("midpoint", None)):
        if module is None:
            pytest.importorskip("sdelang.derive.calculus")
            module = backend.compile(heston().to_stratonovich(), xi=0.1)
            assert module.sde_type == "stratonovich"
        bm = torchsde.BrownianInterval(0.0, 1.0, size=(batch, 2), dtype=torch.float64, dt=dt, entropy=4)
        outs[method] = torchsde.sdeint(module, y0, ts, method=method, dt=dt, bm=bm)
        assert outs[method].shape == (6, batch, 2)
    assert torch.isfinite(outs["euler"]).all() and torch.isfinite(outs["midpoint"]).all()
    # E S_1 = S0 e^{μ}; its EM chain has exactly S0 (1 + μh)^n: a z-test at α = 1e-3.
    s = outs["euler"][-1][:, 0]
    z = (s.mean().item() - (1 + 0.05 * dt) ** 100) / (s.std().item() / math.sqrt(s.numel()))
    assert abs(z) < stats.norm.isf(ALPHA / 2)
    # The two schemes discretise the same SDE on the same Brownian path: pathwise close.
    diff = (outs["euler"][-1] - outs["midpoint"][-1]).abs().mean(0)
    assert diff[0] < 0.02 and diff[1] < 0.01
