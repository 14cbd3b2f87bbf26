"""Score-based generative modelling in JAX (losses, trainer, samplers, facade), checked against exact
scores. Gaussian data N(μ, diag s²) diffused by
    VP:  p_t = N(α_t μ, α_t² s² + 1 - α_t²),  α_t = exp(-½ ∫₀ᵗ β),
    VE:  p_t = N(μ, s² + σ_min² (r^{2t} - 1)),  r = σ_max / σ_min,
so ∇log p_t is known in closed form (and for a two-component mixture too). Samplers started from
exact p_1 draws must reproduce the moments of p_{t_min} (z-tests on means and second moments,
Bonferroni at α = 1e-3; discretisation bias of 500 EM steps ≪ the Monte-Carlo standard error at
N = 4000); planted bugs (score ×2, a reversed corrector) must be rejected by the same tests."""
import functools
import pathlib

import numpy as np
import pytest
from scipy import stats

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
pytest.importorskip("diffrax")

import sdelang  # noqa: E402
from sdelang.check.two_sample import energy_distance_test  # noqa: E402
from sdelang.toy_data import sample_toy  # noqa: E402

pytestmark = pytest.mark.jax
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
ALPHA = 1e-3
T_MIN = 1e-3
B_MIN, B_MAX = 0.1, 20.0
S_MIN, S_MAX = 0.01, 50.0
MU = np.array([1.0, -0.5])
S2 = np.array([0.25, 0.04])


@pytest.fixture(autouse=True, scope="module")
def float64(jax_float64):
    """Every test here runs in float64."""


from sdelang_jax.score_model import ScoreModel  # noqa: E402
from sdelang_jax.score_sampling import langevin_correct, sample, sample_pc  # noqa: E402
from sdelang_jax.score_training import EMA, ScoreTrainer, dsm_loss, ssm_loss, trainable, with_score  # noqa: E402


# ------------------------------------------------------------------------------ exact marginals
def _col(t):
    t = jnp.asarray(t)
    return t if t.ndim == 0 else t[..., None]


class GaussianMarginals:
    """p_t = N(a_t μ, a_t² s² + σ_t²) per component for the VP or VE SDE."""

    def __init__(self, sde, mu=MU, s2=S2):
        self.sde, self.mu, self.s2 = sde, jnp.asarray(mu), jnp.asarray(s2)

    def coefficients(self, t):
        """(a_t, σ_t²) of the perturbation kernel."""
        if self.sde == "vp":
            a = jnp.exp(-0.5 * (B_MIN * t + 0.5 * (B_MAX - B_MIN) * t**2))
            return a, 1 - a**2
        return jnp.ones_like(t), S_MIN**2 * ((S_MAX / S_MIN) ** (2 * t) - 1)

    def moments(self, t):
        a, sig2 = self.coefficients(jnp.asarray(t, jnp.float64))
        return a * self.mu, a**2 * self.s2 + sig2

    def score(self, y, t):
        mean, var = self.moments(_col(t))
        return -(y - mean) / var

    def log_prob(self, x, t):
        mean, var = self.moments(t)
        return jnp.sum(-0.5 * (x - mean) ** 2 / var - 0.5 * jnp.log(2 * jnp.pi * var), axis=-1)

    def draw(self, t, n, seed):
        mean, var = self.moments(t)
        return mean + jnp.sqrt(var) * jax.random.normal(jax.random.PRNGKey(seed), (n, 2))


@functools.lru_cache(maxsize=None)
def compiled(sde):
    """One compiled class per spec for the whole file (a new class would defeat the jit caches)."""
    return sdelang.load(EXAMPLES / f"{sde}.sde", d=2).compile("jax")


@functools.lru_cache(maxsize=None)
def marginals(sde):
    """One GaussianMarginals per SDE: its bound ``score`` hashes equal across tests (jit cache hits)."""
    return GaussianMarginals(sde)


def module(sde, score=None):
    return with_score(compiled(sde), score)


