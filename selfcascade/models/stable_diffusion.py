"""Stable Diffusion 1.x / 2.x and the embedded shapes model (same architecture, one CLIP text encoder)."""

from __future__ import annotations

import torch

from selfcascade.models.base import Conditioning, DiffusionModel


class StableDiffusionModel(DiffusionModel):
    family = "Stable Diffusion 1.x/2.x"

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
