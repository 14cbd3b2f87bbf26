"""Data-parallel torch under torchrun (issue 15): ``python -m torch.distributed.run --standalone
--nproc_per_node=2`` on gloo runs tests/distributed_toy.py (ScoreModel.fit, checkpoint, EM and
DPM-Solver++ sampling, log_prob on a 2-D toy) and the two ranks end with identical parameters,
EMA, losses, samples and likelihoods, which agree with the same script in one process.

Tolerance for 1 vs 2 workers. Both see the same global minibatch (indices, t, ε), so they differ
only in the order of floating-point reductions: the 2-worker gradient is the mean of two half-batch
means (all-reduced) instead of one mean over the batch. Measured after 60 Adam steps in float32
(batch 64, MLP 2-64-64-2): parameters within 6e-8, losses within 3e-7, samples within 1e-5. The
tests allow 1e-5 absolute on parameters and losses and 1e-3 on samples and log p (rounding grows
through training and through the sampler's 10-50 network calls; a different minibatch or stream
would differ by O(1e-2) and more).
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed_toy.py"

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def run(out: pathlib.Path, workers: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, str(SCRIPT), str(out)]
    if workers > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={workers}",
                   *command[1:]]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    run(one, 1)
    run(two, 2)
    return one, two


@pytest.fixture(scope="module")
def runs(folders):
    one, two = folders
    return (np.load(one / "rank0.npz"),), (np.load(two / "rank0.npz"), np.load(two / "rank1.npz"))


def tensors(result, prefix=""):
    return {k: result[k] for k in result.files if k.startswith(prefix) and not k.endswith("_s")}


def test_the_two_ranks_end_identical(runs):
    _, (rank0, rank1) = runs
    assert int(rank0["world_size"]) == 2
    for key in tensors(rank0):
        assert np.array_equal(rank0[key], rank1[key]), key


@pytest.mark.parametrize("prefix", ["param:", "ema:", "losses"])
def test_one_and_two_workers_train_alike(runs, prefix):
    (single,), (rank0, _) = runs
    keys = list(tensors(single, prefix))
    assert keys
    for key in keys:
        np.testing.assert_allclose(rank0[key], single[key], rtol=0, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("key", ["em", "dpm", "logp"])
def test_one_and_two_workers_sample_and_score_alike(runs, key):
    (single,), (rank0, _) = runs
    assert rank0[key].shape == single[key].shape == ((64, 2) if key != "logp" else (64,))
    np.testing.assert_allclose(rank0[key], single[key], rtol=0, atol=1e-3)


def test_the_rank0_checkpoint_reloads_to_the_trained_parameters(runs):
    (single,), (rank0, rank1) = runs
    assert bool(single["reload_matches"]) and bool(rank0["reload_matches"]) and bool(rank1["reload_matches"])


def test_a_batch_size_not_divisible_by_the_world_size_is_a_clear_error():
    from sdelang_torch.distributed import local_rows

    assert local_rows(64, 1, 2) == slice(32, 64)
    with pytest.raises(ValueError, match="divisible by the world size 2"):
        local_rows(63, 0, 2)


def test_the_chunks_are_dealt_in_contiguous_blocks_independent_of_the_world_size():
    from sdelang.score.score_model import rank_chunks

    for count in range(0, 9):
        for size in (1, 2, 3, 4):
            blocks = [list(rank_chunks(count, r, size)) for r in range(size)]
            assert sum(blocks, []) == list(range(count))


def test_the_checkpoint_does_not_depend_on_the_world_size(folders):
    """The 2-worker checkpoint (written by rank 0) holds the one-process state: the same step and
    generator state (so a resumed run in any world size continues the same stream), and weights,
    EMA and Adam moments equal to rounding."""
    import torch

    one, two = (torch.load(folder / "checkpoint.pt", weights_only=False) for folder in folders)
    assert one["step"] == two["step"] == 60
    assert torch.equal(one["training"]["generator"], two["training"]["generator"])
    for key in ("net",):
        for name, value in one["training"][key].items():
            torch.testing.assert_close(two["training"][key][name], value, rtol=0, atol=1e-5)
    for name, value in one["training"]["ema"]["shadow"].items():
        torch.testing.assert_close(two["training"]["ema"]["shadow"][name], value, rtol=0, atol=1e-5)
    for index, state in one["training"]["optimizer"]["state"].items():
        other = two["training"]["optimizer"]["state"][index]
        assert int(other["step"]) == int(state["step"])
        torch.testing.assert_close(other["exp_avg"], state["exp_avg"], rtol=0, atol=1e-5)
        torch.testing.assert_close(other["exp_avg_sq"], state["exp_avg_sq"], rtol=1e-3, atol=1e-8)
