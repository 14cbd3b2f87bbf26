"""A small U-Net score network for image-shaped states, called as net(x, t) like every sdelang net.

``UNet(shape=(C, H, W), key=...)`` takes x FLAT, of shape (*batch, C·H·W) (any leading batch
shape, none included), and t a scalar or of the batch shape, and returns (*batch, C·H·W). The
parameters live in equinox layers (Conv2d weights O×I×kh×kw, as torch's), but the computation runs
on the whole batch in channel-last layout (N, H, W, C), each convolution as shifted slices times
weight matrices (:func:`conv_nhwc`): XLA:CPU runs convolutions, and their gradients, inside a
loop body several times slower than outside it (jax issue #12868; 3.8× for one 3×3 layer here,
benchmarks/results/conv_in_scan.md), and every sampler and the trainer
run the net inside ``lax.scan``. ``ScoreModel``'s default network for image data (N, C, H, W);
a compiled module gets it only when asked (``score=UNet((1, 8, 8))``). With ``num_classes=K`` it takes
net(x, t, labels) (:mod:`sdelang.score.class_labels`). The torch backend's ``UNet`` is the same function with the same
parameters under the same names (tests/test_score_unet.py copies one into the other).

The architecture, the same in both backends, is in :mod:`sdelang.score.unet_settings`. The
parameters are float32 unless ``dtype`` says otherwise; x is cast to the parameters' dtype and the result back to x's. Initialisation (the same distribution in
both backends): Linear and conv weights and biases ~ U(-1/√fan_in, 1/√fan_in), GroupNorm scale 1
and shift 0, the head conv 0; the uniforms cut from one draw of ``key``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sdelang.score.class_labels import check_num_classes
from sdelang.score.time_features import FREQUENCIES, fourier_frequencies
from sdelang.score.unet_settings import check_unet_settings

from .nets import one_hot_labels


class ResBlock(eqx.Module):
    """GroupNorm → SiLU → conv3×3 → + Linear(SiLU(e)) → GroupNorm → SiLU → conv3×3, plus the skip
    (on channel-last images (N, H, W, channels))."""

    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    temb: eqx.nn.Linear
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d
    skip: Optional[eqx.nn.Conv2d]

    def __init__(self, cin: int, cout: int, embed_dim: int, groups: int, *, key, dtype):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = eqx.nn.GroupNorm(groups, cin, dtype=dtype)
        self.conv1 = eqx.nn.Conv2d(cin, cout, 3, padding=1, dtype=dtype, key=k1)
        self.temb = eqx.nn.Linear(embed_dim, cout, dtype=dtype, key=k2)
        self.norm2 = eqx.nn.GroupNorm(groups, cout, dtype=dtype)
        self.conv2 = eqx.nn.Conv2d(cout, cout, 3, padding=1, dtype=dtype, key=k3)
        self.skip = eqx.nn.Conv2d(cin, cout, 1, dtype=dtype, key=k4) if cin != cout else None

    def __call__(self, x, e):
        """x (N, H, W, cin) channel-last, e (N, embed_dim)."""
        h = conv_nhwc(self.conv1, jax.nn.silu(group_norm_nhwc(self.norm1, x)))
        h = h + linear_rows(self.temb, jax.nn.silu(e))[:, None, None, :]
        h = conv_nhwc(self.conv2, jax.nn.silu(group_norm_nhwc(self.norm2, h)))
        return h + (x if self.skip is None else conv_nhwc(self.skip, x))


def conv_nhwc(layer: eqx.nn.Conv2d, h):
    """``layer`` (weights O×I×kh×kw, bias O×1×1, its stride and zero padding) applied to channel-last
    h (N, H, W, I), as a sum over the kernel's kh·kw offsets of shifted (strided) slices of the
    padded input times the I×O slice of the weights:
        out[n, y, x, o] = b_o + Σ_{i,j,c} pad(h)[n, s y + i, s x + j, c] · w[o, c, i, j].
    Only slices, pads and matrix products, forward and backward: XLA:CPU runs convolutions inside a
    loop body (the samplers' and the trainer's ``lax.scan``) several times slower than outside it
    (jax issue #12868; benchmarks/bench_conv_in_scan.py), matrix products at full speed."""
    out_c, _, kh, kw = layer.weight.shape
    (top, bottom), (left, right) = (tuple(p) for p in layer.padding)
    sy, sx = layer.stride
    padded = jnp.pad(h, ((0, 0), (top, bottom), (left, right), (0, 0)))
    height = (padded.shape[1] - kh) // sy + 1
    width = (padded.shape[2] - kw) // sx + 1
    out = layer.bias.reshape(-1)
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i:i + sy * (height - 1) + 1:sy, j:j + sx * (width - 1) + 1:sx, :]
            out = out + window @ layer.weight[:, :, i, j].T
    return out


