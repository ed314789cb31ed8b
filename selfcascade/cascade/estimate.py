"""Estimated time and memory of a request, shown before it runs.

Time: a guided UNet call is timed at the base size and at 2x per side once per loaded model (a fraction
of a second for the embedded model); a line through the two (fixed cost + cost per latent pixel) is scaled
by each stage's size and step count. Attention grows faster than linearly, so stages far above 2x are
under-estimated a little: it is a guide.
Memory: selfcascade.models.memory's model of the peak (weights, UNet activations at the largest stage, the VAE
decode with or without tiles) against the device's free memory; `memory_plan` is also what the cascade
checks before it starts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from selfcascade.cascade.plan import resolve_run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.cascade.stages import Size
from selfcascade.diffusion.sampling import make_scheduler, schedule
from selfcascade.diffusion.upper_stage import relative_cost
from selfcascade.models.base import DiffusionModel
from selfcascade.models.memory import MemoryPlan, free_memory, module_bytes, plan_memory
from selfcascade.models.placement import pipeline_modules
from selfcascade.models.vae import wants_tiles

# model and its load settings -> (seconds per call, seconds per latent pixel)
_call_cost: dict[str, tuple[float, float]] = {}


@dataclass(frozen=True)
class Estimate:
    seconds: float
    memory_mb: float  # the peak: weights + the larger of UNet activations and VAE decode
    stage_chain: str
    memory: MemoryPlan | None = None

    def describe(self) -> str:
        return f"{self.stage_chain}: about {self.seconds:.0f} s, about {self.memory_mb:.0f} MB"


def memory_plan(model: DiffusionModel, request: GenerationRequest) -> MemoryPlan:
    """Peak memory of `request` on `model` (as loaded: dtype, offload) and the device's free memory."""
    plan = request.plan(model.base_size, model.size_multiple)
    largest = max(plan.sizes, key=lambda size: size[0] * size[1])
    weights = module_bytes(model.unet) if model.offloaded else module_bytes(*pipeline_modules(model.pipeline))
    return plan_memory(model.unet.config, model.vae.config, largest, weights=weights, unet_dtype=model.dtype,
                       vae_dtype=model.vae.dtype, guided=request.stage_guidance(len(plan.sizes) > 1) > 1,
                       tiled=wants_tiles(request.vae_tiling, *largest), tuned=request.mode == "tuned",
                       device=str(model.device), free=free_memory(model.device))


@torch.no_grad()
def _calibrate(model: DiffusionModel) -> tuple[float, float]:
    key = f"{model.name} {model.settings}"  # float16 and float32 loads of one model differ in speed
    if key not in _call_cost:
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
        _call_cost[key] = (max(fast - per_pixel * small, 0.0), per_pixel)
    return _call_cost[key]


def is_calibrated(model: DiffusionModel) -> bool:
    """Whether `estimate` can answer for `model` without running its UNet (it timed it once already)."""
    return f"{model.name} {model.settings}" in _call_cost


def folder_geometry(folder: str | Path) -> tuple[Size, int]:
    """(base size, size multiple) of a diffusers folder from its UNet and VAE config files alone: the stage
    plan of a model that is not loaded, at the cost of reading two small JSON files."""
    folder = Path(folder)
    unet = json.loads((folder / "unet" / "config.json").read_text())
    vae = json.loads((folder / "vae" / "config.json").read_text())
    vae_factor = 2 ** (len(vae["block_out_channels"]) - 1)
    side = unet["sample_size"] * vae_factor
    return (side, side), vae_factor * 2 ** (len(unet["block_out_channels"]) - 1)


def estimate(model: DiffusionModel, request: GenerationRequest) -> Estimate:
    """Time and memory of `request` on `model`; raises InvalidRequest like the run itself would."""
    plan = resolve_run(request, model)
    fixed, per_pixel = _calibrate(model)
    seconds = 0.0
    for index, size in enumerate(plan.sizes):
        strength = 1.0 if index == 0 else request.strength
        steps = len(schedule(make_scheduler(model, request.scheduler), request.steps, strength))
        latent_pixels = (size[0] // model.vae_scale_factor) * (size[1] // model.vae_scale_factor)
        cost = 1.0 if size == model.base_size else relative_cost(plan.strategy)
        guided = plan.guidance_for(index > 0) > 1  # an unguided call is one UNet pass, not two
        if index == 0:  # pivot consensus: K more guided passes at the first stage
            steps += plan.consensus
        seconds += steps * (fixed + latent_pixels * per_pixel) * cost * (1 if guided else 0.5)
    memory = memory_plan(model, request)
    return Estimate(seconds, memory.peak / 2**20, plan.stages.chain(), memory)