def moment_pvalues(x, mean, var):
    """Per component: z-test on the mean, χ² test on the variance about the known mean."""
    x, mean, var = np.asarray(x), np.asarray(mean), np.asarray(var)
    N = x.shape[0]
    out = []
    for k in range(x.shape[1]):
        z = (x[:, k].mean() - mean[k]) / np.sqrt(var[k] / N)
        chi2 = np.sum((x[:, k] - mean[k]) ** 2) / var[k]
        out += [2 * stats.norm.sf(abs(z)), 2 * min(stats.chi2.cdf(chi2, N), stats.chi2.sf(chi2, N))]
    return out


def run_sampler(method, sde, score, n=4000, **kw):
    p = marginals(sde)
    x1 = p.draw(1.0, n, seed=11)
    options = dict(steps=500) if method != "ode" else dict(rtol=1e-6, atol=1e-6)
    options.update(kw)
    return sample(module(sde), n, method, score=score, x_init=x1, t_min=T_MIN, seed=5, dtype=jnp.float64, **options)


# ------------------------------------------------------------------------------ samplers
@pytest.mark.parametrize("sde", ["vp", "ve"])
@pytest.mark.parametrize("method", ["em", "pc", "ode"])
def test_sampler_with_exact_score_recovers_the_data_law(method, sde):
    p = marginals(sde)
    result = run_sampler(method, sde, p.score)
    assert result.method == method and result.samples.shape == (4000, 2)
    pv = moment_pvalues(result.samples, *p.moments(T_MIN))
    assert min(pv) > ALPHA / len(pv), pv
    expected_nfe = {"em": 500, "pc": 1000}.get(method)
    if expected_nfe is not None:
        assert result.nfe == expected_nfe
    else:  # Tsit5 with FSAL: 1 initial evaluation + 6 per (accepted or rejected) step
        assert result.nfe > 7 and (result.nfe - 1) % 6 == 0


@pytest.mark.parametrize("method", ["em", "pc", "ode"])
def test_sampler_with_doubled_score_is_rejected(method):
    p = marginals("vp")
    result = run_sampler(method, "vp", lambda y, t: 2 * p.score(y, t))
    pv = moment_pvalues(result.samples, *p.moments(T_MIN))
    assert min(pv) < ALPHA / len(pv)


def test_ode_nfe_grows_with_tighter_tolerances():
    p = marginals("vp")
    loose = run_sampler("ode", "vp", p.score, n=256, rtol=1e-3, atol=1e-3).nfe
    tight = run_sampler("ode", "vp", p.score, n=256, rtol=1e-7, atol=1e-7).nfe
    assert tight > loose


def _corrector_chain(score, y, t, steps, snr):
    """``steps`` Langevin corrector steps at a fixed time t, α = 1."""
    forward = module("vp")

    def body(y, k):
        return langevin_correct(forward, score, y, t, jax.random.PRNGKey(k), snr=snr, steps=1, alpha=1.0, h=0.0), None

    return jax.lax.scan(body, y, jnp.arange(steps))[0]


def test_langevin_corrector_relaxes_to_p_t_and_a_reversed_one_does_not():
    """At fixed t the corrector is ULA on p_t = N(m, v) with ε ≈ 2 snr² v: starting from the wrong
    variance (×9), after k steps the error decays like (1 - ε/v)^k = e^{-k·2snr²} ≈ e^{-10}, and the
    ULA stationary variance v / (1 - ε/(2v)) is off by snr² = 0.25 % ≪ the χ² test's resolution."""
    p = marginals("vp")
    t, snr = 0.3, 0.05
    mean, var = p.moments(t)
    y0 = mean + 3 * (p.draw(t, 4000, seed=2) - mean)
    y = _corrector_chain(p.score, y0, t, 2000, snr)
    pv = moment_pvalues(y, mean, var)
    assert min(pv) > ALPHA / len(pv), pv
    wrong = _corrector_chain(lambda x, s: -p.score(x, s), y0, t, 200, snr)
    pv = moment_pvalues(wrong, mean, var)
    assert min(pv) < ALPHA / len(pv)
    with pytest.raises(ValueError):
        sample_pc(module("vp"), 8, steps=2, snr=-0.16, score=p.score)


