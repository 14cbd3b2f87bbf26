"""Classifier-free guidance (Ho & Salimans 2022), written once for both backends.

For a network trained with label dropout, s(x, t, y) is the class-conditional score ∇ log p_t(x | y)
and s(x, t, ∅) the unconditional one. Guidance with weight w samples from p_t(x | y)^{1+w} / p_t(x)^w
∝ p_t(x | y) p_t(y | x)^w, whose score is
    s̃(x, t) = (1 + w) s(x, t, y) - w s(x, t, ∅) = s(x, t, y) + w (s(x, t, y) - s(x, t, ∅));
w = 0 is the conditional model itself. Both terms come from one network call on the batch [x; x]
with labels [y; ∅].
"""
from __future__ import annotations


def guided_score(ops, net, labels, null, guidance: float, x, t):
    """s̃(x, t) of the module docstring for labels y (shape (N,)) and the null label ``null``."""
    if float(guidance) == 0.0:
        return net(x, t, labels)
    n = x.shape[0]
    both_t = t if ops.is_scalar(t) or len(getattr(t, "shape", ())) == 0 else ops.concatenate([t, t])
    nulls = ops.full(labels.shape, null, like=labels)
    out = net(ops.concatenate([x, x]), both_t, ops.concatenate([labels, nulls]))
    conditional, unconditional = out[:n], out[n:]
    return conditional + float(guidance) * (conditional - unconditional)
