"""Elementwise models: derivations never depend on d (the same expressions for d = 2 and 3072)."""

import sympy
from sympy import Integer

import derive_models as dm


def _derive_all(model):
    return (model.kfp(), model.reverse(), model.probability_flow(), model.marginal())


def test_derivations_do_not_depend_on_d_value():
    small = dm.vp().replace(dimension=Integer(2))
    large = dm.vp().replace(dimension=Integer(3072))
    a = _derive_all(small)
    b = _derive_all(large)
    # same per-component objects; only the Sum's upper limit differs
    assert a[0].rhs.function == b[0].rhs.function
    assert a[0].rhs.limits[0][2] == 2 and b[0].rhs.limits[0][2] == 3072
    assert a[1].drift == b[1].drift and a[2].drift == b[2].drift
    assert a[3].cov == b[3].cov


def test_derived_models_keep_valid_structure():
    for make in (dm.ou, dm.vp, dm.heston, dm.cld, dm.mcf_model):
        m = make()
        n = m.n_states
        for derived in (m.reverse(), m.probability_flow(), m.to_stratonovich(), m.to_ito()):
            assert derived.drift.shape == (n, 1)
            assert derived.diffusion.shape == (n, derived.n_brownians)
            assert derived.t0 == 0 or derived.t0 == m.t0
            assert derived.dimension == m.dimension
        r = m.reverse()
        assert sympy.simplify(r.t1 - (m.t1 - m.t0)) == 0
        assert r.n_brownians == m.n_brownians
