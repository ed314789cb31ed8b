"""Estimated time and memory of a request, shown before it runs.

Time: one UNet call is timed at the base size once per loaded model (a fraction of a second for the
embedded model), then scaled by each stage's latent pixels and step count (x2 with guidance). Attention
grows faster than linearly with size, so large stages are under-estimated a little: it is a guide.
Memory: the model's weights plus the largest stage's activations (an empirical bytes-per-latent-pixel
factor of the UNet's widest level).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .models.base import DiffusionModel
from .request import GenerationRequest
from .sampling import make_scheduler, schedule

_seconds_per_latent_pixel: dict[str, float] = {}
ACTIVATION_FACTOR = 60  # activations held per latent pixel and channel of the widest level (forward only)


@dataclass(frozen=True)
class Estimate:
    seconds: float
    memory_mb: float
    stage_chain: str

    def describe(self) -> str:
        return f"{self.stage_chain}: about {self.seconds:.0f} s, about {self.memory_mb:.0f} MB"


@torch.no_grad()
def _calibrate(model: DiffusionModel) -> float:
    if model.name not in _seconds_per_latent_pixel:
        latents = torch.randn(model.latent_shape(model.base_size, batch=2), dtype=model.dtype).to(model.device)
        conditioning = model.encode_prompt("", "", guided=True)
        timestep = torch.tensor(500, device=model.device)
        model.predict_noise(latents, timestep, conditioning)  # warm-up
        started = time.perf_counter()
        model.predict_noise(latents, timestep, conditioning)
        pixels = latents.shape[-1] * latents.shape[-2]
        _seconds_per_latent_pixel[model.name] = (time.perf_counter() - started) / pixels
    return _seconds_per_latent_pixel[model.name]


def estimate(model: DiffusionModel, request: GenerationRequest) -> Estimate:
    """Time and memory of `request` on `model`; raises InvalidRequest like the run itself would."""
    plan = request.plan(model.base_size, model.size_multiple)
    rate = _calibrate(model)
    seconds = 0.0
    for index, size in enumerate(plan.sizes):
        strength = 1.0 if index == 0 else request.strength
        steps = len(schedule(make_scheduler(model, request.scheduler), request.steps, strength))
        latent_pixels = (size[0] // model.vae_scale_factor) * (size[1] // model.vae_scale_factor)
        seconds += steps * latent_pixels * rate * (1 if request.guidance > 1 else 0.5)
    weights = sum(p.numel() * p.element_size() for part in (model.unet, model.vae) for p in part.parameters())
    largest = max(w * h for w, h in plan.sizes) / model.vae_scale_factor**2
    widest = max(model.unet.config.block_out_channels)
    activations = 2 * largest * widest * ACTIVATION_FACTOR * torch.finfo(model.dtype).bits / 8
    return Estimate(seconds, (weights + activations) / 2**20, plan.chain())
