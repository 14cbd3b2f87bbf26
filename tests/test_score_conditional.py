"""Class-conditional score models and classifier-free guidance (ScoreModel(num_classes=K),
fit(labels=), sample(labels=, guidance=)), checked on a 2-D mixture of three Gaussian classes
whose conditional and unconditional scores are known in closed form (score_backends.Mixture):
guidance 0 must reproduce each class's law (z-tests on means and second moments, α = 1e-3), and
guidance w > 0 must sharpen it, raising the exact posterior p(y | x) of the requested class."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from score_backends import ALPHA, EXAMPLES, backend, gaussian_moment_pvalue, mixture  # noqa: F401

MEANS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.2]])
VAR = 0.25
CLASSES = dict(weights=[1 / 3] * 3, means=MEANS.tolist(), covs=[[VAR, 0.0, VAR]] * 3)


@dataclasses.dataclass(frozen=True)
class ConditionalMixture:
    """net(x, t, labels): the exact score of class y's marginal N(a m_y, (a² v + σ²) I), and for
    labels None or the null label 3 the exact score of the three-class mixture."""

    backend: str
    sde: str = "vp"

    def __call__(self, x, t, labels=None):
        import score_backends as sb

        B = sb.make_backend(self.backend)
        out = mixture(self.backend, self.sde, CLASSES)(x, t)
        if labels is None:
            return out
        for k, m in enumerate(MEANS):
            component = mixture(self.backend, self.sde, dict(weights=[1.0], means=[m.tolist()], covs=[[VAR, 0.0, VAR]]))
            out = B.ops.where((labels == k)[:, None], component(x, t), out)
        return out


def posterior(x, k):
    """p(y = k | x) at t = 0 for equal weights and equal isotropic covariances (softmax of -|x - m|² / 2v)."""
    logits = -((x[:, None, :] - MEANS[None]) ** 2).sum(-1) / (2 * VAR)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(1, keepdims=True))[np.arange(len(x)), k]


def exact_model(B):
    return B.lib.ScoreModel(B.compile("vp"), net=ConditionalMixture(B.name), num_classes=3, dtype=B.f64)


@pytest.mark.slow
def test_guidance_zero_reproduces_each_class_and_guidance_sharpens_it(backend):
    B = backend
    model = exact_model(B)
    n = 2000
    labels = np.repeat(np.arange(3), n)
    plain = B.to_numpy(model.sample(3 * n, "ode", labels=labels, seed=0, progress=False).samples)
    guided = B.to_numpy(model.sample(3 * n, "ode", labels=labels, guidance=2.0, seed=0, progress=False).samples)
    cov = VAR * np.eye(2)
    for k in range(3):
        rows = labels == k
        assert gaussian_moment_pvalue(plain[rows], MEANS[k], cov) * 3 > ALPHA, k
        # power: the same draws are rejected as class k + 1's law
        assert gaussian_moment_pvalue(plain[rows], MEANS[(k + 1) % 3], cov) < ALPHA
        c0, c2 = posterior(plain[rows], k), posterior(guided[rows], k)
        # exact draws of class k give E[p(k | x)]: the guidance-0 samples must agree with it
        exact = MEANS[k] + math.sqrt(VAR) * np.random.default_rng(k).normal(size=(20000, 2))
        ref = posterior(exact, k)
        z = (c0.mean() - ref.mean()) / math.sqrt(c0.var() / n + ref.var() / len(ref))
        assert 2 * stats.norm.sf(abs(z)) * 3 > ALPHA, (k, z)
        # guidance w = 2 samples ∝ p(x | k) p(k | x)^2: a higher mean posterior, far beyond its error
        assert c2.mean() - c0.mean() > 5 * math.sqrt(c0.var() / n + c2.var() / n), (k, c0.mean(), c2.mean())


def test_label_dropout_replaces_labels_by_the_null_label_at_its_rate(backend):
    """Each label becomes ∅ = K with probability p: the count is Binomial(n, p) (4 σ), and p = 0 keeps all."""
    from sdelang.score.trainer import dropped_labels

    B = backend
    ops = B.ops
    n, p, K = 20000, 0.3, 5
    labels = ops.asarray(np.arange(n) % K, dtype=None) if B.name == "jax" else B.torch.arange(n) % K
    stream = ops.stream(0)
    out = np.asarray(B.to_numpy(dropped_labels(ops, labels, stream, p, K, B.f64)))
    kept = out != K
    assert abs((~kept).sum() - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert np.array_equal(out[kept], (np.arange(n) % K)[kept])
    assert np.array_equal(np.asarray(B.to_numpy(dropped_labels(ops, labels, stream, 0.0, K, B.f64))), np.arange(n) % K)


def test_a_trained_conditional_model_separates_its_classes(backend):
    """600 steps of the default (conditional, preconditioned) MLP on the three classes: with guidance
    0 and 1, the mean of each class's DDIM samples lies nearest that class's mean."""
    B = backend
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 6000)
    data = MEANS[labels] + math.sqrt(VAR) * rng.normal(size=(6000, 2))
    model = B.lib.ScoreModel(EXAMPLES / "vp.sde", num_classes=3, hidden=64, depth=2)
    model.fit(data.astype(np.float32), steps=600, batch_size=256, labels=labels, progress=False)
    want = np.repeat(np.arange(3), 500)
    for w in (0.0, 1.0):
        x = np.asarray(B.to_numpy(model.sample(1500, "ddim", steps=20, labels=want, guidance=w, progress=False).samples))
        centres = np.stack([x[want == k].mean(0) for k in range(3)])
        nearest = np.argmin(((centres[:, None] - MEANS[None]) ** 2).sum(-1), axis=1)
        assert np.array_equal(nearest, np.arange(3)), (w, centres)


def test_conditional_inputs_are_checked(backend):
    B = backend
    model = B.lib.ScoreModel(EXAMPLES / "vp.sde", num_classes=3, hidden=8, depth=1)
    data = np.zeros((8, 2), np.float32)
    with pytest.raises(ValueError, match="pass labels="):
        model.fit(data, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\]"):
        model.fit(data, steps=1, labels=np.full(8, 3), progress=False)
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        model.fit(data, steps=1, labels=np.zeros(7, int), progress=False)
    model.fit(data, steps=1, labels=np.zeros(8, int), progress=False)
    with pytest.raises(ValueError, match="guidance > 0 needs labels"):
        model.sample(4, "ddim", steps=2, guidance=1.0)
    with pytest.raises(ValueError, match="guidance must be"):
        model.sample(4, "ddim", steps=2, labels=0, guidance=-1.0)
    out = model.sample(4, "ddim", steps=2, labels=1, guidance=0.5, progress=False)      # one label for all
    assert out.samples.shape == (4, 2)


def test_a_checkpoint_restores_the_image_shape_and_the_unet(backend, tmp_path):
    """fit on (N, 1, 8, 8) saves the shape: a fresh ScoreModel.load rebuilds the U-Net and samples alike."""
    B = backend
    data = np.random.default_rng(0).uniform(-1, 1, size=(16, 1, 8, 8)).astype(np.float32)
    path = tmp_path / "ckpt"
    model = B.lib.ScoreModel(EXAMPLES / "vp.sde", d=64, num_classes=2)
    model.fit(data, steps=2, batch_size=4, labels=np.arange(16) % 2, checkpoint=path, progress=False)
    again = B.lib.ScoreModel(EXAMPLES / "vp.sde", d=64, num_classes=2).load(path)
    assert again.shape == (1, 8, 8) and isinstance(again.net.net, B.lib.UNet)
    a = model.sample(3, "ddim", steps=2, labels=[0, 1, 0], progress=False).samples
    b = again.sample(3, "ddim", steps=2, labels=[0, 1, 0], progress=False).samples
    assert a.shape == (3, 1, 8, 8)
    np.testing.assert_allclose(B.to_numpy(a), B.to_numpy(b), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="num_classes=2"):
        B.lib.ScoreModel(EXAMPLES / "vp.sde", d=64).load(path)
