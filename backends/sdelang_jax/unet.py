"""A small U-Net score network for image-shaped states, called as net(x, t) like every sdelang net.

``UNet(shape=(C, H, W), key=...)`` takes x FLAT, of shape (*batch, C·H·W) (any leading batch
shape, none included), and t a scalar or of the batch shape, and returns (*batch, C·H·W); each
sample is reshaped to a (C, H, W) image inside and the equinox layers (channel-first, unbatched)
are vmapped over the batch. ``ScoreModel``'s default network for image data (N, C, H, W);
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
    (on one unbatched (channels, H, W) image)."""

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
        h = self.conv1(jax.nn.silu(self.norm1(x)))
        h = h + self.temb(jax.nn.silu(e))[:, None, None]
        h = self.conv2(jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


def _upsample(h):
    """Nearest-neighbour ×2 of a (channels, H, W) image."""
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
        """e(t) of shape (embed_dim,) for a scalar t."""
        angles = jnp.asarray(self.frequencies, t.dtype) * t
        phi = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)])
        return self.time2(jax.nn.silu(self.time1(phi)))

    def _image(self, x, t, label):
        """The net on one (C, H, W) image x at a scalar t (and label: its one-hot, or None)."""
        e = self.embed(t)
        if label is not None:
            e = e + self.label_embed(label)
        h = self.stem(x)
        skips = []
        for level, level_blocks in enumerate(self.down):
            for block in level_blocks:
                h = block(h, e)
            skips.append(h)
            if level < len(self.downsamples):
                h = self.downsamples[level](h)
        h = self.mid(h, e)
        for i, level_blocks in enumerate(self.up):
            h = jnp.concatenate([h, skips.pop()], axis=0)
            for block in level_blocks:
                h = block(h, e)
            if i < len(self.upsamples):
                h = self.upsamples[i](_upsample(h))
        return self.head(jax.nn.silu(self.head_norm(h)))

    def __call__(self, x, t, labels=None):
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"UNet for shape {self.shape} takes x of shape (*batch, {self.dim}), got {x.shape}")
        batch = x.shape[:-1]
        dtype = self.stem.weight.dtype
        t = jnp.broadcast_to(jnp.asarray(t, dtype), batch).reshape(-1)
        images = x.astype(dtype).reshape(-1, *self.shape)
        if self.num_classes is not None:
            onehot = one_hot_labels(labels, batch, self.num_classes, dtype).reshape(-1, self.num_classes + 1)
            out = jax.vmap(self._image)(images, t, onehot)
        elif labels is not None:
            raise ValueError("this UNet has no classes (num_classes=None): call it without labels")
        else:
            out = jax.vmap(lambda image, time: self._image(image, time, None))(images, t)
        return out.reshape(*batch, self.dim).astype(x.dtype)