class TwoGaussians:
    """Data ½ N((-2, 0), 0.09 I) + ½ N((2, 0), 0.09 I) under VP: a mixture of the Gaussian marginals."""

    def __init__(self):
        self.parts = [GaussianMarginals("vp", mu=[-2.0, 0.0], s2=[0.09, 0.09]),
                      GaussianMarginals("vp", mu=[2.0, 0.0], s2=[0.09, 0.09])]

    def score(self, y, t):
        logs = jnp.stack([q.log_prob(y, t) for q in self.parts], axis=-1)
        w = jax.nn.softmax(logs, axis=-1)
        return sum(w[..., k:k + 1] * q.score(y, t) for k, q in enumerate(self.parts))


@pytest.mark.parametrize("method", ["em", "ode"])
def test_mixture_with_exact_score_keeps_mode_weights_and_spreads(method):
    """Binomial test on the mass of the right mode (½) and χ² tests on each mode's spread."""
    mix = TwoGaussians()
    n = 4000
    m1 = mix.parts[0].draw(1.0, n, seed=3)
    m2 = mix.parts[1].draw(1.0, n, seed=4)
    pick = jax.random.bernoulli(jax.random.PRNGKey(5), 0.5, (n, 1))
    x1 = jnp.where(pick, m2, m1)
    options = dict(steps=500) if method == "em" else dict(rtol=1e-6, atol=1e-6)
    x = np.asarray(sample(module("vp"), n, method, score=mix.score, x_init=x1, t_min=T_MIN, seed=1,
                          dtype=jnp.float64, **options).samples)
    right = x[:, 0] > 0
    pv = [stats.binomtest(int(right.sum()), n, 0.5).pvalue]
    for part, rows in zip(mix.parts, [~right, right]):
        pv += moment_pvalues(x[rows], *part.moments(T_MIN))
    assert min(pv) > ALPHA / len(pv), pv