def group_norm_nhwc(layer: eqx.nn.GroupNorm, h):
    """GroupNorm (biased variance over each group's channels and all pixels, then scale and shift per
    channel, as torch's) of channel-last h (N, H, W, C)."""
    n, height, width, c = h.shape
    g = h.reshape(n, height, width, layer.groups, c // layer.groups)
    mean = jnp.mean(g, axis=(1, 2, 4), keepdims=True)
    var = jnp.mean((g - mean) ** 2, axis=(1, 2, 4), keepdims=True)
    g = (g - mean) * jax.lax.rsqrt(var + layer.eps)
    return g.reshape(n, height, width, c) * layer.weight + layer.bias


def linear_rows(layer: eqx.nn.Linear, e):
    """``layer`` on each row of e (N, in)."""
    return e @ layer.weight.T + layer.bias


def _upsample(h):
    """Nearest-neighbour ×2 of channel-last images (N, H, W, C)."""
    return jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)


def _layers(c_in, channels, mults, blocks, groups, embed_dim, frequencies, dtype, key, num_classes=None):
    """The UNet's layers by name, as equinox builds them (traced only: see :func:`_initialised`)."""
    out = {}
    widths = [channels * m for m in mults]
    keys = iter(jax.random.split(key, 5 + 2 * len(widths) * (blocks + 1) + 1))
    out["time1"] = eqx.nn.Linear(2 * frequencies, embed_dim, dtype=dtype, key=next(keys))
    out["time2"] = eqx.nn.Linear(embed_dim, embed_dim, dtype=dtype, key=next(keys))
    label_key = next(keys)
    if num_classes is not None:
        out["label_embed"] = eqx.nn.Linear(num_classes + 1, embed_dim, dtype=dtype, key=label_key)
    out["stem"] = eqx.nn.Conv2d(c_in, channels, 3, padding=1, dtype=dtype, key=next(keys))
    down, downsamples = [], []
    width = channels
    for level, c in enumerate(widths):
        level_blocks = []
        for _ in range(blocks):
            level_blocks.append(ResBlock(width, c, embed_dim, groups, key=next(keys), dtype=dtype))
            width = c
        down.append(tuple(level_blocks))
        if level < len(widths) - 1:
            downsamples.append(eqx.nn.Conv2d(c, c, 3, stride=2, padding=1, dtype=dtype, key=next(keys)))
    out["down"], out["downsamples"] = tuple(down), tuple(downsamples)
    out["mid"] = ResBlock(width, width, embed_dim, groups, key=next(keys), dtype=dtype)
    up, upsamples = [], []
    for level in reversed(range(len(widths))):
        c = widths[level]
        level_blocks = []
        for b in range(blocks):
            level_blocks.append(ResBlock(width + c if b == 0 else c, c, embed_dim, groups, key=next(keys),
                                         dtype=dtype))
            width = c
        up.append(tuple(level_blocks))
        if level > 0:
            upsamples.append(eqx.nn.Conv2d(c, c, 3, padding=1, dtype=dtype, key=next(keys)))
    out["up"], out["upsamples"] = tuple(up), tuple(upsamples)
    out["head_norm"] = eqx.nn.GroupNorm(groups, width, dtype=dtype)
    out["head"] = eqx.nn.Conv2d(width, c_in, 3, padding=1, dtype=dtype, key=next(keys))
    return out


def _is_layer(node) -> bool:
    return isinstance(node, (eqx.nn.Linear, eqx.nn.Conv2d, eqx.nn.GroupNorm))


