"""Which parametrisation the EDM preconditioner trains best with uniform t (the default's evidence).

The facade's default network (ScoreMLP 2-64-64-2) on eight Gaussians, VP SDE, torch, 1 500 Adam
steps of batch 128 at lr 3e-3, for parametrization "eps" and "v" (each with the weighting that
follows, "preconditioned", and "v" also with the σ² weighting). Reported: the held-out DSM loss
(σ² weighting, 4 000 points) and the energy distance of 1 000 EM samples (100 steps) to 1 000
fresh data points (the real-vs-real value of that statistic is ~0.001). Writes
benchmarks/results/parametrization.md.

    python benchmarks/bench_parametrization.py [--steps 1500]
"""
from __future__ import annotations

import argparse
import os
import platform

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = (("eps", None), ("v", None), ("v", "sigma2"))


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args(argv)
    import torch

    import sdelang_torch as st
    from sdelang.check.two_sample import energy_distance_test
    from sdelang.toy_data import sample_toy

    torch.set_num_threads(1)
    spec = os.path.join(HERE, "..", "examples", "vp.sde")
    data = sample_toy("eight_gaussians", 5000, seed=0)
    held = torch.as_tensor(sample_toy("eight_gaussians", 4000, seed=9), dtype=torch.float32)
    fresh = sample_toy("eight_gaussians", 1000, seed=3)
    rows = []
    for parametrization, weighting in CASES:
        model = st.ScoreModel(spec, hidden=64, depth=2, seed=0, parametrization=parametrization, weighting=weighting)
        model.fit(data, steps=args.steps, batch_size=128, lr=3e-3, progress=False)
        with torch.no_grad():
            loss = float(st.dsm_loss(model.module, held, seed=0, score=model.net))
        samples = model.sample(1000, "em", steps=100, seed=1, progress=False).samples.numpy()
        energy = energy_distance_test(samples, fresh, 0, np.random.default_rng(0))[0]
        rows.append(f"| {parametrization} | {model.weighting} | {loss:.4f} | {energy:.4f} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# EDM parametrisation with uniform t (benchmarks/bench_parametrization.py)", "",
        f"Eight Gaussians, VP, torch ScoreMLP 2-64-64-2, {args.steps} steps of batch 128, lr 3e-3, seed 0. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, one thread.", "",
        "| parametrization | weighting | held-out DSM loss (σ²) | energy distance, EM samples vs data |",
        "|---|---|---|---|", *rows, ""])
    with open(os.path.join(HERE, "results", "parametrization.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    return text


if __name__ == "__main__":
    print(main())
