"""The torch random stream of the score layer (:class:`sdelang.score.protocol.RandomStream`)."""
from __future__ import annotations

import torch

SEED_MODULUS = 2 ** 62


class TorchStream:
    """A seeded ``torch.Generator`` on the arrays' device; draws in order."""

    def __init__(self, generator: torch.Generator, device):
        self.generator = generator
        self.device = torch.device(device)

    def normal(self, shape, dtype, scale=1.0):
        z = torch.randn(tuple(shape), generator=self.generator, dtype=dtype, device=self.device)
        return z if isinstance(scale, (int, float)) and scale == 1 else z.mul_(scale)

    def uniform(self, shape, low, high, dtype):
        u = torch.rand(tuple(shape), generator=self.generator, dtype=dtype, device=self.device)
        return low + (high - low) * u

    def rademacher(self, shape, dtype):
        bits = torch.randint(0, 2, tuple(shape), generator=self.generator, device=self.device)
        return bits.to(dtype) * 2 - 1

    def randint(self, low: int, high: int, shape):
        return torch.randint(int(low), int(high), tuple(shape), generator=self.generator, device=self.device)

    def spawn_seed(self) -> int:
        """An integer seed drawn from this stream (for a nested seeded computation)."""
        return int(torch.randint(0, SEED_MODULUS, (1,), generator=self.generator, device=self.device).item())

    def at(self, i) -> "TorchStream":
        return self

    def get_state(self):
        return self.generator.get_state()

    def set_state(self, state) -> None:
        self.generator.set_state(state)


def seeded_stream(seed, salt: int = 0, device=None) -> TorchStream:
    """A generator seeded with ``seed``, or with (seed + 1) · 1000003 + salt when ``salt`` is not 0."""
    device = torch.device("cpu" if device is None else device)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) if not salt else ((int(seed) + 1) * 1_000_003 + int(salt)) % SEED_MODULUS)
    return TorchStream(generator, device)
