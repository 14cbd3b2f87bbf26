"""A notebook-sized facade: a score-based generative model driven by any sdelang spec, on either
backend (written once; ``sdelang_torch.ScoreModel`` and ``sdelang_jax.ScoreModel`` fix the backend).

    model = ScoreModel("examples/vp.sde", backend="torch", d=64).fit(images, steps=2000)  # (N, 1, 8, 8)
    result = model.sample(2000, method="pc", steps=500, batch_size=500)   # .samples (2000, 1, 8, 8), .nfe
    nll = -model.log_prob(x).mean();  bpd = model.bits_per_dim(x, dequantize=True).mean()

Data of any shape (N, *shape) is flattened to (N, d) for the spec's state (d = prod(shape) must be
the compiled state dimension) and samples come back as (n, *shape). Likelihoods are in nats
(log p_{t0 + t_min} through the probability-flow ODE, the spec's prior at t1); bits per dimension
= -log p(x) / (d ln 2), and for discrete data (``dequantize=True``) the discrete model's bits per
dimension as in Song et al. 2021: uniform dequantisation plus the bin-width offset (see
:meth:`ScoreModel.bits_per_dim`). Every method refuses an option it does not know with a
TypeError naming it and the accepted ones.
"""
from __future__ import annotations

import difflib
import inspect
import math
import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np

from .defaults import DEQUANTIZE_SALT, ODE_ATOL, ODE_RTOL, T_MIN
from .likelihood import log_prob
from .losses import LOSSES, has_diagonal_kernel
from .class_labels import check_num_classes, checked_labels
from .precondition import check_parametrization
from .result import SampleResult
from .samplers import default_steps, sample, sampler_options
from .trainer import ScoreTrainer

#: Keywords of the losses that the trainer sets itself (the rest are ``fit``'s loss options).
TRAINER_SET = ("t_min", "weighting", "seed", "stream", "score")
#: Sampler keywords that ``ScoreModel.sample`` sets itself.
SAMPLE_SET = ("score", "n", "seed")


def keywords(fn, exclude: Iterable[str] = ()) -> List[str]:
    """The names ``fn`` takes by keyword (no *args / **kwargs), less ``exclude``."""
    return [name for name, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in ("self", *exclude)]


def reject_unknown(where: str, given: Iterable[str], accepted: Iterable[str], note: str = "") -> None:
    """TypeError in Python's own words (``where() got an unexpected keyword argument 'x'``) for the
    names in ``given`` that are not ``accepted``, listing the accepted ones (and a close match)."""
    accepted = sorted(set(accepted))
    unknown = sorted(set(given) - set(accepted))
    if not unknown:
        return
    if len(unknown) == 1:
        message = f"{where}() got an unexpected keyword argument {unknown[0]!r}"
    else:
        message = f"{where}() got unexpected keyword arguments {', '.join(map(repr, unknown))}"
    close = [m for name in unknown for m in difflib.get_close_matches(name, accepted, n=1)]
    if close:
        message += f" (did you mean {', '.join(map(repr, close))}?)"
    raise TypeError(f"{message}; accepted: {', '.join(accepted)}" + (f" ({note})" if note else ""))


def chunk_bounds(total: int, batch_size: Optional[int]) -> List[Tuple[int, int]]:
    """[(start, stop), ...]: ``total`` rows in chunks of at most ``batch_size`` (one chunk for None)."""
    if batch_size is None or total == 0:
        return [(0, total)]
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    size = int(batch_size)
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def chunk_seed(ops, seed, k: int):
    """The seed of chunk k of a batched call: ``seed`` itself for the first chunk (so one chunk is
    the unbatched call), then a deterministic function of (seed, k): ``SeedSequence([seed, k])``
    for an integer seed, the seed's stream folded with k for a JAX key."""
    if k == 0:
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(np.random.SeedSequence([int(seed) % 2 ** 63, k]).generate_state(1)[0])
    return ops.stream(seed, salt=k).spawn_seed()


