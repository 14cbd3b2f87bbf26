"""Why the JAX U-Net computes its convolutions as shifted matmuls (backends/sdelang_jax/unet.py).

XLA:CPU runs convolutions inside a loop body (``lax.scan``, where every sampler and the trainer run
the net) much slower than outside it (jax issue #12868). This times 20 applications of a 3×3,
32 -> 32 channel convolution on 300 images of 8×8, in a ``lax.scan`` and in a Python loop of a
jitted step, for ``lax.conv`` in channel-first layout (what a vmapped ``eqx.nn.Conv2d`` does) and
for the U-Net's :func:`conv_nhwc`; then 5 training steps of the default U-Net (batch 128) both ways.
Writes benchmarks/results/conv_in_scan.md.
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(fn, *args):
    import jax

    jax.block_until_ready(fn(*args))           # compile
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main() -> str:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import sdelang_jax as sj
    from sdelang_jax.unet import conv_nhwc

    layer = eqx.nn.Conv2d(32, 32, 3, padding=1, key=jax.random.PRNGKey(0))
    nchw = jnp.asarray(np.random.default_rng(0).normal(size=(300, 32, 8, 8)), jnp.float32)
    convs = {"lax.conv, channel-first (vmapped eqx.nn.Conv2d)": (jax.vmap(layer), nchw),
             "conv_nhwc (shifted matmuls, channel-last)": (lambda h: conv_nhwc(layer, h),
                                                           jnp.transpose(nchw, (0, 2, 3, 1)))}
    rows = []
    for name, (conv, x) in convs.items():
        scan = jax.jit(lambda h, conv=conv: jax.lax.scan(lambda c, _: (jnp.tanh(conv(c)), None), h, None, length=20)[0])
        one = jax.jit(lambda h, conv=conv: jnp.tanh(conv(h)))

        def loop(h, one=one):
            for _ in range(20):
                h = one(h)
            return h

        rows.append((f"20 convolutions, {name}", timed(scan, x), timed(loop, x)))
    net = sj.UNet((1, 8, 8), key=jax.random.PRNGKey(0))
    params, static = eqx.partition(net, eqx.is_inexact_array)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(128, 64)), jnp.float32)

    def step(p):
        grads = jax.grad(lambda q: jnp.mean((eqx.combine(q, static)(x, 0.5) - x) ** 2))(p)
        return jax.tree_util.tree_map(lambda a, g: a - 1e-3 * g, p, grads)

    scan = jax.jit(lambda p: jax.lax.scan(lambda c, _: (step(c), None), p, None, length=5)[0])
    one = jax.jit(step)

    def loop(p):
        for _ in range(5):
            p = one(p)
        return p

    rows.append(("5 training steps of the default U-Net (conv_nhwc)", timed(scan, params), timed(loop, params)))
    lines = ["# Convolutions inside lax.scan on XLA:CPU (benchmarks/bench_conv_in_scan.py)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"jax {jax.__version__}.", "",
             "| work | in lax.scan (s) | Python loop of jitted steps (s) | scan / loop |", "|---|---|---|---|"]
    lines += [f"| {name} | {a:.3f} | {b:.3f} | {a / b:.1f}× |" for name, a, b in rows]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(HERE, "results", "conv_in_scan.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    return text


if __name__ == "__main__":
    print(main())
