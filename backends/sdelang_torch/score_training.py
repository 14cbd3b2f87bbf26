"""Training a score network for any compiled SDE module: losses, EMA of weights, a trainer with
checkpoints.

Denoising score matching (Vincent 2011; Song et al. 2021) with the perturbation kernel
x_t | x_0 ~ N(m_t, Σ_t) that ``model.marginal()`` derives for an affine SDE. With t ~ U(t0 + t_min, t1)
and ε ~ N(0, I):
    diagonal kernel  x_t = m_t + σ_t ⊙ ε,  target ∇ log p(x_t | x_0) = -ε / σ_t;
    full kernel      x_t = m_t + L ε (Σ_t = L Lᵀ),  target -Σ_t⁻¹(x_t - m_t) = -L⁻ᵀ ε.
Per sample, with r = s_θ(x_t, t) - target, the loss is rᵀ Λ r for
    "sigma2"      Λ = Σ_t:      ||σ ⊙ s + ε||² (diagonal), ||Lᵀ s + ε||² (full)
    "likelihood"  Λ = D = G Gᵀ: Song et al. 2021's likelihood weighting g(t)²
    "none"        Λ = I.
Its minimiser is the marginal score ∇ log p_t (DSM = Λ-weighted explicit score matching + a constant).

Sliced score matching (Song et al. 2019) needs no kernel: for x_t ~ p_t and projections v with
E[v vᵀ] = I,  E[vᵀ ∇_x(vᵀ (w² ⊙ s)) + ½ (vᵀ (w ⊙ s))²] = ½ E[(s - ∇log p_t)ᵀ W² (s - ∇log p_t)] + const
(integration by parts: E_p[sᵀ W² ∇log p] = -E_p[∇·(W² s)]), W = diag(w).
"""
from __future__ import annotations

import copy
import os
from typing import Callable, Dict, List, Optional, Union

import torch
from torch import nn

DSM_WEIGHTINGS = ("sigma2", "likelihood", "none")
SSM_WEIGHTINGS = ("none", "likelihood", "sigma2")


# ---------------------------------------------------------------------------------------- helpers
def score_of(module, score: Optional[Callable]) -> Callable:
    """The score callable: ``score`` if given, else the module's attached ``score`` net."""
    return score if score is not None else module.nets_by_name["score"]


def draw_times(module, batch: int, t_min: float, generator, dtype, device) -> torch.Tensor:
    """t ~ U(t0 + t_min, t1), shape (batch,)."""
    u = torch.rand(batch, generator=generator, dtype=dtype, device=device)
    return (module.t0 + t_min) + (module.t1 - module.t0 - t_min) * u


def kernel_float64(module, x0: torch.Tensor, t: torch.Tensor):
    """The perturbation kernel evaluated in float64 (a CLD covariance such as
    e^{-16t}(e^{16t} - 1 - 16t - 128t²) cancels catastrophically in float32), cast back."""
    mean, spread = module.perturbation_kernel(x0.to(torch.float64), t.to(torch.float64))
    return mean.to(x0.dtype), spread


def has_diagonal_kernel(module) -> bool:
    return getattr(module, "kernel_kind", None) == "diagonal"


def has_kernel(module) -> bool:
    return getattr(module, "_kernel", None) is not None


def diagonal_diffusion(module, t, x: torch.Tensor) -> torch.Tensor:
    """The diagonal of G(t, x), (batch, n), for diagonal (or elementwise) noise."""
    if not (module.elementwise or getattr(module, "noise_type", None) == "diagonal"):
        raise NotImplementedError("this weighting needs diagonal noise (G diagonal)")
    return module.g(t, x)