# ------------------------------------------------------------------------------ likelihood
def exact_prior_model(sde):
    """The spec with its prior replaced by the exact p_1 of the Gaussian data (same for each component)."""
    mu, s2 = 0.8, 0.3
    p = GaussianMarginals(sde, mu=[mu, mu], s2=[s2, s2])
    mean, var = p.moments(1.0)
    loc, scale = float(mean[0]), float(jnp.sqrt(var[0]))
    old = "Normal(0, 1)" if sde == "vp" else "Normal(0, sigma_max)"
    text = EXAMPLES.joinpath(f"{sde}.sde").read_text().replace(old, f"Normal({loc!r}, {scale!r})")
    assert f"Normal({loc!r}" in text
    return sdelang.parse(text), p


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_facade_log_prob_and_bits_per_dim_equal_the_closed_form(sde):
    spec, p = exact_prior_model(sde)
    model = ScoreModel(spec, net=p.score, t_min=1e-5, dtype=jnp.float64)
    x = p.draw(0.0, 16, seed=7)
    lp = model.log_prob(x, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(lp, p.log_prob(x, 1e-5), atol=1e-5)
    np.testing.assert_allclose(model.bits_per_dim(x, rtol=1e-8, atol=1e-8), -lp / (2 * np.log(2)), rtol=1e-6)
    doubled = ScoreModel(spec, net=lambda y, t: 2 * p.score(y, t), t_min=1e-5, dtype=jnp.float64)
    assert float(jnp.max(jnp.abs(doubled.log_prob(x, rtol=1e-8, atol=1e-8) - lp))) > 1e-2


# ------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("weighting", ["sigma2", "likelihood", "none"])
def test_dsm_is_smaller_at_the_true_score(weighting):
    """Same draws (common random numbers): E DSM(s) - E DSM(s*) = E λ|s - s*|² > 0."""
    p = marginals("vp")
    mod = module("vp")
    x0 = p.draw(0.0, 20000, seed=1)
    key = jax.random.PRNGKey(2)
    true = float(dsm_loss(mod, x0, key=key, weighting=weighting, score=p.score))
    for wrong in (lambda y, t: 1.2 * p.score(y, t), lambda y, t: p.score(y, t) + 0.3):
        assert float(dsm_loss(mod, x0, key=key, weighting=weighting, score=wrong)) > true
    if weighting != "none":  # the module's own DSM draws t and ε the same way
        attached = module("vp", score=p.score)
        np.testing.assert_allclose(true, float(attached.dsm_loss(x0, weighting=weighting, key=key)), rtol=1e-12)
    with pytest.raises(ValueError):
        dsm_loss(mod, x0, weighting="sigma", score=p.score)


@pytest.mark.parametrize("weighting", ["sigma2", "likelihood", "none"])
def test_full_covariance_dsm_vanishes_at_the_conditional_score(weighting):
    """CLD (coupled (mean, cov) kernel, Cholesky path): data = one point, the exact score is
    -Σ_t⁻¹(y - m_t) and every weighting gives 0; score ×2 gives a positive loss."""
    cld = sdelang.load(EXAMPLES / "cld.sde").compile("jax")
    x0 = jnp.ones((1024, 2))

    def conditional(y, t):
        m, cov = cld.perturbation_kernel(jnp.ones_like(y), t)
        return -jnp.linalg.solve(cov, (y - m)[..., None])[..., 0]

    exact = float(dsm_loss(cld, x0, weighting=weighting, seed=0, score=conditional))
    scale = 1.0 if weighting == "sigma2" else float(dsm_loss(cld, x0, weighting=weighting, seed=0,
                                                              score=lambda y, t: 0 * y))
    assert exact < 1e-12 * scale
    assert float(dsm_loss(cld, x0, weighting=weighting, seed=0, score=lambda y, t: 2 * conditional(y, t))) > 0.1 * scale


@pytest.mark.parametrize("weighting", ["none", "sigma2", "likelihood"])
def test_ssm_is_minimised_by_the_true_score_and_has_the_predicted_value(weighting):
    """For Gaussian p_t with variances v_i: vᵀ J v = -Σ w_i²/v_i exactly (Rademacher v, diagonal J)
    and ½(vᵀ W s)² = ½ c χ²₁ with c = Σ w_i²/v_i, so E SSM(s*) = -½ E c with standard error
    √(E[c²/2] / N)."""
    p = marginals("vp")
    mod = module("vp")
    N = 20000
    x0 = p.draw(0.0, N, seed=3)
    key = jax.random.PRNGKey(4)
    true = float(ssm_loss(mod, x0, key=key, weighting=weighting, score=p.score))
    for wrong in (lambda y, t: 1.2 * p.score(y, t), lambda y, t: 0.8 * p.score(y, t), lambda y, t: p.score(y, t) + 0.3):
        assert float(ssm_loss(mod, x0, key=key, weighting=weighting, score=wrong)) > true
    k_x, _ = jax.random.split(key)
    k_t, _ = jax.random.split(k_x)
    t = jax.random.uniform(k_t, (N,), jnp.float64, T_MIN, 1.0)
    a, sig2 = p.coefficients(t[:, None])
    v = a**2 * p.s2 + sig2
    w2 = {"none": jnp.ones_like(v), "sigma2": sig2 * jnp.ones_like(v),
          "likelihood": (B_MIN + t[:, None] * (B_MAX - B_MIN)) * jnp.ones_like(v)}[weighting]
    c = jnp.sum(w2 / v, axis=-1)
    se = float(jnp.sqrt(jnp.mean(c**2 / 2) / N))
    assert abs(true - float(-0.5 * jnp.mean(c))) < 5 * se


def test_ssm_without_a_kernel_simulates_the_forward_sde():
    """A model with no closed-form kernel (multiplicative noise) takes the simulated path; the loss
    and its parameter gradient are finite."""
    from sdelang_jax import ScoreMLP

    gbm = sdelang.load(EXAMPLES / "gbm.sde").compile("jax")
    assert not gbm.has_kernel
    net = ScoreMLP(gbm.n_states, key=jax.random.PRNGKey(0), width=8)
    x0 = jnp.ones((64, gbm.n_states))
    import equinox as eqx

    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(
        lambda n: ssm_loss(gbm, x0, seed=1, sim_steps=20, score=n)))(net)
    assert np.isfinite(float(value))
    leaves = jax.tree_util.tree_leaves(trainable(grads))
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in leaves)


# ------------------------------------------------------------------------------ training
def energy(x, y):
    return energy_distance_test(np.asarray(x), np.asarray(y), 0, np.random.default_rng(0))[0]


