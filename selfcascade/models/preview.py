"""Cheap live previews of latents while a stage denoises.

Small VAEs (the embedded model's) are simply decoded; for Stable Diffusion latents a fixed linear map
latent -> RGB gives a blurry but instant picture (coefficients as commonly used for SD 1.x/2.x and SDXL
latent previews), so a preview never costs a full VAE decode at 2048 px.
"""

from __future__ import annotations

import torch
from PIL import Image

from selfcascade.models.base import DiffusionModel

SMALL_VAE_PARAMETERS = 5_000_000
_SD_LATENT_TO_RGB = torch.tensor([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
                                  [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]])
_SDXL_LATENT_TO_RGB = torch.tensor([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
                                    [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]])
_SDXL_BIAS = torch.tensor([0.1084, -0.0175, -0.0011])


def _linear_preview(latents: torch.Tensor, factors: torch.Tensor, bias: torch.Tensor | None) -> Image.Image:
    rgb = torch.einsum("chw,cr->hwr", latents[0].float().cpu(), factors)
    if bias is not None:
        rgb = rgb + bias
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def quick_preview(model: DiffusionModel, latents: torch.Tensor) -> Image.Image:
    """An RGB picture of (noisy or clean) latents, cheap enough to show every few steps."""
    if sum(p.numel() for p in model.vae.parameters()) <= SMALL_VAE_PARAMETERS:
        return model.decode(latents[:1])[0]
    is_xl = abs(model.vae.config.scaling_factor - 0.13025) < 1e-4
    factors = _SDXL_LATENT_TO_RGB if is_xl else _SD_LATENT_TO_RGB
    return _linear_preview(latents[:1], factors, _SDXL_BIAS if is_xl else None)