def rank_chunks(count: int, rank: int, size: int) -> range:
    """The chunk indices rank ``rank`` of ``size`` computes: a contiguous block of the ``count``
    chunks (all of them in one process), so the ranks' rows gathered in rank order are in order."""
    return range(count * rank // size, count * (rank + 1) // size)


def data_parallel_chunks(ops, total: int, batch_size: Optional[int]):
    """(bounds of all chunks, this rank's chunk indices, rows per rank) of a batched call. In one
    process: ``chunk_bounds(total, batch_size)``, every chunk. Data-parallel (``ops.world()`` size
    N > 1): the same chunks as one process with that ``batch_size`` (ceil(total / N) when None),
    seeded by their global index, dealt to the ranks in contiguous blocks; the result does not
    depend on N."""
    rank, size = ops.world()
    if size > 1 and batch_size is None:
        batch_size = max(1, math.ceil(total / size))
    bounds = chunk_bounds(total, batch_size)
    if size == 1:
        return bounds, list(range(len(bounds))), [total]
    counts = [sum(bounds[k][1] - bounds[k][0] for k in rank_chunks(len(bounds), r, size)) for r in range(size)]
    return bounds, list(rank_chunks(len(bounds), rank, size)), counts


def progress_over(items: list, progress: bool, desc: str):
    """``items`` with a tqdm bar when ``progress`` and there is more than one."""
    if progress and len(items) > 1:
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, leave=False)
    return items


def compiled_module(spec, params: dict, backend: Optional[str]):
    """A compiled module from a .sde path, an sdelang Model, or an already compiled module."""
    if hasattr(spec, "ops") and hasattr(spec, "drift_fn"):
        if params:
            raise TypeError("parameter overrides need a spec or a Model, not a compiled module")
        if backend is not None and spec.ops.name != backend:
            raise TypeError(f"a {spec.ops.name} module cannot drive a {backend} ScoreModel")
        return spec
    if backend is None:
        raise TypeError("pass backend='torch' or backend='jax' (or use sdelang_torch/sdelang_jax.ScoreModel)")
    if isinstance(spec, (str, os.PathLike, Path)):
        import sdelang

        return sdelang.load(os.fspath(spec), **params).compile(backend)
    if hasattr(spec, "compile"):
        return spec.compile(backend, **params)
    raise TypeError(f"expected a .sde path, a sdelang Model or a compiled module, got {type(spec).__name__}")


def image_shape_of(shape: Tuple[int, ...]) -> Optional[Tuple[int, int, int]]:
    """``shape`` when it is an image (C, H, W) with even H and W (the default U-Net's two levels),
    else None."""
    if len(shape) == 3 and shape[1] % 2 == 0 and shape[2] % 2 == 0 and min(shape) >= 1:
        return tuple(shape)
    return None


