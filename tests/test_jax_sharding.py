"""JAX data parallelism over a device mesh (issue 15): with two forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``, which must be set before jax is imported,
so tests/distributed_jax_sharding.py runs in a subprocess), a batch placed with
``NamedSharding(mesh, P("batch"))`` stays split over both devices through simulate, every sampler
(em, pc, the ODE with a fixed-step and an adaptive diffrax solver, ddim, dpm-solver, dpm-solver++,
deis, heun, ancestral) and log_prob (exact and Hutchinson), and equals the unsharded result; and
``ScoreModel(devices=2)`` trains with replicated parameters to the same losses and weights as one
device, and samples / scores with outputs split over the mesh.

Tolerances: the exact-score runs read the same random numbers (JAX's partitionable threefry) and
the per-row arithmetic is the same, so they agree to 1e-6 (measured: 0, pc 1.5e-7). Training
differs by the order of the gradient's reduction only (the all-reduce of two half-batch sums):
measured 2.4e-7 on the losses and 6e-8 on the parameters after 40 steps; allowed 1e-5. Samples
and log p of the two trained models then differ by at most 1.5e-5 (measured); allowed 1e-3.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("jax")
pytest.importorskip("diffrax")

pytestmark = pytest.mark.jax
ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed_jax_sharding.py"
SAMPLERS = ["em", "pc", "ode-rk4", "ode-tsit5", "ddim", "dpm-solver", "dpm-solver++", "deis", "heun", "ancestral"]


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", OMP_NUM_THREADS="1",
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = [line for line in done.stdout.splitlines() if line.startswith("JSON ")][-1]
    return json.loads(line[len("JSON "):])


@pytest.mark.parametrize("case", ["simulate", *[f"sample:{name}" for name in SAMPLERS],
                                  "log_prob:exact", "log_prob:hutchinson", "log_prob:rk4"])
def test_a_sharded_batch_stays_sharded_and_equals_the_unsharded_result(report, case):
    result = report[case]
    assert result["split"], f"{case}: the output is not split over the 2 devices"
    assert result["diff"] <= 1e-6, f"{case}: differs from the unsharded run by {result['diff']}"


def test_training_on_the_mesh_matches_one_device_with_replicated_parameters(report):
    fit = report["fit"]
    assert fit["params_replicated"]
    assert fit["loss_diff"] <= 1e-5 and fit["param_diff"] <= 1e-5, fit


@pytest.mark.parametrize("case", ["model.sample:em", "model.sample:dpm-solver++", "model.log_prob"])
def test_the_mesh_model_samples_and_scores_sharded(report, case):
    result = report[case]
    assert result["split"], f"{case}: the output is not split over the 2 devices"
    assert result["diff"] <= 1e-3, result
    assert result["shape"][0] == 32


def test_mesh_options_are_checked_in_one_process():
    import jax

    from sdelang_jax.sharding import batch_mesh, shard_rows

    assert batch_mesh() is None
    mesh = batch_mesh(devices=1)
    assert mesh.shape["batch"] == 1
    with pytest.raises(TypeError, match="not both"):
        batch_mesh(mesh, devices=1)
    with pytest.raises(ValueError, match="JAX devices"):
        batch_mesh(devices=len(jax.devices()) + 1)
    assert shard_rows(jax.numpy.zeros((3, 2)), mesh).shape == (3, 2)


def test_the_torch_backend_refuses_a_mesh():
    pytest.importorskip("torch")
    from sdelang_torch.array_ops import TORCH_OPS

    assert TORCH_OPS.batch_mesh() is None
    with pytest.raises(TypeError, match="torchrun"):
        TORCH_OPS.batch_mesh(devices=2)
