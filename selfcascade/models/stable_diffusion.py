"""Stable Diffusion 1.x / 2.x and the embedded shapes model (same architecture, one CLIP text encoder)."""

from __future__ import annotations

import torch
from diffusers import StableDiffusionPipeline

from ..stages import Size
from .base import Conditioning, DiffusionModel


class StableDiffusionModel(DiffusionModel):
    def __init__(self, pipeline: StableDiffusionPipeline, name: str):
        self.pipeline = pipeline
        self.name = name
        self.unet = pipeline.unet.eval().requires_grad_(False)
        self.vae = pipeline.vae.eval().requires_grad_(False)
        pipeline.text_encoder.eval().requires_grad_(False)
        self.scheduler_config = dict(pipeline.scheduler.config)

    @property
    def base_size(self) -> Size:
        side = self.unet.config.sample_size * self.vae_scale_factor
        return side, side

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str, guided: bool) -> Conditioning:
        positive, negative = self.pipeline.encode_prompt(
            prompt, self.device, 1, guided, negative_prompt=negative_prompt or None
        )
        return Conditioning(positive=positive, negative=negative if guided else None)

    def predict_noise(self, latents, timestep, conditioning, **unet_extras):
        embeddings = conditioning.positive
        if conditioning.guided:
            embeddings = torch.cat([conditioning.negative, conditioning.positive])
        return self.unet(latents, timestep, encoder_hidden_states=embeddings, return_dict=False,
                         **unet_extras)[0]
