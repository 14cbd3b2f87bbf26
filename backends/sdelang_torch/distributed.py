"""Data parallelism for the torch backend with ``torch.distributed`` (what ``torchrun`` launches).

Nothing here is active in a single process: with ``WORLD_SIZE`` unset or 1 and no process group,
:func:`world` is (0, 1) and the trainer, samplers and likelihoods run exactly as before.

Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1) the process group is initialised on
first use from the environment (``init_method="env://"``): NCCL when CUDA is available (each rank
on ``cuda:LOCAL_RANK``), gloo otherwise. The choices that make results independent of the number
of processes:

* Training (:class:`SlicedStream`, ``TorchTrainingState``): every rank holds all the data and the
  same seeded generator. Each step every rank draws the SAME global minibatch — indices of the
  global ``batch_size`` rows, t and ε of the global shape — exactly as a single process draws
  them, and keeps its own contiguous slice of rows ``[r·b, (r+1)·b)`` with b = batch_size / N (a
  DistributedSampler-style split of each global minibatch, with the sampler's shared seed). The
  network is wrapped in ``DistributedDataParallel``, whose all-reduce averages the N slice-mean
  gradients into the global-batch mean gradient; clipping, Adam/AdamW, the schedule and the EMA
  then act on identical gradients, so parameters, optimiser state, EMA and generator state stay
  identical on every rank and equal the one-process run's up to the order of floating-point
  reductions. The cost: each rank draws N times the random numbers it uses.
* Sampling and likelihoods (``ScoreModel.sample``, ``log_prob``, ``bits_per_dim``): the n rows are
  cut into chunks as a single process with that ``batch_size`` cuts them, chunk k seeded by
  ``chunk_seed(seed, k)`` (a function of the seed and the GLOBAL chunk index), the chunks dealt
  to ranks in contiguous blocks, and the rows all-gathered in order onto every rank. With an
  explicit ``batch_size`` the result is the single-process result with that ``batch_size``,
  whatever N; with ``batch_size=None`` the chunk size is ceil(n / N) (each rank draws one chunk),
  which equals the single-process run with ``batch_size=ceil(n / N)``.
"""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import torch
import torch.distributed as dist


def requested_world_size() -> int:
    """WORLD_SIZE from the environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def local_device():
    """cuda:LOCAL_RANK when launched with WORLD_SIZE > 1 and CUDA is available, else None (CPU)."""
    if requested_world_size() > 1 and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world(device=None) -> Tuple[int, int]:
    """(rank, world size): (0, 1) in a single process; under torchrun the process group is
    initialised here on first use (NCCL for a CUDA ``device`` or when CUDA is available, else gloo)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if requested_world_size() <= 1 or not dist.is_available():
        return 0, 1
    cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo", init_method="env://")
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    return world()[0] == 0


def barrier() -> None:
    if is_active():
        dist.barrier()


def local_rows(total: int, rank: int, size: int) -> slice:
    """The contiguous slice of rows of ``total`` that rank ``rank`` of ``size`` takes (equal parts)."""
    if total % size:
        raise ValueError(f"batch_size={total} must be divisible by the world size {size} "
                         f"(each of the {size} ranks takes batch_size / {size} rows of every global minibatch)")
    part = total // size
    return slice(rank * part, (rank + 1) * part)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` over all ranks (one all-reduce); ``values`` itself in one process."""
    if not is_active():
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def gather_rows(local: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
    """The rows of every rank concatenated in rank order, on every rank: rank r holds ``counts[r]``
    rows (padded to the largest count for ``all_gather``, trimmed after)."""
    if not is_active():
        return local
    largest = max(counts)
    padded = local
    if local.shape[0] < largest:
        pad = torch.zeros((largest - local.shape[0], *local.shape[1:]), dtype=local.dtype, device=local.device)
        padded = torch.cat([local, pad])
    padded = padded.contiguous()
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def max_over_ranks(value: int) -> int:
    if not is_active():
        return int(value)
    out: List[int] = [0] * dist.get_world_size()
    dist.all_gather_object(out, int(value))
    return max(out)


class SlicedStream:
    """A random stream that draws every batch-leading array at the GLOBAL batch size and returns
    this rank's contiguous slice of rows, so all ranks advance one shared generator exactly as a
    single process would (``TorchStream``'s methods; draws whose leading axis is not the local
    batch, and ``spawn_seed``, are the same on every rank)."""

    def __init__(self, stream, rank: int, size: int, local_batch: int):
        self.stream, self.rank, self.size, self.local = stream, rank, size, int(local_batch)
        self.device = stream.device

    def _global(self, shape):
        shape = tuple(shape)
        if shape and shape[0] == self.local:
            return (self.local * self.size, *shape[1:]), slice(self.rank * self.local, (self.rank + 1) * self.local)
        return shape, slice(None)

    def normal(self, shape, dtype, scale=1.0):
        shape, rows = self._global(shape)
        z = self.stream.normal(shape, dtype)[rows]
        return z if isinstance(scale, (int, float)) and scale == 1 else z * scale

    def uniform(self, shape, low, high, dtype):
        shape, rows = self._global(shape)
        return self.stream.uniform(shape, low, high, dtype)[rows]

    def rademacher(self, shape, dtype):
        shape, rows = self._global(shape)
        return self.stream.rademacher(shape, dtype)[rows]

    def randint(self, low: int, high: int, shape):
        shape, rows = self._global(shape)
        return self.stream.randint(low, high, shape)[rows]

    def spawn_seed(self) -> int:
        return self.stream.spawn_seed()

    def at(self, i) -> "SlicedStream":
        return self

    def get_state(self):
        return self.stream.get_state()

    def set_state(self, state) -> None:
        self.stream.set_state(state)


class DistributedScore:
    """Calls go through the ``DistributedDataParallel`` wrapper (so its gradient hooks all-reduce);
    attributes such as a preconditioned net's ``loss_weight`` come from the wrapped network."""

    def __init__(self, ddp, net):
        self.ddp, self.net = ddp, net

    def __call__(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.__dict__["net"], name)


def data_parallel(net: torch.nn.Module, device) -> "DistributedScore":
    """``net`` wrapped in ``DistributedDataParallel`` (parameters broadcast from rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device(device)
    ddp = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return DistributedScore(ddp, net)