def diffusion_quadratic(module, t, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """rᵀ D r = ||Gᵀ r||² per row, D = G Gᵀ at (t, x)."""
    if module.elementwise or getattr(module, "noise_type", None) == "diagonal":
        return ((module.g(t, x) * r) ** 2).sum(-1)
    G = module.g(t, x)  # (batch, n, m) for scalar / additive / general noise
    return (torch.einsum("bnm,bn->bm", G, r) ** 2).sum(-1)


# ---------------------------------------------------------------------------------------- DSM
def dsm_loss(module, x0: torch.Tensor, *, t_min: float = 1e-3, weighting: str = "sigma2",
             generator: Optional[torch.Generator] = None, score: Optional[Callable] = None) -> torch.Tensor:
    """Denoising score-matching loss (module docstring), mean over the batch; t is drawn before ε."""
    if weighting not in DSM_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {DSM_WEIGHTINGS}, got {weighting!r}")
    if not has_kernel(module):
        raise NotImplementedError("dsm_loss needs a Gaussian perturbation kernel (an affine SDE, "
                                  "model.marginal()); use ssm_loss for this model")
    score = score_of(module, score)
    t = draw_times(module, x0.shape[0], t_min, generator, x0.dtype, x0.device)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    mean, spread = kernel_float64(module, x0, t)
    if has_diagonal_kernel(module):
        std = spread.to(x0.dtype)
        xt = mean + std * eps
        s = score(xt, t)
        if weighting == "sigma2":
            per_sample = ((std * s + eps) ** 2).sum(-1)
        else:
            r = s + eps / std
            per_sample = diffusion_quadratic(module, t, xt, r) if weighting == "likelihood" else (r ** 2).sum(-1)
    else:
        chol = torch.linalg.cholesky(spread)  # float64
        L = chol.to(x0.dtype)
        xt = mean + torch.einsum("bij,bj->bi", L, eps)
        s = score(xt, t)
        if weighting == "sigma2":
            per_sample = (torch.einsum("bji,bj->bi", L, s) + eps) ** 2
            per_sample = per_sample.sum(-1)
        else:
            target = -torch.linalg.solve_triangular(chol.transpose(-1, -2), eps.to(torch.float64).unsqueeze(-1),
                                                    upper=True).squeeze(-1).to(x0.dtype)
            r = s - target
            per_sample = diffusion_quadratic(module, t, xt, r) if weighting == "likelihood" else (r ** 2).sum(-1)
    return per_sample.mean()


# ---------------------------------------------------------------------------------------- SSM
def perturbed_samples(module, x0: torch.Tensor, t_min: float, generator, sim_steps: int = 100,
                      use_kernel: Optional[bool] = None):
    """(t, x_t) with x_t ~ p(x_t | x_0): from the kernel when the model has one (``use_kernel`` None or
    True), else the forward SDE simulated by Euler–Maruyama on a grid of ``sim_steps`` steps, each row
    read at its own random grid time ≥ t0 + t_min."""
    batch = x0.shape[0]
    if use_kernel is None:
        use_kernel = has_kernel(module)
    if use_kernel:
        t = draw_times(module, batch, t_min, generator, x0.dtype, x0.device)
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        mean, spread = kernel_float64(module, x0, t)
        if has_diagonal_kernel(module):
            return t, mean + spread.to(x0.dtype) * eps
        L = torch.linalg.cholesky(spread).to(x0.dtype)
        return t, mean + torch.einsum("bij,bj->bi", L, eps)
    h = (module.t1 - module.t0) / sim_steps
    ts = torch.tensor([module.t0 + k * h for k in range(sim_steps + 1)], dtype=torch.float64)
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=x0.device).item())
    with torch.no_grad():
        path = module.simulate(x0, ts, dt=h, seed=seed)  # (sim_steps + 1, batch, n)
    first = min(sim_steps, max(1, int(-(-t_min // h))))
    index = torch.randint(first, sim_steps + 1, (batch,), generator=generator, device=x0.device)
    xt = path[index, torch.arange(batch, device=x0.device)]
    return ts.to(x0.dtype).to(x0.device)[index], xt


def projections(shape, kind: str, generator, like: torch.Tensor) -> torch.Tensor:
    """Random v with E[v vᵀ] = I: Rademacher (±1) or standard Gaussian."""
    if kind == "rademacher":
        bits = torch.randint(0, 2, tuple(shape), generator=generator, device=like.device)
        return bits.to(like.dtype) * 2 - 1
    if kind == "gaussian":
        return torch.randn(tuple(shape), generator=generator, dtype=like.dtype, device=like.device)
    raise ValueError(f"projection must be 'rademacher' or 'gaussian', got {kind!r}")


def ssm_weights(module, weighting: str, t, xt: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """w of the W = diag(w) weighting, broadcastable to (batch, n)."""
    if weighting == "none":
        return torch.ones_like(xt[:, :1])
    if weighting == "likelihood":
        return diagonal_diffusion(module, t, xt)
    if weighting == "sigma2":
        if not has_diagonal_kernel(module):
            raise NotImplementedError("ssm weighting 'sigma2' needs a diagonal perturbation kernel")
        return kernel_float64(module, x0, t)[1].to(xt.dtype)
    raise ValueError(f"weighting must be one of {SSM_WEIGHTINGS}, got {weighting!r}")


def ssm_loss(module, x0: torch.Tensor, *, t_min: float = 1e-3, weighting: str = "none",
             projection: str = "rademacher", sim_steps: int = 100, use_kernel: Optional[bool] = None,
             generator: Optional[torch.Generator] = None, score: Optional[Callable] = None) -> torch.Tensor:
    """Sliced score-matching loss vᵀ ∇_x(vᵀ (w² ⊙ s)) + ½ (vᵀ (w ⊙ s))², mean over the batch
    (module docstring); differentiable in the network's parameters."""
    if weighting not in SSM_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {SSM_WEIGHTINGS}, got {weighting!r}")
    score = score_of(module, score)
    t, xt = perturbed_samples(module, x0, t_min, generator, sim_steps, use_kernel)
    v = projections(xt.shape, projection, generator, xt)
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        xt = xt.detach().requires_grad_(True)
        s = score(xt, t)
        w = ssm_weights(module, weighting, t, xt, x0)
        inner = (v * w * w * s).sum(-1)
        (grad_inner,) = torch.autograd.grad(inner.sum(), xt, create_graph=keep_graph)
        per_sample = (grad_inner * v).sum(-1) + 0.5 * ((v * w * s).sum(-1)) ** 2
    return per_sample.mean() if keep_graph else per_sample.mean().detach()


LOSSES: Dict[str, Callable] = {"dsm": dsm_loss, "ssm": ssm_loss}


# ---------------------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of a network's parameters: θ̄ ← d θ̄ + (1 - d) θ after each step,
    with d = min(decay, (1 + k) / (10 + k)) at update k (so early random weights are forgotten in
    short runs); buffers are copied as they are."""

    def __init__(self, net: nn.Module, decay: float = 0.999):
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: Dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        params = dict(net.named_parameters())
        for name, value in net.state_dict().items():
            if name in params and value.dtype.is_floating_point:
                self.shadow[name].mul_(d).add_(value.detach(), alpha=1 - d)
            else:
                self.shadow[name].copy_(value)

    @torch.no_grad()
    def copy_to(self, net: nn.Module) -> None:
        """Load the averaged weights into ``net``."""
        net.load_state_dict(self.shadow)

    def averaged(self, net: nn.Module) -> nn.Module:
        """A deep copy of ``net`` carrying the averaged weights (``net`` is untouched)."""
        clone = copy.deepcopy(net)
        self.copy_to(clone)
        return clone

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k] = v.clone()


# ---------------------------------------------------------------------------------------- trainer
class ScoreTrainer:
    """Adam on a score-matching loss with gradient clipping, an EMA of weights and resumable
    checkpoints. One ``torch.Generator`` (seeded with ``seed``) draws every random number (batch
    indices, t, ε, projections), and its state is checkpointed, so a resumed run reproduces an
    uninterrupted one bit for bit."""

    def __init__(self, module, net: nn.Module, *, loss: str = "dsm", weighting: str = "sigma2",
                 t_min: float = 1e-3, lr: float = 2e-3, batch_size: int = 256, ema_decay: float = 0.999,
                 grad_clip: Optional[float] = 1.0, seed: int = 0, loss_options: Optional[dict] = None):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        self.module = module
        self.net = net
        module.attach("score", net)
        self.config = {"loss": loss, "weighting": weighting, "t_min": float(t_min), "lr": float(lr),
                       "batch_size": int(batch_size), "ema_decay": float(ema_decay),
                       "grad_clip": grad_clip, "seed": int(seed), "loss_options": dict(loss_options or {})}
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        first = next(iter(net.parameters()), None)
        self.device = first.device if first is not None else torch.device("cpu")
        self.dtype = first.dtype if first is not None else torch.get_default_dtype()
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.ema = EMA(net, ema_decay)
        self.step = 0
        self.losses: List[float] = []

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """The configured loss on a batch x0, drawing from the trainer's generator."""
        c = self.config
        return LOSSES[c["loss"]](self.module, x0, t_min=c["t_min"], weighting=c["weighting"],
                                 generator=self.generator, score=self.net, **c["loss_options"])

    def as_data(self, data) -> torch.Tensor:
        return torch.as_tensor(data).to(device=self.device, dtype=self.dtype)

    def train_step(self, data: torch.Tensor) -> float:
        """One optimiser step on a minibatch drawn with replacement; returns the loss."""
        index = torch.randint(0, data.shape[0], (self.config["batch_size"],), generator=self.generator,
                              device=self.device)
        self.optimizer.zero_grad(set_to_none=True)
        value = self.loss(data[index])
        value.backward()
        if self.config["grad_clip"] is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config["grad_clip"])
        self.optimizer.step()
        self.ema.update(self.net)
        self.step += 1
        loss = float(value.detach())
        self.losses.append(loss)
        return loss

    def fit(self, data, steps: int, *, progress: bool = True, checkpoint: Optional[Union[str, os.PathLike]] = None,
            checkpoint_every: int = 500, resume: bool = True) -> List[float]:
        """Train until ``self.step == steps`` (a TOTAL count: a trainer at step k does steps - k more).
        With ``checkpoint``: resume from it first when it exists (``resume``) and this trainer has not
        stepped, save every ``checkpoint_every`` steps and at the end. Returns all losses so far."""
        if checkpoint is not None and resume and self.step == 0 and os.path.exists(checkpoint):
            self.load(checkpoint)
        data = self.as_data(data)
        remaining = max(0, int(steps) - self.step)
        bar = None
        if progress and remaining:
            from tqdm.auto import tqdm

            bar = tqdm(total=remaining, desc=f"{self.config['loss']} training", leave=False)
        self.net.train()
        for _ in range(remaining):
            loss = self.train_step(data)
            if bar is not None:
                bar.update(1)
                if self.step % 25 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}")
            if checkpoint is not None and self.step % checkpoint_every == 0:
                self.save(checkpoint)
        if bar is not None:
            bar.close()
        if checkpoint is not None and remaining:
            self.save(checkpoint)
        return self.losses

    def ema_net(self) -> nn.Module:
        """A copy of the network with the EMA weights."""
        return self.ema.averaged(self.net)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step,
                "generator": self.generator.get_state(), "losses": list(self.losses), "config": dict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
        self.losses = list(state["losses"])

    def save(self, path: Union[str, os.PathLike]) -> None:
        """torch.save of net, EMA, optimiser, step, generator state, losses and config (written to a
        temporary file, then renamed, so an interrupted save leaves the old checkpoint intact)."""
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: Union[str, os.PathLike]) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=False))
