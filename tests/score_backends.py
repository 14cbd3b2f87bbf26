"""The two backends of the score layer behind one test interface, and closed-form exact scores.

``backend`` (a module-scoped fixture, parametrised "torch" / "jax") gives a :class:`Backend`:
compile(spec, score=None, **params), asarray(np_array, dtype), to_numpy(x), mlp(dim, ...) (the
backend's ``ScoreMLP``), f64 / f32, the package (``lib``: sdelang_torch or sdelang_jax) and a few
helpers (score-call counters, parameter access). For "jax" it switches float64 on for the rest of
the test module (``jax_float64`` of conftest.py); pytest runs every torch test of a module first.

Exact marginals (VERIFICATION.md, "Exact-score diffusion checks"): data Σ_k w_k N(m_k, S_k) in 2-D
diffused by an affine SDE with kernel x_t | x_0 ~ N(α_t x_0, σ_t² I) has
p_t = Σ_k w_k N(α_t m_k, α_t² S_k + σ_t² I). :class:`Mixture` is its score as a hashable callable
(equal instances hash equal, so JAX's compiled samplers are reused across tests), written with
2 × 2 algebra on columns only, so the same code runs on torch tensors and JAX arrays.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from typing import Tuple

import numpy as np
import pytest
from scipy import stats

import sdelang

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
T_MIN = 1e-3
ALPHA = 1e-3
B_MIN, B_MAX = 0.1, 20.0
S_MIN, S_MAX = 0.01, 10.0   # VE compiled with sigma_max = 10 (prior N(0, 10))
PARAMS = {"vp": {}, "ve": {"sigma_max": S_MAX}, "subvp": {}, "cld": {}, "ou": {}, "gbm": {}}


# ------------------------------------------------------------------------------ backends
class Backend:
    name = ""

    def __init__(self):
        self.lib = __import__(f"sdelang_{self.name}")

    def __repr__(self):
        return self.name

    def compile(self, spec, score=None, **params):
        """A compiled module of an example name ("vp", "ve", ...), a .sde path or a Model."""
        if isinstance(spec, str) and spec in PARAMS:
            base = _compiled(self.name, spec, tuple(sorted({**PARAMS[spec], **params}.items())))
        else:
            model = sdelang.load(spec) if isinstance(spec, (str, pathlib.Path)) else spec
            base = model.compile(self.name, **params)
        return base.with_score(score)

    @property
    def ops(self):
        return self.compile("vp").ops


@functools.lru_cache(maxsize=None)
def _compiled(backend: str, spec: str, params: tuple):
    """One compiled class per (backend, spec, parameters) for the whole session (JAX jit caches)."""
    return sdelang.load(EXAMPLES / f"{spec}.sde", **dict(params)).compile(backend)


class TorchBackend(Backend):
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        self.f64, self.f32 = torch.float64, torch.float32
        super().__init__()

    def asarray(self, x, dtype=None):
        return self.torch.as_tensor(np.asarray(x), dtype=dtype or self.f64)

    def to_numpy(self, x):
        return x.detach().cpu().numpy() if self.torch.is_tensor(x) else np.asarray(x)

    def mlp(self, dim, hidden=16, depth=2, seed=0, dtype=None):
        with self.torch.random.fork_rng(devices=[]):
            self.torch.manual_seed(seed)
            return self.lib.ScoreMLP(dim, hidden=hidden, depth=depth).to(dtype or self.f32)

    # xp: the few array functions the exact scores need
    def exp(self, x):
        return self.torch.exp(x)

    def log(self, x):
        return self.torch.log(x)

    def maximum(self, a, b):
        return self.torch.maximum(a, b)

    def stack(self, cols):
        return self.torch.stack(cols, dim=-1)

    def time(self, t, like):
        return self.torch.as_tensor(t, dtype=like.dtype, device=like.device)

    def counter(self, score):
        """(score that counts its evaluations, a function returning the count)."""
        calls = [0]

        def counted(x, t):
            calls[0] += 1
            return score(x, t)

        return counted, lambda: calls[0]

    def params(self, net):
        """The net's floating parameters as numpy arrays (in order)."""
        return [p.detach().cpu().numpy().copy() for p in net.parameters()]

    def shifted(self, net, amount):
        """``net`` with ``amount`` added to every parameter (in place for torch)."""
        with self.torch.no_grad():
            for p in net.parameters():
                p.add_(amount)
        return net


