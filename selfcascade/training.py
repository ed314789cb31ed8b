"""Algorithm 1 of the paper: fine-tune only the time-aware feature upsamplers on a few high-resolution images.

    x0 ~ data at the stage size (random crops), c its caption (10% dropped to "")
    z0 = E(x0);  pivot = E(downsample_2x(x0))        (downsampled ground truth as the pivot, as in the paper)
    t ~ U{1..K};  z_t = sqrt(a_t) z0 + sqrt(1 - a_t) eps
    loss = || eps_theta(z_t, t, c; skips + phi(skips(pivot, 0), t)) - eps ||^2   (or the v-target)

Everything but phi is frozen. A generator of progress events (step, loss, speed, ETA, the saved
adapter); a checkpoint every N steps; resume from a saved adapter. Cancel (cooperative) keeps what was
learned: the weights of the last finished step are saved and TrainingDone says it stopped.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler

from .adapters import load_adapter, save_adapter
from .dataset import TrainingImages
from .models.base import DiffusionModel
from .models.loader import load_model
from .sampling import Cancelled
from .stages import InvalidRequest, Size
from .upsampler import encoder_skips, new_upsamplers

CAPTION_DROP = 0.1
_accelerator: Accelerator | None = None


def accelerator() -> Accelerator:
    """accelerate's Accelerator is a process singleton: made once, reused by every training run."""
    global _accelerator
    if _accelerator is None:
        _accelerator = Accelerator(mixed_precision="no")
    return _accelerator


@dataclass
class TrainingRequest:
    images: list[str]  # image files (a folder is expanded by the caller or the CLI)
    size: Size  # the stage size trained for (the pivot is half of it per side)
    steps: int = 200
    learning_rate: float = 1e-3
    batch: int = 4
    caption: str = ""  # used for images without a .txt beside them
    strength: float = 0.5  # K / T: the largest timestep trained, as used at inference
    model: str | None = None
    out: str = ""
    resume: str | None = None
    seed: int = 0
    checkpoint_every: int = 0  # save the adapter to `out` every N steps (0: only at the end)

    def check(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise InvalidRequest(f"steps must be from 1 to 100000, not {self.steps}")
        if not 0 < self.learning_rate <= 0.1:
            raise InvalidRequest(f"learning rate must be in (0, 0.1], not {self.learning_rate}")
        if not 1 <= self.batch <= 64:
            raise InvalidRequest(f"batch must be from 1 to 64, not {self.batch}")
        if not 0 < self.strength <= 1:
            raise InvalidRequest(f"strength must be in (0, 1], not {self.strength}")
        if not 0 <= self.checkpoint_every <= 100_000:
            raise InvalidRequest(f"checkpoint every must be from 0 (only at the end) to 100000, "
                                 f"not {self.checkpoint_every}")


@dataclass
class TrainingStep:
    step: int
    steps: int
    loss: float
    steps_per_second: float
    eta_seconds: float
    checkpoint: Path | None = None  # the adapter folder when this step saved one (live samples load it)


@dataclass
class TrainingDone:
    path: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    stopped: bool = False  # cancelled: `path` holds the weights after `steps` finished steps


def diffusion_target(scheduler, z0, noise, t):
    """epsilon, or the v-target for v-prediction models (Salimans & Ho 2022)."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(z0, noise, t)
    return noise


def training_loss(model: DiffusionModel, upsamplers, scheduler, pixels: torch.Tensor, captions: list[str],
                  max_timestep: int, generator: torch.Generator) -> torch.Tensor:
    """One Algorithm-1 loss on a batch of images (B, 3, H, W) in [-1, 1]."""
    with torch.no_grad():
        z0 = model.vae.encode(pixels).latent_dist.mean * model.vae.config.scaling_factor
        small = F.interpolate(pixels, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
        pivot = model.vae.encode(small).latent_dist.mean * model.vae.config.scaling_factor
        conditioning = model.encode_prompt(captions, "", guided=False)
    t = torch.randint(1, max_timestep + 1, (len(pixels),), generator=generator)
    noise = torch.randn(z0.shape, generator=generator)
    zt = scheduler.add_noise(z0, noise, t)
    with torch.no_grad():
        # The clean pivot's features at t = 0 (paper Eq. 6: h_{n,0}^{r-1}), as at inference.
        skips = encoder_skips(model, pivot, torch.zeros_like(t), conditioning)
    residuals, mid = upsamplers.residuals(skips, t, tuple(z0.shape[-2:]))
    prediction = model.predict_noise(zt, t, conditioning, down_block_additional_residuals=residuals,
                                     mid_block_additional_residual=mid)
    return F.mse_loss(prediction.float(), diffusion_target(scheduler, z0, noise, t).float())


def train(request: TrainingRequest, model: DiffusionModel | None = None,
          cancel: threading.Event | None = None) -> Iterator[TrainingStep | TrainingDone]:
    """Train upsamplers for `request`, yielding a TrainingStep per step and TrainingDone with the saved adapter."""
    request.check()
    model = model or load_model(request.model)
    data = TrainingImages(request.images, request.size, model.size_multiple, request.caption)
    with torch.random.fork_rng(devices=[]):  # the request's seed makes the random start (and so the run) repeatable
        torch.manual_seed(request.seed)
        upsamplers = load_adapter(request.resume, model) if request.resume else new_upsamplers(model.unet, model.name)
    upsamplers.train()
    optimizer = torch.optim.AdamW(upsamplers.parameters(), lr=request.learning_rate, weight_decay=0.0)
    upsamplers, optimizer = accelerator().prepare(upsamplers, optimizer)
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    max_timestep = max(1, int(request.strength * scheduler.config.num_train_timesteps) - 1)
    rng, generator = random.Random(request.seed), torch.Generator().manual_seed(request.seed)
    out = request.out or f"adapter-{int(time.time())}"
    losses, started = [], time.perf_counter()
    for step in range(1, request.steps + 1):
        if cancel is not None and cancel.is_set():
            if not losses:  # nothing learned yet: nothing worth saving
                raise Cancelled()
            break
        pixels, captions = data.batch(request.batch, rng)
        captions = ["" if rng.random() < CAPTION_DROP else c for c in captions]
        loss = training_loss(model, upsamplers, scheduler, pixels.to(model.device, model.dtype), captions,
                             max_timestep, generator)
        accelerator().backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        speed = step / (time.perf_counter() - started)
        checkpoint = None
        if request.checkpoint_every and step % request.checkpoint_every == 0 and step < request.steps:
            # Saving reads the weights only: the training state (train mode, optimizer) is untouched.
            checkpoint = save_adapter(accelerator().unwrap_model(upsamplers), out, size=request.size, model=model)
        paused = time.perf_counter()
        yield TrainingStep(step, request.steps, losses[-1], speed, (request.steps - step) / speed, checkpoint)
        started += time.perf_counter() - paused  # the consumer's time (e.g. a live sample) is not training time
    trained = accelerator().unwrap_model(upsamplers).eval()
    path = save_adapter(trained, out, size=request.size, model=model)
    yield TrainingDone(path, len(losses), time.perf_counter() - started, losses, len(losses) < request.steps)
