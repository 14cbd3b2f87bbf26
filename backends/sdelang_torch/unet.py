"""A small U-Net score network for image-shaped states, called as net(x, t) like every sdelang net.

``UNet(shape=(C, H, W))`` takes x FLAT, of shape (*batch, C·H·W) (any leading batch shape, none
included), and t a scalar or of the batch shape, and returns (*batch, C·H·W); the reshape to
(C, H, W) images happens inside. ``ScoreModel``'s default network for image data (N, C, H, W);
a compiled module gets it only when asked (``score=UNet((1, 8, 8))``). With ``num_classes=K`` it takes
net(x, t, labels) (:mod:`sdelang.score.class_labels`). The JAX backend's ``UNet`` (an equinox Module) is the same function
with the same parameters under the same names (tests/test_score_unet.py copies one into the other).

The architecture, the same in both backends, is in :mod:`sdelang.score.unet_settings`. The
parameters are float32 unless ``dtype`` says otherwise; x is cast to the parameters' dtype and the result back to x's. Initialisation (the same distribution in
both backends): Linear and conv weights and biases ~ U(-1/√fan_in, 1/√fan_in), GroupNorm scale 1
and shift 0, the head conv 0; ``seed`` (else torch's global generator) drawing them.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .nets import one_hot_labels

from sdelang.score.class_labels import check_num_classes
from sdelang.score.time_features import FREQUENCIES, fourier_frequencies
from sdelang.score.unet_settings import check_unet_settings


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv3×3 → + Linear(SiLU(e)) → GroupNorm → SiLU → conv3×3, plus the skip."""

    def __init__(self, cin: int, cout: int, embed_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(embed_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(e))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class UNet(nn.Module):
    """s_θ(x, t) on flat image states of shape (*batch, C·H·W) (see the module docstring)."""

    def __init__(self, shape: Sequence[int], channels: int = 32, channel_mults: Sequence[int] = (1, 2),
                 blocks: int = 1, groups: int = 8, embed_dim: Optional[int] = None,
                 frequencies: int = FREQUENCIES, *, seed: Optional[int] = None, dtype=None,
                 num_classes: Optional[int] = None):
        super().__init__()
        self.shape = check_unet_settings(shape, channels, channel_mults, blocks, groups)
        self.num_classes = check_num_classes(num_classes)
        self.dim = self.shape[0] * self.shape[1] * self.shape[2]
        mults = tuple(int(m) for m in channel_mults)
        embed_dim = int(embed_dim or 4 * channels)
        if seed is None:
            self._build(mults, channels, blocks, groups, embed_dim, frequencies)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self._build(mults, channels, blocks, groups, embed_dim, frequencies)
        self.to(dtype or torch.float32)

    def _build(self, mults, channels, blocks, groups, embed_dim, frequencies):
        c_in = self.shape[0]
        widths = [channels * m for m in mults]
        self.frequencies = tuple(fourier_frequencies(frequencies))
        self.time1 = nn.Linear(2 * frequencies, embed_dim)
        self.time2 = nn.Linear(embed_dim, embed_dim)
        self.label_embed = None if self.num_classes is None else nn.Linear(self.num_classes + 1, embed_dim)
        self.stem = nn.Conv2d(c_in, channels, 3, padding=1)
        down, downsamples = [], []
        width = channels
        for level, c in enumerate(widths):
            level_blocks = []
            for _ in range(blocks):
                level_blocks.append(ResBlock(width, c, embed_dim, groups))
                width = c
            down.append(nn.ModuleList(level_blocks))
            if level < len(widths) - 1:
                downsamples.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.down = nn.ModuleList(down)
        self.downsamples = nn.ModuleList(downsamples)
        self.mid = ResBlock(width, width, embed_dim, groups)
        up, upsamples = [], []
        for level in reversed(range(len(widths))):
            c = widths[level]
            level_blocks = []
            for b in range(blocks):
                level_blocks.append(ResBlock(width + c if b == 0 else c, c, embed_dim, groups))
                width = c
            up.append(nn.ModuleList(level_blocks))
            if level > 0:
                upsamples.append(nn.Conv2d(c, c, 3, padding=1))
        self.up = nn.ModuleList(up)
        self.upsamples = nn.ModuleList(upsamples)
        self.head_norm = nn.GroupNorm(groups, width)
        self.head = nn.Conv2d(width, c_in, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def embed(self, t: torch.Tensor) -> torch.Tensor:
        """e(t) of shape (batch, embed_dim) for t of shape (batch,)."""
        # ω_k = π k in t's dtype and on its device (the values of self.frequencies, with no float32
        # buffer rounding them in float64)
        freqs = torch.arange(1, len(self.frequencies) + 1, dtype=t.dtype, device=t.device) * math.pi
        angles = t[:, None] * freqs
        phi = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        return self.time2(F.silu(self.time1(phi)))

    def forward(self, x: torch.Tensor, t, labels=None) -> torch.Tensor:
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"UNet for shape {self.shape} takes x of shape (*batch, {self.dim}), got {tuple(x.shape)}")
        batch = x.shape[:-1]
        dtype = self.stem.weight.dtype
        t = torch.as_tensor(t, dtype=dtype, device=x.device).expand(batch).reshape(-1)
        h = x.to(dtype).reshape(-1, *self.shape)
        e = self.embed(t)
        if self.label_embed is not None:
            e = e + self.label_embed(one_hot_labels(labels, e.shape[0], self.num_classes, e))
        elif labels is not None:
            raise ValueError("this UNet has no classes (num_classes=None): call it without labels")
        h = self.stem(h)
        skips = []
        for level, level_blocks in enumerate(self.down):
            for block in level_blocks:
                h = block(h, e)
            skips.append(h)
            if level < len(self.downsamples):
                h = self.downsamples[level](h)
        h = self.mid(h, e)
        for i, level_blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in level_blocks:
                h = block(h, e)
            if i < len(self.upsamples):
                h = self.upsamples[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.head(F.silu(self.head_norm(h)))
        return h.reshape(*batch, self.dim).to(x.dtype)
