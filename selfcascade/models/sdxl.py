"""Stable Diffusion XL: two text encoders, pooled embeddings and size "time ids" as extra UNet inputs."""

from __future__ import annotations

import torch

from selfcascade.models.base import Conditioning, DiffusionModel


class StableDiffusionXLModel(DiffusionModel):
    family = "SDXL"

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str, guided: bool) -> Conditioning:
        positive, negative, pooled, negative_pooled = self.pipeline.encode_prompt(
            prompt, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=guided,
            negative_prompt=negative_prompt or None,
        )
        return Conditioning(positive=positive, negative=negative if guided else None,
                            extra={"pooled": pooled, "negative_pooled": negative_pooled if guided else None})

    def predict_noise(self, latents, timestep, conditioning, **unet_extras):
        height, width = (side * self.vae_scale_factor for side in latents.shape[-2:])
        # SDXL's micro-conditioning: original size, crop (0, 0), target size = this stage's size.
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=latents.dtype, device=latents.device)
        embeddings, pooled = conditioning.positive, conditioning.extra["pooled"]
        if conditioning.guided:
            embeddings = torch.cat([conditioning.negative, embeddings])
            pooled = torch.cat([conditioning.extra["negative_pooled"], pooled])
        added = {"text_embeds": pooled, "time_ids": time_ids.repeat(latents.shape[0], 1)}
        return self.unet(latents, timestep, encoder_hidden_states=embeddings, added_cond_kwargs=added,
                         return_dict=False, **unet_extras)[0]