class JaxBackend(Backend):
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.f64, self.f32 = jnp.float64, jnp.float32
        super().__init__()

    def asarray(self, x, dtype=None):
        return self.jnp.asarray(np.asarray(x), dtype=dtype or self.f64)

    def to_numpy(self, x):
        return np.asarray(x)

    def mlp(self, dim, hidden=16, depth=2, seed=0, dtype=None):
        return self.lib.ScoreMLP(dim, hidden=hidden, depth=depth, key=self.jax.random.PRNGKey(seed),
                                 dtype=dtype or self.f32)

    def exp(self, x):
        return self.jnp.exp(x)

    def log(self, x):
        return self.jnp.log(x)

    def maximum(self, a, b):
        return self.jnp.maximum(a, b)

    def stack(self, cols):
        return self.jnp.stack(cols, axis=-1)

    def time(self, t, like):
        return self.jnp.asarray(t, dtype=like.dtype)

    def counter(self, score):
        """(score that counts its evaluations by a ``jax.debug.callback`` — at run time, inside
        compiled loops and solvers — a function returning the count after an effects barrier)."""
        calls = [0]

        def bump():
            calls[0] += 1

        def counted(x, t):
            self.jax.debug.callback(bump)
            return score(x, t)

        def count():
            self.jax.effects_barrier()
            return calls[0]

        return counted, count

    def params(self, net):
        import equinox as eqx

        return [np.asarray(p).copy() for p in self.jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array))]

    def shifted(self, net, amount):
        import equinox as eqx

        params, static = eqx.partition(net, eqx.is_inexact_array)
        return eqx.combine(self.jax.tree_util.tree_map(lambda p: p + amount, params), static)


BACKENDS = {"torch": TorchBackend, "jax": JaxBackend}


@functools.lru_cache(maxsize=None)
def make_backend(name: str) -> Backend:
    return BACKENDS[name]()


def backend_or_skip(name: str, request=None) -> Backend:
    """The backend ``name`` (skipping when its framework is missing); JAX in float64."""
    if name == "torch":
        pytest.importorskip("torch")
        pytest.importorskip("torchdiffeq")
    else:
        pytest.importorskip("jax")
        pytest.importorskip("diffrax")
        pytest.importorskip("equinox")
        if request is not None:
            request.getfixturevalue("jax_float64")
    return make_backend(name)


@pytest.fixture(scope="module", params=[pytest.param("torch", marks=pytest.mark.torch),
                                        pytest.param("jax", marks=pytest.mark.jax)])
def backend(request) -> Backend:
    """Each backend in turn (JAX with float64 on for the rest of the module)."""
    return backend_or_skip(request.param, request)


@pytest.fixture(scope="module")
def both(request) -> Tuple[Backend, Backend]:
    """(torch, jax) for the cross-backend comparisons (JAX in float64)."""
    return backend_or_skip("torch"), backend_or_skip("jax", request)


