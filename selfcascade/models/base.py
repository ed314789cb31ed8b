"""The one interface every base-model family offers the cascade (SD 1.x/2.x and the embedded default, ...).

A family knows how to encode a prompt, call its UNet (with whatever extra inputs it needs), move between
latents and images, and which sizes it was trained at and accepts. The cascade and the sampling loop only
talk to this interface, so a new family is one small module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from PIL import Image

from selfcascade.models.vae import decode_to_uint8, encode_mean, wants_tiles


@dataclass
class Conditioning:
    """Prompt embeddings for one request; `negative` is None when guidance is off."""

    positive: torch.Tensor
    negative: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)  # family-specific (e.g. SDXL's pooled embeddings)

    @property
    def guided(self) -> bool:
        return self.negative is not None

    def expand(self, views: int) -> "Conditioning":
        """The same prompt for a batch of `views` latents (sub-lattices, windows, frames)."""
        if views == 1:
            return self

        def repeat(value):
            return value.repeat_interleave(views, 0) if isinstance(value, torch.Tensor) else value

        return Conditioning(repeat(self.positive), repeat(self.negative),
                            {key: repeat(value) for key, value in self.extra.items()})


class DiffusionModel(ABC):
    """A loaded base model (a diffusers pipeline), frozen, ready for the cascade."""

    # How stages above the training size predict noise (selfcascade.diffusion.upper_stage); chosen per family by
    # benchmarks/upper_stage.py where it can be measured (the embedded model), else by analogy.
    default_upper_stage = "frequency-pyramid"
    # Weight of the pivot's low band at upper stages (selfcascade.diffusion.anchor), measured the same way.
    default_anchor = 1.0
    # Width (latent px) of that low band; None: pivot_anchor.ANCHOR_SIGMA. The loader narrows it for the
    # embedded models, where it was measured (pivot_anchor.EMBEDDED_ANCHOR_SIGMA).
    default_anchor_sigma: float | None = None
    # Clean estimates of the first stage averaged into its pivot (selfcascade.diffusion.consensus); 0: off. Set
    # from the folder's selfcascade.json, where it was measured (the embedded image model: 4).
    default_consensus = 0
    is_video = False  # video families (models/video.py) fold frames into the batch
    family = "unknown"  # recorded in adapters: one trained for another family is refused with this name

    def __init__(self, pipeline, name: str, settings: tuple = ()):
        self.pipeline = pipeline
        self.name = name  # id or path it was loaded from
        self.settings = settings  # (dtype name, replacement VAE, offload choice, config) it was loaded with
        self.offloaded = False  # model CPU offload: components move to the GPU for their own forward only
        self.unet = pipeline.unet.eval().requires_grad_(False)
        self.vae = pipeline.vae.eval().requires_grad_(False)
        for encoder in (getattr(pipeline, "text_encoder", None), getattr(pipeline, "text_encoder_2", None)):
            if encoder is not None:
                encoder.eval().requires_grad_(False)
        self.scheduler_config = dict(pipeline.scheduler.config)

    @property
    def base_size(self) -> tuple[int, int]:
        """The (width, height) the model was trained at (its UNet's sample size in pixels)."""
        side = self.unet.config.sample_size * self.vae_scale_factor
        return side, side

    @property
    def native_latent_size(self) -> tuple[int, int]:
        """(h, w) of the latents the UNet was trained on."""
        return self.base_size[1] // self.vae_scale_factor, self.base_size[0] // self.vae_scale_factor

    @property
    def latent_multiple(self) -> int:
        """Latent sides must be multiples of this (2 ^ UNet down-samplings)."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Pixel sizes must be multiples of this: VAE factor x 2^(UNet down-samplings)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        """Where latents live: the GPU even while offloaded components wait in CPU RAM."""
        if self.offloaded:
            return self.pipeline._execution_device
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def latent_shape(self, size: tuple[int, int], batch: int = 1) -> tuple[int, ...]:
        return (batch, self.unet.config.in_channels, size[1] // self.vae_scale_factor,
                size[0] // self.vae_scale_factor)

    @abstractmethod
    def encode_prompt(self, prompt: str, negative_prompt: str, guided: bool) -> Conditioning:
        """Text -> embeddings for the UNet."""

    @abstractmethod
    def predict_noise(self, latents: torch.Tensor, timestep: torch.Tensor, conditioning: Conditioning,
                      **unet_extras) -> torch.Tensor:
        """One UNet call on a batch laid out as [negative; positive] when guided."""

    def decode(self, latents: torch.Tensor, tiling: str = "auto") -> list[Image.Image]:
        """Latents -> RGB images (the VAE decoder, in tiles by size: selfcascade.models.vae)."""
        height, width = (side * self.vae_scale_factor for side in latents.shape[-2:])
        pixels = decode_to_uint8(self.vae, latents, wants_tiles(tiling, width, height))
        return [Image.fromarray(p.numpy()) for p in pixels]

    def encode(self, images: list[Image.Image], tiling: str = "auto") -> torch.Tensor:
        """RGB images (all one size) -> latents, the posterior mean (deterministic), in the UNet's dtype."""
        import numpy as np

        array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
        pixels = torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1
        tiled = wants_tiles(tiling, images[0].width, images[0].height)
        return encode_mean(self.vae, pixels.to(self.device), tiled).to(self.dtype)