class ScoreModel:
    """A score network for ``spec``'s SDE: ``fit`` (score matching), ``sample`` (EM / PC / ODE /
    few-step), ``log_prob`` (nats) and ``bits_per_dim``.

    ``net=None`` builds the backend's default, chosen by the data's shape at the first ``fit``: a
    ``UNet(shape)`` (GroupNorm ResBlocks, sinusoidal time embedding, skip connections;
    :mod:`sdelang.score.unet_settings`) for images (N, C, H, W) with even H and W, else
    ``ScoreMLP(dim, hidden, depth)``, seeded by ``seed``. ``precondition="auto"`` wraps the default
    in the backend's ``KernelPreconditionedScore`` (EDM's c_skip, c_out, c_in, c_noise derived from
    the kernel, :mod:`sdelang.score.precondition`) when the perturbation kernel is diagonal (True
    forces, False never), with ``parametrization`` "eps" (EDM's VP column: c_skip = 1, c_out = -σ̃),
    "v" (EDM's own c_skip, c_out with σ_data), "x0" or "score", and the DSM weighting that follows
    ("preconditioned": the net's own squared error) unless ``weighting=`` says otherwise. "eps" is
    the default because t is drawn uniformly: with EDM's weighting and no log-normal σ sampling,
    "v" spends most of each batch on high-noise levels whose error cannot be reduced (measured on
    eight Gaussians, 1500 steps: energy distance 0.031 for "eps", 0.062 for "v";
    benchmarks/bench_parametrization.py).

    A user net(x, t) (net(x, t, labels) with ``num_classes``) replaces the default and is used as
    it is unless precondition=True; it is tried once on x of shape (2, dim) so that a net of
    another dimension fails here, with a message, and not deep inside a sampler. ``device`` (torch): where the
    network, the data, the samples and the likelihoods live (under torchrun on GPUs, None means
    cuda:LOCAL_RANK). ``**params`` override the spec's parameters (``d=64`` for 64 numbers per
    sample of an elementwise spec).

    Data parallelism. torch: under ``torchrun`` (WORLD_SIZE > 1) ``fit`` trains in
    DistributedDataParallel, each rank on its slice of the same global minibatch, rank 0 writing
    checkpoints; ``sample`` / ``log_prob`` / ``bits_per_dim`` deal their chunks to the ranks and
    return all rows on every rank (:mod:`sdelang_torch.distributed` says why the result does not
    depend on the number of processes). JAX: ``mesh=`` (a ``jax.sharding.Mesh`` with a "batch"
    axis) or ``devices=`` (a count, a list, or "all") splits every batch over the devices —
    training minibatches, samples, log_prob's points — with the parameters replicated; outputs
    stay sharded over the mesh (:mod:`sdelang_jax.sharding`).

    ``shape``: the shape of one data sample, remembered by ``fit`` (None before): data, ``x`` and
    ``x_init`` of shape (N, *shape) are flattened to (N, d), samples come back as (n, *shape)."""

    backend: Optional[str] = None

    def __init__(self, spec, net=None, *, backend: Optional[str] = None, loss: str = "dsm",
                 weighting: Optional[str] = None, t_min: float = T_MIN, precondition: Union[str, bool] = "auto",
                 parametrization: str = "eps", hidden: int = 128, depth: int = 3, seed: int = 0, dtype=None,
                 device=None, num_classes: Optional[int] = None, mesh=None, devices=None, **params):
        self.num_classes = check_num_classes(num_classes)
        if precondition not in ("auto", True, False):
            raise ValueError(f"precondition must be 'auto', True or False, got {precondition!r}")
        check_parametrization(parametrization)
        self._from_module = hasattr(spec, "ops") and hasattr(spec, "drift_fn")
        self.module = compiled_module(spec, params, backend or self.backend).with_score(None)
        self.ops = self.module.ops
        self.dim = self.module.dimension
        self.dtype = self.ops.default_dtype if dtype is None else dtype
        self.device = self.ops.distributed_device() if device is None else device
        self.mesh = self.ops.batch_mesh(mesh, devices)
        self.shape: Optional[Tuple[int, ...]] = None
        self.loss, self.t_min = loss, float(t_min)
        self.trainer: Optional[ScoreTrainer] = None
        self._default_net = net is None
        self._net_settings = dict(hidden=hidden, depth=depth, seed=seed, precondition=precondition,
                                  parametrization=parametrization)
        if net is None and self.dim is None:
            raise ValueError("the state dimension is unknown: pass d=... or your own net")
        self.initial_net = self._prepared(net, image_shape=None)
        self.weighting = weighting
        if weighting is None and loss == "dsm" and self.ops.is_preconditioned(self.initial_net):
            self.weighting = "preconditioned"
        if not self._default_net and self.dim is not None:
            self._check_net(self.initial_net)

    def _prepared(self, net, image_shape):
        """The network to train: the default for ``image_shape`` when ``net`` is None, preconditioned
        as the settings say, in the model's dtype and on its device."""
        settings = self._net_settings
        precondition = settings["precondition"]
        if net is None:
            net = self.ops.default_score_net(self.dim, hidden=settings["hidden"], depth=settings["depth"],
                                             seed=settings["seed"], dtype=self.dtype, image_shape=image_shape,
                                             num_classes=self.num_classes)
            precondition = has_diagonal_kernel(self.module) if precondition == "auto" else precondition
        elif precondition == "auto":
            precondition = False
        if precondition:
            if not has_diagonal_kernel(self.module):
                raise ValueError("preconditioning needs a diagonal perturbation kernel")
            net = self.ops.preconditioned(net, self.module, settings["parametrization"])
        return self.ops.cast_net(net, self.dtype, device=self.device)

    def _use_shape(self, shape: Tuple[int, ...]) -> None:
        """Before the first training step: the default net becomes a U-Net for image data (C, H, W)."""
        image = image_shape_of(shape)
        if self._default_net and self.trainer is None and image is not None:
            self.initial_net = self._prepared(None, image_shape=image)

    # ---------------------------------------------------------------- shapes
    def _dimension_hint(self, d: int) -> str:
        if not self.module.elementwise:
            return ""
        if self._from_module:
            return f": compile the model with d={d} (model.compile(backend, d={d}))"
        return f": pass d={d} (ScoreModel(spec, d={d}))"

    def _flatten(self, x, what: str):
        """(x as (N, d), the per-sample shape), checking d against the spec's state dimension."""
        if not (hasattr(x, "shape") and hasattr(x, "reshape")):
            x = np.asarray(x)
        if len(x.shape) == 0:
            raise ValueError(f"{what} must have a leading batch axis, got a scalar")
        shape = tuple(int(k) for k in x.shape[1:])
        d = math.prod(shape)
        if self.dim is not None and d != self.dim:
            raise ValueError(f"{what} has {d} numbers per sample (shape {shape}) but the spec's state has "
                             f"dimension {self.dim}{self._dimension_hint(d)}")
        return (x if len(x.shape) == 2 else x.reshape(x.shape[0], d)), shape

    def _unflatten(self, samples):
        return samples if self.shape is None else samples.reshape((samples.shape[0], *self.shape))

    def _check_net(self, net) -> None:
        """Call ``net`` once on zeros of shape (2, dim) (t of shape (2,), then a scalar t) and check
        that it returns shape (2, dim): a net of another dimension is reported here."""
        d = self.dim
        device = self.device if self.device is not None else self.ops.net_device(net)
        x = self.ops.asarray(np.zeros((2, d)), dtype=self.dtype, device=device)
        t_mid = 0.5 * (float(self.module.t0) + float(self.module.t1))
        times = (self.ops.asarray(np.full(2, t_mid), dtype=self.dtype, device=device), t_mid)
        training = getattr(net, "training", None)
        first_error = None
        out = None
        try:
            self.ops.eval_net(net)
            with self.ops.no_grad():
                for t in times:
                    try:
                        out = net(x, t)
                        break
                    except Exception as error:   # noqa: BLE001 — reported below with the first failure
                        first_error = first_error or error
        finally:
            if training and hasattr(net, "train"):
                net.train(True)
        if out is None:
            raise ValueError(f"the score net fails on x of shape (2, {d}) (the spec's state has dimension {d}): "
                             f"{type(first_error).__name__}: {first_error}") from first_error
        got = tuple(getattr(out, "shape", ()))
        if got != (2, d):
            raise ValueError(f"the score net maps x of shape (2, {d}) to shape {got}: it must return the score, "
                             f"shaped like x (the spec's state has dimension {d})")

    # ---------------------------------------------------------------- training
    def fit(self, data, steps: int = 2000, *, batch_size: int = 256, lr: float = 2e-3, ema_decay: float = 0.999,
            seed: int = 0, checkpoint=None, checkpoint_every: int = 500, progress: bool = True,
            resume: bool = True, grad_clip: Optional[float] = 1.0, labels=None, optimizer: str = "adam",
            weight_decay: float = 0.0, lr_schedule: str = "constant", warmup_steps: int = 0,
            schedule_steps: Optional[int] = None, min_lr_ratio: float = 0.0, precision: str = "float32",
            label_dropout: float = 0.1, validation=None, validation_labels=None,
            validate_every: Optional[int] = None, **loss_options) -> "ScoreModel":
        """Train until ``steps`` total steps (resuming from ``checkpoint`` when it exists) on ``data`` of
        shape (N, *shape) (flattened to (N, d); ``shape`` is remembered for ``sample`` and saved in
        checkpoints). The optimiser settings (``optimizer``, ``weight_decay``, ``lr_schedule``,
        ``warmup_steps``, ``schedule_steps``, ``min_lr_ratio``, ``precision``, ``grad_clip``,
        ``ema_decay``) are :func:`sdelang.score.trainer.training_config`'s and fixed by the first call.
        ``labels`` (N,) in [0, num_classes) for a conditional model (required then), each replaced
        by the null label with probability ``label_dropout`` in training. ``validation`` (and
        ``validation_labels``): held-out data whose loss is recorded every ``validate_every`` steps
        in ``validation_losses``. ``loss_options``: the loss's own keywords (ssm: ``projection``,
        ``sim_steps``, ``use_kernel``); anything else is a TypeError."""
        loss = self.loss if self.trainer is None else self.trainer.config["loss"]
        own = keywords(ScoreModel.fit, exclude=("data",))
        extra = keywords(LOSSES[loss], exclude=("module", "x0", *TRAINER_SET)) if loss in LOSSES else []
        reject_unknown("ScoreModel.fit", loss_options, own + extra,
                       f"the loss {loss!r} adds {', '.join(extra)}" if extra else f"the loss {loss!r} has no options")
        data, shape = self._flatten(data, "data")
        data = self._with_labels(data, labels, "labels")
        if validation is not None:
            validation, _ = self._flatten(validation, "validation")
            validation = self._with_labels(validation, validation_labels, "validation_labels")
        self._use_shape(shape)
        if self.trainer is None:
            net = self.initial_net
            if self.ops.is_preconditioned(net):
                x = data[0] if isinstance(data, tuple) else data
                net = self.ops.with_data_std(net, float(np.std(self.ops.to_numpy(x))))
            self.trainer = ScoreTrainer(self.module, net, loss=self.loss, weighting=self.weighting, t_min=self.t_min,
                                        lr=lr, batch_size=batch_size, ema_decay=ema_decay, grad_clip=grad_clip,
                                        seed=seed, loss_options=loss_options, optimizer=optimizer,
                                        weight_decay=weight_decay, lr_schedule=lr_schedule, warmup_steps=warmup_steps,
                                        schedule_steps=schedule_steps, min_lr_ratio=min_lr_ratio, precision=precision,
                                        num_classes=self.num_classes, label_dropout=label_dropout)
        self.trainer.metadata = {"shape": list(shape), "num_classes": self.num_classes}
        if self.mesh is not None:
            self.ops.shard_training(self.trainer.state, self.mesh)
        self.trainer.fit(data, steps, progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                         resume=resume, validation=validation, validate_every=validate_every)
        self.shape = shape
        return self

    def _with_labels(self, x, labels, what: str):
        """x, or the pair (x, labels) of a conditional model, with the labels checked."""
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{what} given to a model without classes: pass num_classes=K to ScoreModel")
            return x
        if labels is None:
            raise ValueError(f"a model with num_classes={self.num_classes} is trained on labelled data: pass {what}=")
        return x, checked_labels(labels, int(x.shape[0]), self.num_classes, what)

    @property
    def validation_losses(self):
        """(step, validation loss) pairs recorded by ``fit(validation=...)``."""
        return [] if self.trainer is None else self.trainer.validation_losses

    @property
    def net(self):
        """The network being trained (the initial one before ``fit``)."""
        return self.initial_net if self.trainer is None else self.trainer.net

    @property
    def losses(self):
        return [] if self.trainer is None else self.trainer.losses

    @property
    def ema_net(self):
        """The EMA of the network's weights (the network itself before any training)."""
        return self.net if self.trainer is None else self.trainer.ema_net()

    def score_net(self, use_ema: bool = True):
        """The network used for sampling and likelihoods, in evaluation mode."""
        return self.ops.eval_net(self.ema_net if use_ema else self.net)

    def save(self, path) -> None:
        if self.trainer is None:
            raise RuntimeError("nothing to save before fit()")
        self.trainer.save(path)

    def load(self, path) -> "ScoreModel":
        """Restore a checkpoint written by ``save`` / ``fit(checkpoint=...)`` (net, EMA, optimiser,
        step, random stream, the data's shape) into a trainer built from the checkpoint's config
        (the default network rebuilt for that shape: a U-Net checkpoint restores a U-Net)."""
        metadata = self.ops.load(path).get("metadata", {})
        shape = metadata.get("shape")
        if metadata.get("num_classes", self.num_classes) != self.num_classes:
            raise ValueError(f"the checkpoint is of a model with num_classes={metadata['num_classes']}, "
                             f"this one has num_classes={self.num_classes}")
        if shape is not None:
            self.trainer = None
            self._use_shape(tuple(int(k) for k in shape))
        self.trainer = ScoreTrainer.from_checkpoint(self.module, self.initial_net, path)
        if self.mesh is not None:
            self.ops.shard_training(self.trainer.state, self.mesh)
        if shape is not None:
            self.shape = tuple(int(k) for k in shape)
        return self

    # ---------------------------------------------------------------- sampling and likelihood
    def sample(self, n: int, method: str = "em", steps: Optional[int] = None, *, seed=0, use_ema: bool = True,
               batch_size: Optional[int] = None, progress: bool = True, labels=None, guidance: float = 0.0,
               **options) -> SampleResult:
        """n samples at t0 + t_min by ``method`` (:func:`sdelang.score.samplers.sample`: "em", "pc",
        "ode", "ddim", "dpm-solver", "dpm-solver++", "deis", "heun", "ancestral"), shape (n, *shape)
        once fitted ((n, d) before). ``steps`` defaults to the method's own (500 for em/pc, 20 for
        the few-step samplers); "ode" integrates with ``solver=`` (an adaptive one by default, which
        ignores ``steps``; a fixed-step one such as "rk4" or "euler" takes ``steps`` or ``dt``).
        ``options``: the sampler's own (em: denoise; pc: snr, corrector_steps, corrector_alpha; ode:
        solver, rtol, atol, dt, options, denoise; few-step: order, grid, rho, denoise, s_churn, s_tmin,
        s_tmax, s_noise; all: t_min, x_init, dtype, device); anything else is a TypeError.

        ``batch_size``: draw in chunks of at most that many (``x_init`` split the same way), chunk k
        seeded by a deterministic function of (seed, k) (chunk 0 by ``seed`` itself), so a batched
        call is reproducible; the samples are concatenated in order and ``nfe`` is one chunk's (the
        largest, for an adaptive ODE solver, whose chunks may step differently). A tqdm bar shows
        the chunks when there is more than one (``progress=False``: none)."""
        labels = self._sampling_labels(labels, guidance, n if options.get("x_init") is None else None, options)
        accepted = [name for name in sampler_options(method) if name not in SAMPLE_SET]
        reject_unknown("ScoreModel.sample", options, accepted + ["steps", "seed", "use_ema", "batch_size", "progress",
                                                                 "labels", "guidance"], f"for method {method!r}")
        if method != "ode":
            options["steps"] = default_steps(method) if steps is None else steps
        elif steps is not None:
            options["steps"] = steps        # used by a fixed-step solver, ignored by an adaptive one
        options.setdefault("t_min", self.t_min)
        options.setdefault("dtype", self.dtype)
        options.setdefault("device", self.device)
        x_init = options.pop("x_init", None)
        if x_init is not None:
            x_init, _ = self._flatten(x_init, "x_init")
        total = int(n) if x_init is None else int(x_init.shape[0])
        net = self.score_net(use_ema)
        if labels is not None and labels.shape[0] != total:
            raise ValueError(f"labels must have shape ({total},) (one per sample), got {labels.shape}")
        results = []
        bounds, mine, counts = data_parallel_chunks(self.ops, total, batch_size)
        for k in progress_over(mine, progress, f"{method} sampling ({self.ops.name})"):
            start, stop = bounds[k]
            part = None if x_init is None else x_init[start:stop]
            if self.mesh is not None:
                if part is None:
                    part = self.ops.prior_sample(self.module, stop - start, chunk_seed(self.ops, seed, k),
                                                 options["dtype"], options["device"])
                part = self.ops.shard_rows(self.ops.asarray(part, dtype=options["dtype"]), self.mesh)
            score = net
            if labels is not None:
                score = self.ops.guided(net, labels[start:stop], self.num_classes, guidance)
            results.append(sample(self.module, stop - start, method, seed=chunk_seed(self.ops, seed, k), score=score,
                                  x_init=part, **options))
        if len(counts) == 1:
            samples = results[0].samples if len(results) == 1 else self.ops.concatenate([r.samples for r in results])
            return SampleResult(self._unflatten(samples), max(r.nfe for r in results), results[0].method)
        samples = self.ops.gather_rows(self._local_rows(results and [r.samples for r in results], options), counts)
        nfe = self.ops.max_over_ranks(max((r.nfe for r in results), default=0))
        return SampleResult(self._unflatten(samples), nfe, results[0].method if results else method)

    def _local_rows(self, parts, options: dict):
        """This rank's rows of a data-parallel call (an empty (0, d) array when it drew no chunk)."""
        if parts:
            return parts[0] if len(parts) == 1 else self.ops.concatenate(parts)
        device = options.get("device", self.device)
        if device is None:
            device = self.ops.net_device(self.net)
        return self.ops.asarray(np.zeros((0, self.dim)), dtype=options.get("dtype", self.dtype), device=device)

    def _sampling_labels(self, labels, guidance: float, n: Optional[int], options: dict):
        """The labels of a conditional ``sample`` call as int64 (None: unconditional), checked."""
        if not (isinstance(guidance, (int, float)) and math.isfinite(guidance) and guidance >= 0):
            raise ValueError(f"guidance must be a finite number ≥ 0, got {guidance!r}")
        if self.num_classes is None:
            if labels is not None or guidance:
                raise ValueError("labels= and guidance= need a class-conditional model: ScoreModel(spec, num_classes=K)")
            return None
        if labels is None:
            if guidance:
                raise ValueError("guidance > 0 needs labels= (the classes to guide towards)")
            return None
        count = n if n is not None else int(np.shape(options["x_init"])[0])
        return checked_labels(labels, count, self.num_classes)

    def log_prob(self, x, *, exact: Optional[bool] = None, rtol: float = ODE_RTOL, atol: float = ODE_ATOL,
                 use_ema: bool = True, t_min: Optional[float] = None, seed=0, solver: Optional[str] = None,
                 steps: Optional[int] = None, dt: Optional[float] = None, prior=None, method: Optional[str] = None,
                 options: Optional[dict] = None, batch_size: Optional[int] = None, progress: bool = True,
                 **unknown):
        """log p(x) in nats, shape (N,), for x of shape (N, *shape) (flattened to (N, d)), through the
        probability-flow ODE from t0 + t_min (:func:`sdelang.score.likelihood.log_prob`). The
        divergence is exact for ``exact=True``, Hutchinson's estimate with a fixed Rademacher vector
        (from ``seed``) for ``exact=False``, and for ``exact=None`` (the default) exact up to
        ``sdelang.score.defaults.EXACT_TRACE_MAX_DIM`` (16) dimensions and Hutchinson above.
        ``solver`` as in ``sample(..., "ode")`` (``method`` is its older alias; ``steps`` / ``dt``
        for a fixed-step one), ``prior`` a log-density at t1 replacing the spec's. ``batch_size``:
        in chunks of at most that many rows (chunk k's Hutchinson vector from a seed derived from
        (seed, k)), with a tqdm bar over more than one chunk unless ``progress=False``."""
        reject_unknown("ScoreModel.log_prob", unknown, keywords(ScoreModel.log_prob, exclude=("x",)))
        x, _ = self._flatten(x, "x")
        x = self.ops.asarray(x, dtype=self.dtype, device=self.device)
        module = self.module.with_score(self.score_net(use_ema))
        t_min = self.t_min if t_min is None else t_min
        settings = dict(exact=exact, rtol=rtol, atol=atol, t_min=t_min, solver=solver, steps=steps, dt=dt,
                        prior=prior, method=method, options=options)
        parts = []
        bounds, mine, counts = data_parallel_chunks(self.ops, int(x.shape[0]), batch_size)
        with self.ops.no_grad():
            for k in progress_over(mine, progress, f"log_prob ({self.ops.name})"):
                start, stop = bounds[k]
                rows = x if len(bounds) == 1 else x[start:stop]
                if self.mesh is not None:
                    rows = self.ops.shard_rows(rows, self.mesh)
                parts.append(log_prob(module, rows, seed=chunk_seed(self.ops, seed, k), **settings))
        if len(counts) == 1:
            return parts[0] if len(parts) == 1 else self.ops.concatenate(parts)
        local = (parts[0] if len(parts) == 1 else self.ops.concatenate(parts)) if parts else x[:0, 0]
        return self.ops.gather_rows(local, counts)

    def bits_per_dim(self, x, dequantize: bool = False, bits: int = 8, batch_size: Optional[int] = None, *,
                     seed=0, **options):
        """Bits per dimension, shape (N,), for x of shape (N, *shape) with d = prod(shape) numbers per
        sample: -log p(x) / (d ln 2) (``options``: those of :meth:`log_prob`).

        ``dequantize=True``: x holds ``bits``-bit data scaled to [-1, 1] as x = 2 k / (2^bits - 1) - 1
        for integers k in [0, 2^bits - 1] (the usual k / 255 then 2x - 1; a ValueError otherwise).
        Each value is dequantised uniformly over its bin of width 2 / 2^bits, x̃ = 2 (k + u) / 2^bits - 1
        with u ~ U(0, 1) drawn from ``seed`` (Song et al. 2021's (k + u) / 256 recentred), and the
        result is the discrete model's bits per dimension through the change of variables from
        integers to [-1, 1]: -log p(x̃) / (d ln 2) + (bits - 1), the "8-bit offset" log2(2^bits / 2)
        = 7 for 8 bits. Its mean over u bounds -log2 P(k) / d from above (Jensen), with
        P(k) = ∫_bin p, the probability the model gives the bin."""
        own = keywords(ScoreModel.bits_per_dim, exclude=("x",))
        reject_unknown("ScoreModel.bits_per_dim", options, own + keywords(ScoreModel.log_prob, exclude=("x",)))
        x, _ = self._flatten(x, "x")
        x = self.ops.asarray(x, dtype=self.dtype, device=self.device)
        d = int(x.shape[-1])
        offset = 0.0
        if dequantize:
            x = self.dequantized(x, bits, seed)
            offset = float(bits) - 1.0
        log_p = self.log_prob(x, batch_size=batch_size, seed=seed, **options)
        return -log_p / (d * math.log(2)) + offset

    def dequantized(self, x, bits: int = 8, seed=0):
        """x (``bits``-bit data scaled to [-1, 1], see :meth:`bits_per_dim`) moved uniformly within
        its quantisation bin: 2 (k + u) / 2^bits - 1, u ~ U(0, 1) from ``seed``'s stream."""
        if isinstance(bits, bool) or int(bits) != bits or bits < 1:
            raise ValueError(f"bits must be a positive integer, got {bits!r}")
        bits = int(bits)
        x = self.ops.asarray(x, dtype=self.dtype, device=self.device)
        levels = 2 ** bits - 1
        scaled = (np.asarray(self.ops.to_numpy(x), dtype=np.float64) + 1.0) * (levels / 2)
        k = np.rint(scaled)
        off = float(np.max(np.abs(scaled - k))) if scaled.size else 0.0
        if off > 1e-2 or (scaled.size and (k.min() < 0 or k.max() > levels)):
            low, high = float(np.min(scaled)) / (levels / 2) - 1, float(np.max(scaled)) / (levels / 2) - 1
            raise ValueError(f"dequantize=True needs {bits}-bit data scaled to [-1, 1] as x = 2 k / {levels} - 1 "
                             f"(k an integer in [0, {levels}]); x is off that grid by up to {off:.3g} of a level "
                             f"and spans [{low:.4g}, {high:.4g}]")
        k = self.ops.asarray(k, like=x)
        u = self.ops.stream(seed, salt=DEQUANTIZE_SALT, device=self.ops.device_of(x)).uniform(
            tuple(x.shape), 0.0, 1.0, self.ops.dtype_of(x))
        return (k + u) * (2.0 / 2 ** bits) - 1.0
