"""The one denoising loop every mode and every stage uses, and the forward-process re-noise step.

`denoise` is DDPM/DDIM-style reverse sampling over any noise predictor, with a per-step event and a
cooperative cancel flag checked before every UNet call; `guided_predictor` is classifier-free guidance
(eps = eps_uncond + g * (eps_cond - eps_uncond), Ho & Salimans 2022) around the model's UNet call.
`renoise` is the forward process q(z_K | z_0) of the paper's Algorithm 2:
z_K = sqrt(alpha_bar_K) * z_0 + sqrt(1 - alpha_bar_K) * eps.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from selfcascade.diffusion.prediction import Predictor
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.models.base import Conditioning, DiffusionModel

SCHEDULERS = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "euler": EulerDiscreteScheduler,
    "euler-a": EulerAncestralDiscreteScheduler,
    "dpm++": DPMSolverMultistepScheduler,
}


@dataclass
class StepInfo:
    index: int  # 0-based within this call
    total: int
    timestep: int
    latents: torch.Tensor


def make_scheduler(model: DiffusionModel, name: str | None = None):
    """A fresh scheduler for one request (schedulers keep state), from the model's own config."""
    if name is None:
        return _by_class_name(model.scheduler_config)
    if name not in SCHEDULERS:
        raise InvalidRequest(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name].from_config(model.scheduler_config)


def _by_class_name(config: dict):
    """The scheduler class the model folder names (DDIM when it names one we do not list)."""
    for scheduler_class in SCHEDULERS.values():
        if scheduler_class.__name__ == config.get("_class_name"):
            return scheduler_class.from_config(config)
    return DDIMScheduler.from_config(config)


def schedule(scheduler, steps: int, strength: float) -> torch.Tensor:
    """Timesteps for `steps` over the full schedule, keeping the last `strength` of them (img2img rule).

    strength 1 is full sampling from noise; strength 0.7 with 50 steps starts at t ~ 700 (the paper's K).
    """
    scheduler.set_timesteps(steps)
    kept = min(steps, max(1, int(round(steps * strength))))
    start = (steps - kept) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return scheduler.timesteps[start:]


def renoise(scheduler, clean: torch.Tensor, timestep: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Forward process to `timestep`: sqrt(a_bar) * clean + sqrt(1 - a_bar) * eps, via scheduler.add_noise."""
    noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32).to(clean.device, clean.dtype)
    return scheduler.add_noise(clean, noise, timestep.reshape(1))


def initial_noise(model: DiffusionModel, scheduler, shape, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(model.device, model.dtype)
    return noise * scheduler.init_noise_sigma


def guided_predictor(model: DiffusionModel, conditioning: Conditioning, guidance_scale: float,
                     unet_extras: Callable[[torch.Tensor, torch.Tensor], dict] | None = None) -> Predictor:
    """predict(latents, t) -> eps with classifier-free guidance, for a batch of N views of one prompt.

    `unet_extras(batch, t)` may add UNet inputs per call (the tuned mode's upsampled pivot features); the
    batch it sees is laid out [negative; positive] when guided, as the UNet gets it.
    """

    def predict(latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        views = conditioning.expand(latents.shape[0])
        batch = torch.cat([latents, latents]) if conditioning.guided else latents
        extras = unet_extras(batch, timestep) if unet_extras else {}
        noise = model.predict_noise(batch, timestep, views, **extras)
        if conditioning.guided:
            unconditional, conditional = noise.chunk(2)
            noise = unconditional + guidance_scale * (conditional - unconditional)
        return noise

    return predict


def denoise(
    scheduler,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    predict: Predictor,
    generator: torch.Generator,
    cancel: threading.Event | None = None,
) -> Iterator[StepInfo]:
    """Run the reverse process over `timesteps` from `latents` with the noise predictor `predict`,
    yielding after every step. The last StepInfo's latents are the clean result."""
    step_accepts_generator = "generator" in inspect.signature(scheduler.step).parameters
    step_kwargs = {"generator": generator} if step_accepts_generator else {}
    for index, timestep in enumerate(timesteps):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        with torch.no_grad():
            noise = predict(scheduler.scale_model_input(latents, timestep), timestep)
            latents = scheduler.step(noise, timestep, latents, return_dict=False, **step_kwargs)[0]
        yield StepInfo(index, len(timesteps), int(timestep), latents)
