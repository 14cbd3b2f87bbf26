"""Score-based generative modelling on the torch backend (issue 7): losses, samplers, likelihood,
training, EMA and checkpoints.

Exact scores, no training: data = Σ_k w_k N(m_k, S_k) diffused by an affine SDE with kernel
x_t | x_0 ~ N(α_t x_0, σ_t² I) has p_t = Σ_k w_k N(α_t m_k, α_t² S_k + σ_t² I) (VERIFICATION.md), whose
score and density are closed-form. Samplers started from exact p_1 draws must reproduce exact
p_{t_min} draws (the two-sample family of ``sdelang.check.two_sample`` at α = 1e-3); a score ×2 in the
drift, or a Langevin corrector stepping against the score, must be rejected by the same test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
pytest.importorskip("torchdiffeq")

import sdelang  # noqa: E402
from sdelang.check.two_sample import energy_distance_test, two_sample_tests  # noqa: E402
from sdelang.toy_data import TOY_DATA, sample_toy  # noqa: E402
from sdelang_torch import score_sampling  # noqa: E402
from sdelang_torch.score_model import ScoreModel  # noqa: E402
from sdelang_torch.score_sampling import sample_em, sample_ode, sample_pc  # noqa: E402
from sdelang_torch.score_training import EMA, ScoreTrainer, dsm_loss, ssm_loss  # noqa: E402

T_MIN = 1e-3
ALPHA = 1e-3
F64 = torch.float64


# ------------------------------------------------------------------------------ exact marginals
def vp_coefficients(t, beta_min=0.1, beta_max=20.0):
    """VP: α_t = exp(-½ ∫_0^t β), σ_t² = 1 - α_t² (by hand, not from the generated kernel)."""
    t = torch.as_tensor(t, dtype=F64)
    alpha = torch.exp(-0.5 * (beta_min * t + 0.5 * (beta_max - beta_min) * t ** 2))
    return alpha, 1 - alpha ** 2


def ve_coefficients(t, sigma_min=0.01, sigma_max=10.0):
    """VE: α_t = 1, σ_t² = σ_min² ((σ_max/σ_min)^{2t} - 1)."""
    t = torch.as_tensor(t, dtype=F64)
    return torch.ones_like(t), sigma_min ** 2 * ((sigma_max / sigma_min) ** (2 * t) - 1)


class GaussianMixtureMarginal:
    """p_t = Σ_k w_k N(α_t m_k, α_t² S_k + σ_t² I) in 2-D, with its score, log-density and draws."""

    def __init__(self, weights, means, covs, coefficients):
        self.w = torch.tensor(weights, dtype=F64)
        self.m = torch.tensor(means, dtype=F64)
        self.S = torch.tensor(covs, dtype=F64)
        self.coefficients = coefficients

    def _components(self, x, t):
        """Per component: (batch, K) log w_k N_k(x) and (batch, K, 2) -P_k⁻¹(x - α m_k)."""
        t = torch.as_tensor(t, dtype=F64).reshape(-1)
        if bool((t == t[0]).all()):
            t = t[:1]  # one time for the whole batch: one set of 2 × 2 matrices (fast)
        alpha, var = self.coefficients(t)
        a, v = alpha.reshape(-1, 1, 1, 1), var.reshape(-1, 1, 1, 1)
        P = a ** 2 * self.S + v * torch.eye(2, dtype=F64)              # (batch, K, 2, 2)
        r = x.to(F64)[:, None, :] - alpha.reshape(-1, 1, 1) * self.m    # (batch, K, 2)
        sol = torch.linalg.solve(P, r.unsqueeze(-1)).squeeze(-1)
        logn = -0.5 * (r * sol).sum(-1) - 0.5 * torch.logdet(P) - math.log(2 * math.pi)
        return torch.log(self.w) + logn, -sol

    def log_prob(self, x, t):
        return torch.logsumexp(self._components(x, t)[0], dim=-1)

    def score(self, x, t):
        logs, grads = self._components(x, t)
        resp = torch.softmax(logs, dim=-1)
        return (resp.unsqueeze(-1) * grads).sum(1).to(x.dtype)

    def sample(self, t, n, seed):
        g = torch.Generator().manual_seed(seed)
        alpha, var = self.coefficients(torch.tensor(float(t), dtype=F64))
        k = torch.multinomial(self.w, n, replacement=True, generator=g)
        P = alpha ** 2 * self.S + var * torch.eye(2, dtype=F64)
        z = torch.randn(n, 2, 1, generator=g, dtype=F64)
        return alpha * self.m[k] + (torch.linalg.cholesky(P)[k] @ z).squeeze(-1)


MIXTURE = dict(weights=[0.3, 0.7], means=[[-1.0, 0.5], [1.0, -0.5]],
               covs=[[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]]])
GAUSSIAN = dict(weights=[1.0], means=[[1.0, -0.5]], covs=[[[1.0, 0.6], [0.6, 0.5]]])


def case(sde: str, data: dict):
    """(compiled module with the exact score attached, the exact marginals)."""
    if sde == "vp":
        exact = GaussianMixtureMarginal(**data, coefficients=vp_coefficients)
        module = sdelang.load("examples/vp.sde").compile("torch", score=exact.score)
    else:
        exact = GaussianMixtureMarginal(**data, coefficients=ve_coefficients)
        module = sdelang.load("examples/ve.sde", sigma_max=10.0).compile("torch", score=exact.score)
    return module, exact


def accepts(x, y, seed=0) -> bool:
    """True when no test of the two-sample family (α = 1e-3, Bonferroni) rejects x ~ y."""
    outcomes = two_sample_tests(x.numpy(), y.numpy(), np.random.default_rng(seed), alpha=ALPHA)
    return not any(o.rejects for o in outcomes)


# ------------------------------------------------------------------------------ samplers
N_SAMPLES = 4000
SAMPLERS = {
    "em": lambda module, **kw: sample_em(module, N_SAMPLES, steps=500, dtype=F64, **kw),
    "pc": lambda module, **kw: sample_pc(module, N_SAMPLES, steps=250, dtype=F64, **kw),
    "ode": lambda module, **kw: sample_ode(module, N_SAMPLES, rtol=1e-6, atol=1e-6, dtype=F64, **kw),
}


@pytest.mark.parametrize("sde", ["vp", "ve"])
@pytest.mark.parametrize("method", ["em", "pc", "ode"])
def test_samplers_with_the_exact_score_reproduce_p_tmin_and_a_doubled_score_fails(sde, method):
    module, exact = case(sde, MIXTURE)
    x1 = exact.sample(1.0, N_SAMPLES, seed=1)
    reference = exact.sample(T_MIN, N_SAMPLES, seed=2)
    result = SAMPLERS[method](module, x_init=x1, seed=3)
    assert result.samples.shape == (N_SAMPLES, 2) and accepts(result.samples, reference)
    assert result.nfe == {"em": 500, "pc": 500}.get(method, result.nfe) and result.nfe > 0
    doubled = SAMPLERS[method](module, x_init=x1, seed=3, score=lambda x, t: 2 * exact.score(x, t))
    assert not accepts(doubled.samples, reference)


def test_pc_corrector_stepping_against_the_score_fails(monkeypatch):
    module, exact = case("vp", MIXTURE)
    x1 = exact.sample(1.0, N_SAMPLES, seed=1)
    reference = exact.sample(T_MIN, N_SAMPLES, seed=2)
    kwargs = dict(x_init=x1, seed=3, corrector_steps=2)
    assert accepts(sample_pc(module, N_SAMPLES, steps=100, dtype=F64, **kwargs).samples, reference)
    monkeypatch.setattr(score_sampling, "langevin_step",
                        lambda y, grad, z, eps: y - eps * grad + torch.sqrt(2 * eps) * z)
    assert not accepts(sample_pc(module, N_SAMPLES, steps=100, dtype=F64, **kwargs).samples, reference)


def test_pc_nfe_counts_predictor_and_corrector_evaluations_and_auto_alpha_is_vp_discrete_alpha():
    module, exact = case("vp", GAUSSIAN)
    result = sample_pc(module, 10, steps=40, corrector_steps=3, x_init=exact.sample(1.0, 10, 0), dtype=F64)
    assert result.nfe == 40 * 4
    # α = exp(2 Δt tr(∂f/∂x)/n) = exp(-β(t) Δt) for f = -½ β(t) x.
    slope = score_sampling.mean_drift_slope(module, 0.3, torch.randn(5, 2, dtype=F64))
    assert slope == pytest.approx(-0.5 * (0.1 + 0.3 * 19.9), rel=1e-12)


def test_prior_start_is_used_when_no_initial_state_is_given():
    module, exact = case("vp", GAUSSIAN)
    result = sample_em(module, 4000, steps=300, dtype=F64, seed=5)
    # p_1 ≠ N(0, I) only through α_1² ≈ 4e-5 of the data: the samples still match p_tmin.
    assert accepts(result.samples, exact.sample(T_MIN, 4000, seed=6))


# ------------------------------------------------------------------------------ likelihood
@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_flow_log_prob_and_bits_per_dim_match_the_closed_form(sde):
    module, exact = case(sde, MIXTURE)

    model = ScoreModel(module, net=_Scaled(exact, 1.0), dtype=F64, t_min=T_MIN)
    x = exact.sample(T_MIN, 32, seed=4)
    prior = lambda z: exact.log_prob(z, 1.0)  # noqa: E731
    got = model.log_prob(x, rtol=1e-8, atol=1e-8, prior=prior)
    torch.testing.assert_close(got, exact.log_prob(x, T_MIN), rtol=0, atol=2e-4)
    bpd = model.bits_per_dim(x, rtol=1e-8, atol=1e-8, prior=prior)
    torch.testing.assert_close(bpd, -got / (2 * math.log(2)))
    # Planted bug: the score doubled in the flow.
    bad = ScoreModel(module, net=_Scaled(exact, 2.0), dtype=F64).log_prob(x, rtol=1e-8, atol=1e-8, prior=prior)
    assert (bad - exact.log_prob(x, T_MIN)).abs().max() > 1e-2


class _Scaled(torch.nn.Module):
    def __init__(self, exact, factor):
        super().__init__()
        self.exact, self.factor = exact, factor

    def forward(self, x, t):
        return self.factor * self.exact.score(x, t)


# ------------------------------------------------------------------------------ DSM
def gaussian_dsm_constant(module, mu, S, t):
    """E[||Lᵀ s + ε||² | t] at the exact score of Gaussian data N(mu, S): n - tr(P_t⁻¹ Σ_t), with
    P_t = A_t S A_tᵀ + Σ_t the marginal covariance (kernel mean A_t x_0, covariance Σ_t)."""
    n = len(mu)
    eye = torch.eye(n, dtype=F64)
    cols = [module.perturbation_kernel(eye[i].expand(len(t), n), t)[0] for i in range(n)]
    A = torch.stack(cols, dim=-1)                                    # (batch, n, n)
    _, spread = module.perturbation_kernel(torch.zeros(len(t), n, dtype=F64), t)
    cov = spread if spread.dim() == 3 else torch.diag_embed(spread ** 2)
    P = A @ S @ A.transpose(-1, -2) + cov
    return n - torch.linalg.solve(P, cov).diagonal(dim1=-2, dim2=-1).sum(-1), A, P


def gaussian_score(module, mu, S):
    def score(x, t):
        t = torch.as_tensor(t, dtype=F64).expand(x.shape[0])
        _, A, P = gaussian_dsm_constant(module, mu, S, t)
        return -torch.linalg.solve(P, (x - (A @ mu)).unsqueeze(-1)).squeeze(-1)
    return score


CLD_DATA = (torch.tensor([0.5, 0.0], dtype=F64), torch.tensor([[0.09, 0.0], [0.0, 0.01]], dtype=F64))
VP_DATA = (torch.tensor([1.0, -0.5], dtype=F64), torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=F64))


@pytest.mark.parametrize("spec", ["vp", "cld"])
def test_dsm_expectation_at_the_exact_score_equals_the_closed_form_constant(spec):
    module = sdelang.load(f"examples/{spec}.sde").compile("torch")
    mu, S = CLD_DATA if spec == "cld" else VP_DATA
    score = gaussian_score(module, mu, S)
    chol = torch.linalg.cholesky(S)
    diffs, diffs_bad = [], []
    for chunk in range(20):
        x0 = mu + torch.randn(4000, 2, generator=torch.Generator().manual_seed(100 + chunk), dtype=F64) @ chol.T
        t = (module.t0 + T_MIN) + (module.t1 - module.t0 - T_MIN) * torch.rand(
            4000, generator=torch.Generator().manual_seed(chunk), dtype=F64)  # the loss's own t draws
        const = gaussian_dsm_constant(module, mu, S, t)[0].mean()
        loss = dsm_loss(module, x0, t_min=T_MIN, generator=torch.Generator().manual_seed(chunk), score=score)
        bad = dsm_loss(module, x0, t_min=T_MIN, generator=torch.Generator().manual_seed(chunk),
                       score=lambda x, t: 1.1 * score(x, t))
        diffs.append(float(loss - const))
        diffs_bad.append(float(bad - const))
    assert stats.ttest_1samp(diffs, 0.0).pvalue > ALPHA
    assert stats.ttest_1samp(diffs_bad, 0.0).pvalue < ALPHA and np.mean(diffs_bad) > 0


@pytest.mark.parametrize("spec", ["vp", "cld"])
@pytest.mark.parametrize("weighting", ["sigma2", "likelihood", "none"])
def test_dsm_is_smallest_at_the_exact_score(spec, weighting):
    module = sdelang.load(f"examples/{spec}.sde").compile("torch")
    mu, S = CLD_DATA if spec == "cld" else VP_DATA
    score = gaussian_score(module, mu, S)
    x0 = mu + torch.randn(20000, 2, generator=torch.Generator().manual_seed(0), dtype=F64) @ torch.linalg.cholesky(S).T
    t_min = 1e-2 if weighting == "none" else T_MIN  # λ = I: variance ∝ 1/σ_t², keep t away from 0

    def loss(factor):
        return dsm_loss(module, x0, t_min=t_min, weighting=weighting, generator=torch.Generator().manual_seed(1),
                        score=lambda x, t: factor * score(x, t))

    best = loss(1.0)
    assert best < loss(0.9) and best < loss(1.1)


def test_dsm_on_a_diagonal_kernel_is_the_written_formula():
    """VP, λ = σ_t²: ||σ_t s(x_t, t) + ε||²; λ = g² = β(t): β(t) ||s + ε/σ_t||², with t and ε drawn
    by hand from the same generator and the kernel by hand (vp_coefficients), not generated code."""
    module, exact = case("vp", GAUSSIAN)
    x0 = exact.sample(0.0, 500, seed=0)
    g = torch.Generator().manual_seed(7)
    t = (module.t0 + T_MIN) + (module.t1 - module.t0 - T_MIN) * torch.rand(500, generator=g, dtype=F64)
    eps = torch.randn(x0.shape, generator=g, dtype=F64)
    alpha, variance = vp_coefficients(t)
    alpha, sigma = alpha.unsqueeze(-1), variance.sqrt().unsqueeze(-1)
    s = exact.score(alpha * x0 + sigma * eps, t)
    beta = (0.1 + t * (20.0 - 0.1)).unsqueeze(-1)
    by_hand = {"sigma2": ((sigma * s + eps) ** 2).sum(-1).mean(),
               "likelihood": (beta * (s + eps / sigma) ** 2).sum(-1).mean()}
    for weighting, expected in by_hand.items():
        ours = dsm_loss(module, x0, t_min=T_MIN, weighting=weighting, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(ours, expected, rtol=1e-9, atol=0)
        torch.testing.assert_close(module.dsm_loss(x0, t_min=T_MIN, weighting=weighting, seed=7), ours)


# ------------------------------------------------------------------------------ SSM
def test_sliced_score_matching_is_minimised_by_the_true_score_like_dsm():
    """Both losses along s_c = c ∇log p_t: their derivative at c = 1 vanishes (t-test over chunks)
    and their values at c = 0.9, 1.1 exceed those at c = 1 (common random numbers)."""
    module = sdelang.load("examples/vp.sde").compile("torch")
    mu, S = VP_DATA
    score = gaussian_score(module, mu, S)
    chol = torch.linalg.cholesky(S)
    grads = {"ssm": [], "dsm": []}
    for chunk in range(12):
        x0 = mu + torch.randn(2000, 2, generator=torch.Generator().manual_seed(chunk), dtype=F64) @ chol.T
        c = torch.tensor(1.0, dtype=F64, requires_grad=True)
        for name, loss in (("ssm", ssm_loss), ("dsm", dsm_loss)):
            options = {"weighting": "sigma2", "generator": torch.Generator().manual_seed(50 + chunk)}
            value = loss(module, x0, score=lambda x, t: c * score(x, t), **options)
            (g,) = torch.autograd.grad(value, c)
            grads[name].append(float(g))
    for name in grads:
        assert stats.ttest_1samp(grads[name], 0.0).pvalue > ALPHA, name
    x0 = mu + torch.randn(20000, 2, generator=torch.Generator().manual_seed(99), dtype=F64) @ chol.T

    def ssm(factor):
        return ssm_loss(module, x0, weighting="sigma2", generator=torch.Generator().manual_seed(3),
                        score=lambda x, t: factor * score(x, t))

    assert ssm(1.0) < ssm(0.9) and ssm(1.0) < ssm(1.1)


def test_sliced_score_matching_without_a_kernel_simulates_the_forward_sde():
    """Stationary OU started at N(0, v∞): p_t = N(0, v∞) for all t, score -x/v∞ (EM's own stationary
    variance differs by θh/2 = 0.5 %, far below what the comparison resolves)."""
    module = sdelang.load("examples/ou.sde").compile("torch")
    v_inf = 0.5 ** 2 / 2
    x0 = math.sqrt(v_inf) * torch.randn(20000, 1, generator=torch.Generator().manual_seed(0), dtype=F64)

    def ssm(factor):
        with torch.no_grad():
            return ssm_loss(module, x0, use_kernel=False, generator=torch.Generator().manual_seed(4),
                            score=lambda x, t: -factor * x / v_inf)

    assert ssm(1.0) < ssm(0.8) and ssm(1.0) < ssm(1.25)
    # The loss's expectation at the true score is -½ E[s²] = -1/(2 v∞) (E[s'] + ½E[s²] = -1/v + 1/(2v)).
    assert float(ssm(1.0)) == pytest.approx(-1 / (2 * v_inf), rel=0.05)


# ------------------------------------------------------------------------------ training
def test_ema_is_the_exponential_average_of_the_weights():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, decay=0.9)
    expected = {k: v.clone() for k, v in net.state_dict().items()}
    for k in range(1, 30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * k)
        ema.update(net)
        d = min(0.9, (1 + k) / (10 + k))
        expected = {name: d * expected[name] + (1 - d) * value for name, value in net.state_dict().items()}
    for name, value in ema.averaged(net).state_dict().items():
        torch.testing.assert_close(value, expected[name])


def toy_model(seed=0):
    return ScoreModel("examples/vp.sde", hidden=64, depth=2, seed=seed)


def test_checkpoint_save_load_resume_reproduces_the_uninterrupted_run(tmp_path):
    data = sample_toy("two_moons", 2000, seed=0)
    straight = toy_model().fit(data, steps=40, batch_size=64, progress=False)
    path = tmp_path / "ck.pt"
    toy_model().fit(data, steps=20, batch_size=64, progress=False, checkpoint=path)
    resumed = toy_model(seed=123)                    # different initial weights: all state comes from the file
    resumed.fit(data, steps=40, batch_size=64, progress=False, checkpoint=path)
    assert resumed.trainer.step == 40 and resumed.losses == straight.losses
    for (name, a), b in zip(straight.ema_net.state_dict().items(), resumed.ema_net.state_dict().values()):
        assert torch.equal(a, b), name
    saved = torch.load(path, weights_only=False)
    assert saved["step"] == 40 and set(saved) >= {"net", "ema", "optimizer", "step"}
    loaded = toy_model(seed=7).load(path)
    assert torch.equal(next(iter(loaded.ema_net.parameters())), next(iter(resumed.ema_net.parameters())))


def test_short_training_reduces_the_loss_and_beats_an_untrained_network():
    data = sample_toy("eight_gaussians", 5000, seed=0)
    model = toy_model()
    untrained = model.sample(1000, "em", steps=100, seed=1).samples.numpy()
    held_out = torch.as_tensor(sample_toy("eight_gaussians", 4000, seed=9), dtype=torch.float32)

    def held_out_loss():
        with torch.no_grad():
            return float(dsm_loss(model.module, held_out, generator=torch.Generator().manual_seed(0)))

    before = held_out_loss()
    model.fit(data, steps=400, batch_size=128, lr=3e-3, progress=False)
    assert held_out_loss() < 0.8 * before
    trained = model.sample(1000, "em", steps=100, seed=1).samples.numpy()
    fresh = sample_toy("eight_gaussians", 1000, seed=3)
    rng = np.random.default_rng(0)
    e_trained, _ = energy_distance_test(trained, fresh, 0, rng)
    assert e_trained < 0.25 * energy_distance_test(untrained, fresh, 0, rng)[0]


def test_trainer_runs_sliced_score_matching():
    module = sdelang.load("examples/vp.sde").compile("torch")
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.SiLU(), torch.nn.Linear(16, 2))
    trainer = ScoreTrainer(module, lambda_net(net), loss="ssm", weighting="sigma2", batch_size=32)
    losses = trainer.fit(sample_toy("checkerboard", 500, seed=0), steps=5, progress=False)
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses)


def lambda_net(net):
    class TimeConcat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, t):
            t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0]).reshape(-1, 1)
            return self.net(torch.cat([x, t], dim=-1))
    return TimeConcat()


# ------------------------------------------------------------------------------ toy data
@pytest.mark.parametrize("name", sorted(TOY_DATA))
def test_toy_data_is_seeded_two_dimensional_and_about_unit_scale(name):
    a, b = sample_toy(name, 5000, seed=1), sample_toy(name, 5000, seed=1)
    assert a.shape == (5000, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, sample_toy(name, 5000, seed=2))
    assert np.all(np.abs(a.mean(0)) < 0.1) and np.all((a.std(0) > 0.5) & (a.std(0) < 1.5))


def test_eight_gaussians_has_eight_equally_weighted_modes():
    x = sample_toy("eight_gaussians", 8000, seed=0)
    k = np.round(np.arctan2(x[:, 1], x[:, 0]) / (2 * np.pi / 8)).astype(int) % 8
    counts = np.bincount(k, minlength=8)
    assert stats.chisquare(counts).pvalue > ALPHA
    assert np.allclose(np.linalg.norm(x, axis=1).mean(), 1.5, atol=0.02)


def test_eight_gaussians_log_density_is_normalised():
    from sdelang.toy_data import eight_gaussians_log_density

    g = np.linspace(-3, 3, 601)
    X, Y = np.meshgrid(g, g)
    p = np.exp(eight_gaussians_log_density(np.stack([X.ravel(), Y.ravel()], 1)))
    assert p.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-6)
