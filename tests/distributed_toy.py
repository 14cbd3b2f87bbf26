"""A small data-parallel run of the torch ScoreModel, for tests/test_distributed_torch.py and
benchmarks/bench_scaling.py: the same script in one process or under torchrun.

    python tests/distributed_toy.py OUT                               # one process
    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_toy.py OUT

Trains the default net on eight Gaussians (VP spec, 2-D) for --steps steps at the global
--batch-size, saves a checkpoint (rank 0), samples --samples points by EM and by DPM-Solver++ and
evaluates log_prob on --samples held-out points; each rank writes OUT/rank<r>.npz with its final
parameters, EMA parameters, losses, samples and log-likelihoods (and timings).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--sample-batch", type=int, default=16)
    parser.add_argument("--em-steps", type=int, default=50)
    parser.add_argument("--dpm-steps", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--no-likelihood", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from sdelang.toy_data import sample_toy
    from sdelang_torch.score_model import ScoreModel

    rank = int(os.environ.get("RANK", "0"))
    os.makedirs(args.out, exist_ok=True)
    data = sample_toy("eight_gaussians", 2000, seed=0).astype(np.float32)
    model = ScoreModel(os.path.join(ROOT, "examples", "vp.sde"), hidden=args.hidden, depth=2)
    checkpoint = os.path.join(args.out, "checkpoint.pt")
    started = time.perf_counter()
    model.fit(data, steps=args.steps, batch_size=args.batch_size, progress=False, checkpoint=checkpoint,
              checkpoint_every=max(1, args.steps // 2), resume=False)
    train_s = time.perf_counter() - started
    out = {"losses": np.asarray(model.losses), "train_s": train_s,
           "world_size": int(os.environ.get("WORLD_SIZE", "1"))}
    for prefix, net in (("param", model.net), ("ema", model.ema_net)):
        for name, value in net.state_dict().items():
            out[f"{prefix}:{name}"] = value.detach().cpu().numpy()
    started = time.perf_counter()
    out["em"] = model.sample(args.samples, "em", steps=args.em_steps, seed=3, batch_size=args.sample_batch,
                             progress=False).samples.cpu().numpy()
    out["em_s"] = time.perf_counter() - started
    started = time.perf_counter()
    out["dpm"] = model.sample(args.samples, "dpm-solver++", steps=args.dpm_steps, seed=4, batch_size=args.sample_batch,
                              progress=False).samples.cpu().numpy()
    out["dpm_s"] = time.perf_counter() - started
    if not args.no_likelihood:
        held_out = sample_toy("eight_gaussians", args.samples, seed=5).astype(np.float32)
        out["logp"] = model.log_prob(held_out, batch_size=args.sample_batch, solver="rk4", steps=20,
                                     progress=False).cpu().numpy()
    # A checkpoint written by rank 0 resumes in any world size: reload it here and compare.
    reloaded = ScoreModel(os.path.join(ROOT, "examples", "vp.sde"), hidden=args.hidden, depth=2).load(checkpoint)
    out["reload_matches"] = all(torch.equal(a, b) for a, b in zip(reloaded.net.state_dict().values(),
                                                                   model.net.state_dict().values()))
    np.savez(os.path.join(args.out, f"rank{rank}.npz"), **out)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