def _initialised(abstract: dict, key, dtype) -> dict:
    """The layers of ``abstract`` (shapes only) with equinox's (and torch's) default initialisation:
    Linear and Conv2d weights and biases ~ U(-1/√fan_in, 1/√fan_in) (fan_in = in_features, or
    in_channels · kh · kw), GroupNorm scale 1 and shift 0, and the head conv 0. The uniforms are
    one draw from ``key`` cut into pieces: eager layer-by-layer initialisation compiles a random
    draw for every new weight shape (over ten seconds for a first net on a CPU)."""
    layers = [m for m in jax.tree_util.tree_leaves(abstract, is_leaf=_is_layer) if not isinstance(m, eqx.nn.GroupNorm)]
    total = sum(m.weight.size + m.bias.size for m in layers)
    pool = np.asarray(jax.random.uniform(key, (total,), dtype, -1.0, 1.0))
    offset = 0

    def take(shape, scale):
        nonlocal offset
        size = math.prod(shape)
        piece = pool[offset:offset + size].reshape(shape) * np.asarray(scale, pool.dtype)
        offset += size
        return jnp.asarray(piece)

    def initialise(m):
        if isinstance(m, eqx.nn.GroupNorm):
            return eqx.tree_at(lambda g: (g.weight, g.bias), m,
                               (jnp.ones(m.weight.shape, dtype), jnp.zeros(m.bias.shape, dtype)))
        if isinstance(m, eqx.nn.Linear):
            fan_in = m.in_features
        else:
            fan_in = (m.in_channels // m.groups) * math.prod(m.kernel_size)
        lim = 1.0 / math.sqrt(fan_in)
        return eqx.tree_at(lambda l: (l.weight, l.bias), m, (take(m.weight.shape, lim), take(m.bias.shape, lim)))

    out = jax.tree_util.tree_map(initialise, abstract, is_leaf=_is_layer)
    head = out["head"]
    out["head"] = eqx.tree_at(lambda m: (m.weight, m.bias), head,
                              (jnp.zeros_like(head.weight), jnp.zeros_like(head.bias)))
    return out


class UNet(eqx.Module):
    """s_θ(x, t) on flat image states of shape (*batch, C·H·W) (see the module docstring)."""

    time1: eqx.nn.Linear
    time2: eqx.nn.Linear
    label_embed: Optional[eqx.nn.Linear]
    stem: eqx.nn.Conv2d
    down: Tuple[Tuple[ResBlock, ...], ...]
    downsamples: Tuple[eqx.nn.Conv2d, ...]
    mid: ResBlock
    up: Tuple[Tuple[ResBlock, ...], ...]
    upsamples: Tuple[eqx.nn.Conv2d, ...]
    head_norm: eqx.nn.GroupNorm
    head: eqx.nn.Conv2d
    shape: Tuple[int, int, int] = eqx.field(static=True)
    frequencies: Tuple[float, ...] = eqx.field(static=True)
    num_classes: Optional[int] = eqx.field(static=True)

    def __init__(self, shape: Sequence[int], channels: int = 32, channel_mults: Sequence[int] = (1, 2),
                 blocks: int = 1, groups: int = 8, embed_dim: Optional[int] = None,
                 frequencies: int = FREQUENCIES, *, key, dtype=None, num_classes: Optional[int] = None):
        self.shape = check_unet_settings(shape, channels, channel_mults, blocks, groups)
        self.num_classes = check_num_classes(num_classes)
        self.frequencies = tuple(fourier_frequencies(frequencies))
        dtype = jnp.dtype(dtype or jnp.float32)
        abstract = eqx.filter_eval_shape(_layers, self.shape[0], int(channels), tuple(int(m) for m in channel_mults),
                                         int(blocks), int(groups), int(embed_dim or 4 * channels), int(frequencies),
                                         dtype, key, self.num_classes)
        layers = _initialised(abstract, key, dtype)
        self.label_embed = None
        for name, layer in layers.items():
            setattr(self, name, layer)

    @property
    def dim(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    def embed(self, t):
        """e(t) of shape (N, embed_dim) for t of shape (N,)."""
        angles = t[:, None] * jnp.asarray(self.frequencies, t.dtype)
        phi = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
        return linear_rows(self.time2, jax.nn.silu(linear_rows(self.time1, phi)))

    def _images(self, x, t, labels):
        """The net on channel-last images x (N, H, W, C) at times t (N,) (labels: one-hots or None)."""
        e = self.embed(t)
        if labels is not None:
            e = e + linear_rows(self.label_embed, labels)
        h = conv_nhwc(self.stem, x)
        skips = []
        for level, level_blocks in enumerate(self.down):
            for block in level_blocks:
                h = block(h, e)
            skips.append(h)
            if level < len(self.downsamples):
                h = conv_nhwc(self.downsamples[level], h)
        h = self.mid(h, e)
        for i, level_blocks in enumerate(self.up):
            h = jnp.concatenate([h, skips.pop()], axis=-1)
            for block in level_blocks:
                h = block(h, e)
            if i < len(self.upsamples):
                h = conv_nhwc(self.upsamples[i], _upsample(h))
        return conv_nhwc(self.head, jax.nn.silu(group_norm_nhwc(self.head_norm, h)))

    def __call__(self, x, t, labels=None):
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"UNet for shape {self.shape} takes x of shape (*batch, {self.dim}), got {x.shape}")
        batch = x.shape[:-1]
        dtype = self.stem.weight.dtype
        t = jnp.broadcast_to(jnp.asarray(t, dtype), batch).reshape(-1)
        images = jnp.transpose(x.astype(dtype).reshape(-1, *self.shape), (0, 2, 3, 1))
        onehot = None
        if self.num_classes is not None:
            onehot = one_hot_labels(labels, batch, self.num_classes, dtype).reshape(-1, self.num_classes + 1)
        elif labels is not None:
            raise ValueError("this UNet has no classes (num_classes=None): call it without labels")
        out = jnp.transpose(self._images(images, t, onehot), (0, 3, 1, 2))
        return out.reshape(*batch, self.dim).astype(x.dtype)