# ------------------------------------------------------------------------------ exact marginals
@dataclasses.dataclass(frozen=True)
class Mixture:
    """p_t of data Σ_k w_k N(m_k, S_k) in 2-D under "vp" or "ve" (module docstring); called as
    score(x, t) on ``backend``'s arrays (t a scalar or of shape (batch,)); ``factor`` scales the
    score (a planted bug when ≠ 1); ``tag`` only makes an otherwise equal instance distinct."""

    backend: str
    sde: str
    weights: tuple
    means: tuple
    covs: tuple                 # per component (S00, S01, S11)
    factor: float = 1.0
    tag: int = 0

    @property
    def B(self) -> Backend:
        return make_backend(self.backend)

    def scaled(self, factor: float, tag: int = 0) -> "Mixture":
        return dataclasses.replace(self, factor=factor, tag=tag)

    def on(self, backend: str) -> "Mixture":
        return dataclasses.replace(self, backend=backend)

    # coefficients on numpy or backend arrays: (α_t², σ_t², α_t) through exp only
    def coefficients(self, t, exp):
        if self.sde == "vp":
            a2 = exp(-(B_MIN * t + 0.5 * (B_MAX - B_MIN) * t ** 2))
            return a2, 1 - a2, exp(-0.5 * (B_MIN * t + 0.5 * (B_MAX - B_MIN) * t ** 2))
        r2t = exp(2 * t * math.log(S_MAX / S_MIN))
        return 1 + 0 * t, S_MIN ** 2 * (r2t - 1), 1 + 0 * t

    def _components(self, x, t):
        """Per component: log w_k N_k(x) and -P_k⁻¹(x - α m_k), as columns of the backend."""
        B = self.B
        t = B.time(t, x)
        a2, s2, a = self.coefficients(t, B.exp)
        x0, x1 = x[:, 0], x[:, 1]
        logs, grads = [], []
        for w, m, (c00, c01, c11) in zip(self.weights, self.means, self.covs):
            p00, p01, p11 = a2 * c00 + s2, a2 * c01, a2 * c11 + s2
            det = p00 * p11 - p01 ** 2
            r0, r1 = x0 - a * m[0], x1 - a * m[1]
            g0, g1 = (p11 * r0 - p01 * r1) / det, (p00 * r1 - p01 * r0) / det
            logs.append(math.log(w) - 0.5 * (r0 * g0 + r1 * g1) - 0.5 * B.log(det) - math.log(2 * math.pi))
            grads.append((-g0, -g1))
        return logs, grads

    def log_prob(self, x, t):
        logs, _ = self._components(x, t)
        top = functools.reduce(self.B.maximum, logs)
        return top + self.B.log(sum(self.B.exp(lg - top) for lg in logs))

    def __call__(self, x, t):
        logs, grads = self._components(x, t)
        top = functools.reduce(self.B.maximum, logs)
        resp = [self.B.exp(lg - top) for lg in logs]
        total = sum(resp)
        s0 = sum(r * g[0] for r, g in zip(resp, grads)) / total
        s1 = sum(r * g[1] for r, g in zip(resp, grads)) / total
        return self.factor * self.B.stack([s0, s1])

    # numpy side: draws and moments of p_t
    def component_moments(self, t):
        a2, s2, a = self.coefficients(np.float64(t), np.exp)
        out = []
        for m, (c00, c01, c11) in zip(self.means, self.covs):
            cov = a2 * np.array([[c00, c01], [c01, c11]]) + s2 * np.eye(2)
            out.append((a * np.asarray(m, float), cov))
        return out

    def moments(self, t):
        """(mean, covariance) of p_t."""
        parts = self.component_moments(t)
        w = np.asarray(self.weights)
        mean = sum(wk * m for wk, (m, _) in zip(w, parts))
        second = sum(wk * (c + np.outer(m, m)) for wk, (m, c) in zip(w, parts))
        return mean, second - np.outer(mean, mean)

    def sample(self, t, n, seed):
        """n exact draws of p_t (numpy float64)."""
        rng = np.random.default_rng(seed)
        k = rng.choice(len(self.weights), size=n, p=np.asarray(self.weights))
        z = rng.standard_normal((n, 2))
        out = np.empty((n, 2))
        for j, (m, c) in enumerate(self.component_moments(t)):
            rows = k == j
            out[rows] = m + z[rows] @ np.linalg.cholesky(c).T
        return out


@dataclasses.dataclass(frozen=True)
class KernelMixture:
    """The exact score of data Σ_k w_k N(m_k, S_k) on a 2-state affine model ``sde`` (any of
    PARAMS: VP, VE, sub-VP, CLD in (x, v)) read from the compiled model's own kernel
    x_t | x_0 ~ N(Φ_t x_0 + c_t, Σ_t): p_t = Σ_k w_k N(Φ_t m_k + c_t, Φ_t S_k Φ_tᵀ + Σ_t).
    Called as score(x, t) with a scalar t (the few-step samplers and the ODE solvers' calls); a
    hashable callable like :class:`Mixture`. Its exactness rests on the kernel, which
    test_derive_marginal checks against closed forms; the convergence tests only need a smooth
    score that the reference flow and the samplers share."""

    backend: str
    sde: str
    weights: tuple
    means: tuple
    covs: tuple                 # per component (S00, S01, S11)
    factor: float = 1.0

    def _kernel(self, t, like):
        B = make_backend(self.backend)
        module = B.compile(self.sde)
        t = B.time(t, like)
        if module.kernel_kind == "diagonal":
            mean, std = module.perturbation_kernel(B.asarray([[0.0, 0.0], [1.0, 1.0]], like.dtype), t)
            phi = ((mean[1, 0] - mean[0, 0], 0 * t), (0 * t, mean[1, 1] - mean[0, 1]))
            cov = ((std[0, 0] ** 2, 0 * t), (0 * t, std[0, 1] ** 2))
        else:
            mean, cov = module.perturbation_kernel(B.asarray(np.vstack([np.zeros(2), np.eye(2)]), like.dtype), t)
            phi = ((mean[1, 0] - mean[0, 0], mean[2, 0] - mean[0, 0]), (mean[1, 1] - mean[0, 1], mean[2, 1] - mean[0, 1]))
            cov = ((cov[0, 0, 0], cov[0, 0, 1]), (cov[0, 1, 0], cov[0, 1, 1]))
        return B, phi, (mean[0, 0], mean[0, 1]), cov

    def __call__(self, x, t):
        B, F, c, K = self._kernel(t, x)
        logs, grads = [], []
        for w, m, (s00, s01, s11) in zip(self.weights, self.means, self.covs):
            mu = [F[i][0] * m[0] + F[i][1] * m[1] + c[i] for i in range(2)]
            S = ((s00, s01), (s01, s11))
            FS = [[F[i][0] * S[0][j] + F[i][1] * S[1][j] for j in range(2)] for i in range(2)]
            P = [[FS[i][0] * F[j][0] + FS[i][1] * F[j][1] + K[i][j] for j in range(2)] for i in range(2)]
            det = P[0][0] * P[1][1] - P[0][1] * P[1][0]
            r0, r1 = x[:, 0] - mu[0], x[:, 1] - mu[1]
            g0, g1 = (P[1][1] * r0 - P[0][1] * r1) / det, (P[0][0] * r1 - P[1][0] * r0) / det
            logs.append(math.log(w) - 0.5 * (r0 * g0 + r1 * g1) - 0.5 * B.log(det))
            grads.append((-g0, -g1))
        top = functools.reduce(B.maximum, logs)
        resp = [B.exp(lg - top) for lg in logs]
        total = sum(resp)
        return self.factor * B.stack([sum(r * g[i] for r, g in zip(resp, grads)) / total for i in range(2)])