def test_short_training_reduces_the_loss_and_beats_an_untrained_net():
    data = sample_toy("eight_gaussians", 4000, seed=0)
    fresh = sample_toy("eight_gaussians", 1000, seed=1)
    untrained = ScoreModel(module("vp"), hidden=64, depth=2, seed=0)
    before = energy(untrained.sample(1000, "em", steps=200, seed=3).samples, fresh)
    model = ScoreModel(module("vp"), hidden=64, depth=2, seed=0).fit(data, steps=800, progress=False)
    losses = np.asarray(model.losses)
    assert len(losses) == 800 and np.all(np.isfinite(losses))
    assert losses[-100:].mean() < 0.8 * losses[:100].mean()
    after = energy(model.sample(1000, "em", steps=200, seed=3).samples, fresh)
    assert after < 0.5 * before, (after, before)


def _trainer(net, seed=0):
    return ScoreTrainer(module("vp"), net, batch_size=64, seed=seed, steps_per_call=25, ema_decay=0.99)


def test_checkpoint_resume_is_bit_identical(tmp_path):
    from sdelang_jax import ScoreMLP

    data = sample_toy("two_moons", 1000, seed=0).astype(np.float32)
    net = ScoreMLP(2, key=jax.random.PRNGKey(1), width=16)
    straight = _trainer(net)
    straight.fit(data, 60, progress=False)
    path = tmp_path / "ckpt.pkl"
    first = _trainer(net)
    first.fit(data, 30, progress=False, checkpoint=path, checkpoint_every=20)
    resumed = _trainer(net)
    resumed.fit(data, 60, progress=False, checkpoint=path, checkpoint_every=20)  # loads step 30, then trains
    assert resumed.step == straight.step == 60
    assert resumed.losses == straight.losses
    for a, b in [(straight.ema.params, resumed.ema.params), (trainable(straight.net), trainable(resumed.net)),
                 (straight.opt_state, resumed.opt_state)]:
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert int(resumed.ema.num_updates) == 60
    # a different seed draws different batches: the check above can fail
    other = _trainer(net, seed=1)
    other.fit(data, 60, progress=False)
    assert other.losses != straight.losses
    # the facade restores the same trainer from the file
    facade = ScoreModel(module("vp"), net=net).load(path)
    assert facade.trainer.step == 60
    for x, y in zip(jax.tree_util.tree_leaves(trainable(facade.ema_net)), jax.tree_util.tree_leaves(trainable(straight.ema_net()))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_ema_follows_the_documented_recursion():
    params = {"w": jnp.zeros(3)}
    ema = EMA(params, decay=0.9)
    for k in range(1, 4):
        ema = ema.update({"w": jnp.full(3, float(k))})
    expected = 0.0
    for k in range(1, 4):
        d = min(0.9, (1 + k) / (10 + k))
        expected = d * expected + (1 - d) * k
    np.testing.assert_allclose(ema.params["w"], expected, rtol=1e-6)
    assert int(ema.num_updates) == 3


# ------------------------------------------------------------------------------ cross-backend
def test_torch_and_jax_em_samplers_agree_on_moments():
    """Same exact score, independent draws: two-sample z-tests on means and second moments."""
    torch = pytest.importorskip("torch")
    score_sampling = pytest.importorskip("sdelang_torch.score_sampling")
    p = marginals("vp")
    mu, s2 = torch.tensor(MU), torch.tensor(S2)

    def torch_score(y, t):
        t = torch.as_tensor(t, dtype=y.dtype)
        t = t if t.dim() == 0 else t[:, None]
        a = torch.exp(-0.5 * (B_MIN * t + 0.5 * (B_MAX - B_MIN) * t**2))
        return -(y - a * mu) / (a**2 * s2 + 1 - a**2)

    tmod = sdelang.load(EXAMPLES / "vp.sde", d=2).compile("torch")
    x1 = torch.tensor(np.asarray(p.draw(1.0, 4000, seed=21)))
    xt = score_sampling.sample_em(tmod, 4000, 500, x_init=x1, t_min=T_MIN, seed=3, score=torch_score,
                                  dtype=torch.float64).samples.numpy()
    xj = np.asarray(run_sampler("em", "vp", p.score).samples)
    pv = []
    for k in range(2):
        for f in (lambda z: z, lambda z: (z - MU[k]) ** 2):
            a, b = f(xt[:, k]), f(xj[:, k])
            z = (a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b))
            pv.append(2 * stats.norm.sf(abs(z)))
    assert min(pv) > ALPHA / len(pv), pv
