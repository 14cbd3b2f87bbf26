"""Sharded JAX runs for tests/test_jax_sharding.py (XLA_FLAGS must force 2 host devices before jax
is imported, so the test runs this in a subprocess). Prints one JSON object: per case, whether the
output is split over 2 devices, the largest difference from the unsharded run and timings."""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def split_over_two(x) -> bool:
    sharding = x.sharding
    return len(sharding.device_set) == 2 and not sharding.is_fully_replicated


def main() -> None:
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    import sdelang
    from sdelang.score.likelihood import log_prob
    from sdelang.score.samplers import sample
    from sdelang.toy_data import sample_toy
    from sdelang_jax.score_model import ScoreModel

    assert len(jax.devices()) == 2, jax.devices()
    report = {}

    def record(name, sharded, plain, started):
        report[name] = {"split": split_over_two(sharded), "diff": float(jnp.max(jnp.abs(sharded - plain))),
                        "shape": list(sharded.shape), "seconds": round(time.perf_counter() - started, 2)}

    mesh = Mesh(np.array(jax.devices()), ("batch",))
    rows = NamedSharding(mesh, P("batch"))
    module = sdelang.load(os.path.join(ROOT, "examples", "vp.sde")).compile("jax")
    score = lambda x, t: -x   # noqa: E731 — the exact score of N(0, I) data under VP
    x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 2)), jnp.float32)
    xs = jax.device_put(x, rows)

    started = time.perf_counter()
    ts = [0.0, 0.5, 1.0]
    record("simulate", module.simulate(xs, ts, 0.02, seed=0), module.simulate(x, ts, 0.02, seed=0), started)
    cases = [("em", dict(steps=20)), ("pc", dict(steps=10)), ("ode-rk4", dict(solver="rk4", steps=8)),
             ("ode-tsit5", dict()), ("ddim", dict(steps=5)), ("dpm-solver", dict(steps=5)),
             ("dpm-solver++", dict(steps=5)), ("deis", dict(steps=5)), ("heun", dict(steps=5)),
             ("ancestral", dict(steps=5))]
    for name, options in cases:
        started = time.perf_counter()
        method = name.split("-rk4")[0].split("-tsit5")[0]
        a = sample(module, 32, method, seed=1, score=score, x_init=xs, **options).samples
        b = sample(module, 32, method, seed=1, score=score, x_init=x, **options).samples
        record(f"sample:{name}", a, b, started)
    scored = module.with_score(score)
    for name, options in (("exact", dict(exact=True)), ("hutchinson", dict(exact=False)),
                          ("rk4", dict(exact=True, solver="rk4", steps=8))):
        started = time.perf_counter()
        record(f"log_prob:{name}", log_prob(scored, xs, seed=0, **options), log_prob(scored, x, seed=0, **options),
               started)

    # ScoreModel(devices=2): training, sampling and log_prob data-parallel on the mesh.
    data = sample_toy("eight_gaussians", 512, seed=0).astype(np.float32)
    spec = os.path.join(ROOT, "examples", "vp.sde")
    steps = int(os.environ.get("SHARDING_TRAIN_STEPS", "40"))
    fitted = {}
    for name, settings in (("plain", {}), ("mesh", {"devices": 2})):
        model = ScoreModel(spec, hidden=32, depth=2, **settings)
        started = time.perf_counter()
        model.fit(data, steps=steps, batch_size=64, progress=False)
        fitted[name] = (model, time.perf_counter() - started)
    plain, mesh_model = fitted["plain"][0], fitted["mesh"][0]
    leaves = lambda m: jax.tree_util.tree_leaves(m.net)  # noqa: E731
    params = [leaf for leaf in leaves(mesh_model) if isinstance(leaf, jax.Array)]
    report["fit"] = {
        "loss_diff": float(np.max(np.abs(np.asarray(plain.losses) - np.asarray(mesh_model.losses)))),
        "param_diff": max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(leaves(plain), leaves(mesh_model))
                          if isinstance(a, jax.Array)),
        "params_replicated": all(len(p.sharding.device_set) == 2 and p.sharding.is_fully_replicated
                                 for p in params),
        "seconds_plain": round(fitted["plain"][1], 2), "seconds_mesh": round(fitted["mesh"][1], 2)}
    for method, options in (("em", dict(steps=20)), ("dpm-solver++", dict(steps=5))):
        started = time.perf_counter()
        a = mesh_model.sample(32, method, seed=2, batch_size=16, progress=False, **options).samples
        b = plain.sample(32, method, seed=2, batch_size=16, progress=False, **options).samples
        record(f"model.sample:{method}", a, b, started)
    started = time.perf_counter()
    record("model.log_prob", mesh_model.log_prob(x, solver="rk4", steps=8, progress=False),
           plain.log_prob(x, solver="rk4", steps=8, progress=False), started)
    print("JSON " + json.dumps(report))


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