def mixture(backend: str, sde: str, data: dict) -> Mixture:
    return Mixture(backend, sde, tuple(data["weights"]), tuple(tuple(m) for m in data["means"]),
                   tuple(tuple(c) for c in data["covs"]))


MIXTURE = dict(weights=[0.3, 0.7], means=[[-1.0, 0.5], [1.0, -0.5]], covs=[[0.3, 0.1, 0.2], [0.2, -0.05, 0.4]])
GAUSSIAN = dict(weights=[1.0], means=[[1.0, -0.5]], covs=[[1.0, 0.6, 0.5]])
DIAGONAL = dict(weights=[1.0], means=[[1.0, -0.5]], covs=[[0.25, 0.0, 0.04]])   # independent components
TWO_MODES = dict(weights=[0.5, 0.5], means=[[-2.0, 0.0], [2.0, 0.0]], covs=[[0.09, 0.0, 0.09]] * 2)


# ------------------------------------------------------------------------------ statistics
def accepts(x, y, seed=0) -> bool:
    """True when no test of ``sdelang.check.two_sample``'s family (α = 1e-3, Bonferroni) rejects
    x ~ y (x, y numpy)."""
    from sdelang.check.two_sample import two_sample_tests

    outcomes = two_sample_tests(np.asarray(x), np.asarray(y), np.random.default_rng(seed), alpha=ALPHA)
    return not any(o.rejects for o in outcomes)


def gaussian_moment_pvalue(x, mean, cov) -> float:
    """Bonferroni-adjusted smallest p of z-tests on every mean component and every second moment
    E[(x_i - m_i)(x_j - m_j)] = Σ_ij of Gaussian draws (Var = Σ_ii Σ_jj + Σ_ij²)."""
    x = np.asarray(x)
    n, d = x.shape
    c = x - mean
    pvalues = []
    for i in range(d):
        pvalues.append(2 * stats.norm.sf(abs(c[:, i].mean()) / math.sqrt(cov[i, i] / n)))
        for j in range(i, d):
            sd = math.sqrt((cov[i, i] * cov[j, j] + cov[i, j] ** 2) / n)
            pvalues.append(2 * stats.norm.sf(abs((c[:, i] * c[:, j]).mean() - cov[i, j]) / sd))
    return min(1.0, min(pvalues) * len(pvalues))


def two_sample_moment_pvalue(x, y) -> float:
    """Bonferroni-adjusted smallest p of two-sample z-tests on each mean and each second moment
    (about the pooled mean) of independent samples x, y."""
    x, y = np.asarray(x), np.asarray(y)
    centre = np.concatenate([x, y]).mean(0)
    pvalues = []
    for i in range(x.shape[1]):
        for f in (lambda z: z[:, i], lambda z: (z[:, i] - centre[i]) ** 2):
            a, b = f(x), f(y)
            z = (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            pvalues.append(2 * stats.norm.sf(abs(z)))
    return min(1.0, min(pvalues) * len(pvalues))
