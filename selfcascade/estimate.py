"""Estimated time and memory of a request, shown before it runs.

Time: a guided UNet call is timed at the base size and at 2x per side once per loaded model (a fraction
of a second for the embedded model); a line through the two (fixed cost + cost per latent pixel) is scaled
by each stage's size and step count. Attention grows faster than linearly, so stages far above 2x are
under-estimated a little: it is a guide.
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
from .upper_stage import relative_cost

_call_cost: dict[str, tuple[float, float]] = {}  # model -> (seconds per call, seconds per latent pixel)
ACTIVATION_FACTOR = 60  # activations held per latent pixel and channel of the widest level (forward only)


@dataclass(frozen=True)
class Estimate:
    seconds: float
    memory_mb: float
    stage_chain: str

    def describe(self) -> str:
        return f"{self.stage_chain}: about {self.seconds:.0f} s, about {self.memory_mb:.0f} MB"


@torch.no_grad()
def _calibrate(model: DiffusionModel) -> tuple[float, float]:
    if model.name not in _call_cost:
        conditioning = model.encode_prompt("", "", guided=True)
        timestep = torch.tensor(500, device=model.device)
        timings = []
        for scale in (1, 2):
            size = (model.base_size[0] * scale, model.base_size[1] * scale)
            latents = torch.randn(model.latent_shape(size, batch=2), dtype=model.dtype).to(model.device)
            model.predict_noise(latents, timestep, conditioning)  # warm-up
            started = time.perf_counter()
            model.predict_noise(latents, timestep, conditioning)
            timings.append((latents.shape[-1] * latents.shape[-2], time.perf_counter() - started))
        (small, fast), (large, slow) = timings
        per_pixel = max(slow - fast, 0.0) / (large - small)
        _call_cost[model.name] = (max(fast - per_pixel * small, 0.0), per_pixel)
    return _call_cost[model.name]


def estimate(model: DiffusionModel, request: GenerationRequest) -> Estimate:
    """Time and memory of `request` on `model`; raises InvalidRequest like the run itself would."""
    plan = request.plan(model.base_size, model.size_multiple)
    fixed, per_pixel = _calibrate(model)
    seconds = 0.0
    upper = request.upper_stage(model.default_upper_stage)
    for index, size in enumerate(plan.sizes):
        strength = 1.0 if index == 0 else request.strength
        steps = len(schedule(make_scheduler(model, request.scheduler), request.steps, strength))
        latent_pixels = (size[0] // model.vae_scale_factor) * (size[1] // model.vae_scale_factor)
        cost = 1.0 if size == model.base_size else relative_cost(upper)
        seconds += steps * (fixed + latent_pixels * per_pixel) * cost * (1 if request.guidance > 1 else 0.5)
    weights = sum(p.numel() * p.element_size() for part in (model.unet, model.vae) for p in part.parameters())
    largest = max(w * h for w, h in plan.sizes) / model.vae_scale_factor**2
    widest = max(model.unet.config.block_out_channels)
    activations = 2 * largest * widest * ACTIVATION_FACTOR * torch.finfo(model.dtype).bits / 8
    return Estimate(seconds, (weights + activations) / 2**20, plan.chain())
