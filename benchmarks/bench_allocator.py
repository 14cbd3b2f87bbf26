"""What glibc malloc's settings cost torch's CPU samplers (sdelang_torch.allocator).

    python benchmarks/bench_allocator.py [--pairs 4] [--n 10000] [--steps 50] [--threads 1]

Each run is a fresh process (the settings hold for a whole process): SDELANG_TORCH_MALLOC=auto
(sdelang's default: freed buffers kept for reuse) and =off (glibc's defaults) alternate, ``--pairs``
of each. A process times, after one warm-up, sdelang's predictor–corrector sampler and the
hand-written score_sde-style loop of bench_score_torch.py (same ScoreMLP 2-128-128-128-2, VP,
float32, ``--steps`` steps × (1 + 1 corrector), ``--n`` samples), both under the process's setting,
and torch's profiler's SiLU time per call. Reported: medians over the processes of each setting,
and the ratio auto / off.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def one_process(n: int, steps: int, threads: int) -> dict:
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile

    import bench_score_torch as b
    import sdelang
    from sdelang_torch import ScoreMLP, sample_pc

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = ScoreMLP(2, hidden=128, depth=3).eval()
    module = sdelang.load(b.SPEC).compile("torch", score=net)
    x1 = module.prior_sample(n, seed=0)
    out = {}
    with torch.no_grad():
        for name, run in (("ours", lambda: sample_pc(module, n, steps, x_init=x1)),
                          ("hand", lambda: b.hand_pc(net, x1, steps, 0))):
            run()
            start = time.perf_counter()
            run()
            out[name] = time.perf_counter() - start
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            sample_pc(module, n, steps, x_init=x1)
        silu = [e for e in prof.key_averages() if e.key == "aten::silu"][0]
        out["silu_ms"] = silu.self_cpu_time_total / silu.count / 1e3
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "allocator.md"))
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_process(args.n, args.steps, args.threads)))
        return
    runs = {"auto": [], "off": []}
    for k in range(args.pairs):
        for setting in (("auto", "off") if k % 2 == 0 else ("off", "auto")):
            env = {**os.environ, "SDELANG_TORCH_MALLOC": setting, "SDELANG_TORCH_THREADS": str(args.threads)}
            done = subprocess.run([sys.executable, __file__, "--child", "--n", str(args.n), "--steps",
                                   str(args.steps), "--threads", str(args.threads)], env=env, cwd=HERE,
                                  capture_output=True, text=True, check=True)
            runs[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    med = {s: {key: statistics.median(r[key] for r in rs) for key in ("ours", "hand", "silu_ms")}
           for s, rs in runs.items()}
    from harness import publish

    lines = ["# glibc malloc settings and torch's CPU samplers", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"1-min load average at the end {os.getloadavg()[0]:.1f}.",
             f"PC sampler, VP, ScoreMLP 2-128-128-128-2, n = {args.n}, {args.steps} steps × (1 + 1), float32, "
             f"{args.threads} thread(s); medians over {args.pairs} fresh processes per setting, run alternately.", "",
             "| SDELANG_TORCH_MALLOC | sdelang PC (s) | hand-written PC (s) | SiLU per call (ms) |",
             "|---|---|---|---|"]
    for s in ("auto", "off"):
        lines.append(f"| {s} | {med[s]['ours']:.3f} | {med[s]['hand']:.3f} | {med[s]['silu_ms']:.2f} |")
    ratio = {key: med["auto"][key] / med["off"][key] for key in ("ours", "hand", "silu_ms")}
    lines += ["", f"auto / off: sdelang {ratio['ours']:.2f}×, hand-written {ratio['hand']:.2f}×, "
              f"SiLU {ratio['silu_ms']:.2f}×."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
