"""Derivations on the parsed example specs, and round trips of derived models through to_sde()."""
import glob
import os

import pytest
import sympy
from sympy import exp

import sdelang

ROOT = os.path.join(os.path.dirname(__file__), "..", "examples")
SPECS = sorted(glob.glob(os.path.join(ROOT, "*.sde")))


def load(name, **kw):
    return sdelang.load(os.path.join(ROOT, name), **kw)


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_derived_models_round_trip(path):
    m = sdelang.load(path)
    for derived in (m.reverse(), m.probability_flow(), m.to_stratonovich(), m.to_ito()):
        assert sdelang.parse(derived.to_sde()) == derived
    for dens in m.densities:
        r = m.reverse(score=dens.name)
        assert sdelang.parse(r.to_sde()) == r


@pytest.mark.parametrize("path", SPECS, ids=os.path.basename)
def test_declared_stationarity_asserts_hold(path):
    m = sdelang.load(path)
    for claim in m.asserts:
        assert m.check_stationary(claim.target).holds, claim


def test_parsed_vp_marginal_matches_song_et_al():
    m = load("vp.sde")
    r = m.marginal()
    t = m.time
    bmin, bmax = m.params["beta_min"], m.params["beta_max"]
    B = bmin * t + (bmax - bmin) * t ** 2 / 2
    assert sympy.simplify(r.mean[0] - r.x0[0] * exp(-B / 2)) == 0
    assert sympy.simplify(r.cov[0] - (1 - exp(-B))) == 0


def test_parsed_ou_stationary_law():
    m = load("ou.sde")
    x = m.states[0]
    th, mu, sg = (m.params[n] for n in ("theta", "mu", "sigma"))
    assert m.check_stationary(exp(-th * (x - mu) ** 2 / sg ** 2)).holds
    assert m.check_stationary(exp(-th * (x - mu) ** 2 / (2 * sg ** 2))).status == "fails"


def test_parsed_cld_marginal_solves_lyapunov():
    m = load("cld.sde")
    r = m.marginal()
    t = m.time
    A = sympy.Matrix([[sympy.diff(f, s) for s in m.states] for f in m.drift]).xreplace(
        {sympy.Symbol(k): v for k, v in (r.substituted or {}).items()})
    D = (m.diffusion * m.diffusion.T).xreplace({sympy.Symbol(k): v for k, v in (r.substituted or {}).items()})
    lyapunov = r.cov.diff(t) - (A * r.cov + r.cov * A.T + D)
    for value in (0.1, 0.5, 1.0):
        assert max(abs(float(e.subs(t, value))) for e in lyapunov) < 1e-8
    assert max(abs(float(e.subs(t, 0))) for e in r.cov) < 1e-12
