"""The checks of a U-Net's settings, shared by both backends' ``UNet``: (C, H, W) of positive sizes,
positive channel multipliers and blocks, channels a multiple of the GroupNorm groups, and H, W
divisible by 2^(levels - 1) so that every downsampling halves them exactly."""
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
