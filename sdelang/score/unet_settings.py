"""The U-Net that both backends build as ``UNet`` (``sdelang_torch.unet``, ``sdelang_jax.unet``),
and the checks of its settings.

With c_l = channels · channel_mults[l] (level l = 0..L-1, L = len(channel_mults)), K = frequencies
and E = embed_dim (default 4 · channels):

- time embedding: φ(t) = [sin(ω_k t), cos(ω_k t)]_{k=1..K}, ω_k = π k
  (:func:`sdelang.score.time_features.fourier_frequencies`, the features of ``ScoreMLP``);
  e = time2(SiLU(time1(φ(t)))) with Linear layers 2K -> E -> E; with ``num_classes=K'`` classes,
  plus label_embed(e_y), a Linear K'+1 -> E of the one-hot label (:mod:`sdelang.score.class_labels`);
- ResBlock(a -> b): h = conv1(SiLU(norm1(x))) + temb(SiLU(e))[:, None, None];
  out = conv2(SiLU(norm2(h))) + skip(x), with GroupNorm(groups) norms, 3×3 convs (padding 1),
  temb a Linear E -> b, and skip a 1×1 conv when a ≠ b (the identity otherwise);
- stem: a 3×3 conv C -> channels;
- down path, level l: ``blocks`` ResBlocks (to c_l), their output kept as the level's skip, then
  (l < L-1) a strided 3×3 conv (stride 2, padding 1, c_l -> c_l) halving H and W;
- middle: one ResBlock c_{L-1} -> c_{L-1} at the coarsest resolution;
- up path, level l = L-1..0: the level's skip concatenated on channels, ``blocks`` ResBlocks
  (the first from c_prev + c_l, then c_l -> c_l), then (l > 0) nearest ×2 upsampling and a 3×3
  conv c_l -> c_l;
- head: conv3×3(SiLU(GroupNorm(c_0))) to C channels; its conv starts at zero, so a fresh net
  returns 0 everywhere (training moves it).

H and W must be divisible by 2^(L-1) (else ValueError), and channels by groups (every GroupNorm
then sees a multiple of groups).
"""
from __future__ import annotations

from typing import Tuple


def check_unet_settings(shape, channels: int, channel_mults, blocks: int, groups: int) -> Tuple[int, int, int]:
    """(C, H, W) of ``shape`` after the checks of the module docstring (ValueError otherwise)."""
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"UNet: shape must be (C, H, W), got {shape!r}") from None
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"UNet: shape must be (C, H, W) of positive sizes, got {shape!r}")
    mults = tuple(channel_mults)
    if not mults or any(int(m) < 1 for m in mults):
        raise ValueError(f"UNet: channel_mults must be a non-empty sequence of positive ints, got {channel_mults!r}")
    if blocks < 1:
        raise ValueError(f"UNet: blocks must be at least 1, got {blocks}")
    if channels < 1 or groups < 1 or channels % groups:
        raise ValueError(f"UNet: channels ({channels}) must be a positive multiple of groups ({groups})")
    factor = 2 ** (len(mults) - 1)
    _, h, w = dims
    if h % factor or w % factor:
        raise ValueError(f"UNet: H and W ({h}, {w}) must be divisible by 2^(levels-1) = {factor} "
                         f"for {len(mults)} levels (channel_mults={mults})")
    return dims
