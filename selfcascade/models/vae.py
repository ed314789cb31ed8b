"""Latents <-> pixels through a diffusers AutoencoderKL: tiles by size, precision checked, low peak memory.

Tiling is diffusers' own (`vae.enable_tiling()`: overlapping tiles decoded one at a time, blended at the
seams). Its tile side is the VAE config's `sample_size` (1024 px for SDXL, whose one-tile decode alone peaks
near 4 GiB in float32); tiles here are at most TILE_SIDE px, which bounds a decode's peak to that of a
512x512 one (benchmarks/vae_memory.py measures it). `auto` tiles an image of more than TILE_ABOVE_PIXELS
(above SDXL's native 1024x1024): below that an untiled decode fits any GPU that fits the UNet.
"""

from __future__ import annotations

import torch

from selfcascade.errors import InvalidRequest
from selfcascade.models.precision import check_finite, vae_overflow_hint

TILING_CHOICES = ("auto", "on", "off")
TILE_SIDE = 512  # px; diffusers' default would be the config's sample_size
TILE_ABOVE_PIXELS = 1024 * 1024


def check_tiling_choice(choice: str) -> None:
    if choice not in TILING_CHOICES:
        raise InvalidRequest(f"unknown VAE tiling {choice!r}; choose one of {', '.join(TILING_CHOICES)}")


def wants_tiles(choice: str, width: int, height: int) -> bool:
    """Whether a decode of a width x height image runs in tiles under `choice` (auto / on / off)."""
    check_tiling_choice(choice)
    if choice != "auto":
        return choice == "on"
    return width * height > TILE_ABOVE_PIXELS


def tile_side(vae_config) -> int:
    """Pixel side of one tile for this VAE: TILE_SIDE, or the VAE's own sample size when smaller."""
    return min(int(vae_config.sample_size), TILE_SIDE)


def set_tiling(vae, tiled: bool) -> None:
    """Switch diffusers' tiled encode/decode on or off, with tiles of `tile_side` px."""
    if not tiled:
        vae.disable_tiling()
        return
    side = tile_side(vae.config)
    vae.enable_tiling()
    vae.tile_sample_min_size = side
    vae.tile_latent_min_size = side // (2 ** (len(vae.config.block_out_channels) - 1))


@torch.no_grad()
def decode_to_uint8(vae, latents: torch.Tensor, tiled: bool) -> torch.Tensor:
    """Latents (B, C, h, w) -> (B, H, W, 3) uint8 on the CPU. NonFiniteResult instead of a black image."""
    set_tiling(vae, tiled)
    scaled = latents.to(vae.dtype) / vae.config.scaling_factor
    shift = getattr(vae.config, "shift_factor", None)
    if shift:
        scaled = scaled + shift
    pixels = vae.decode(scaled).sample
    del scaled
    check_finite(pixels, "the decoded pixels", vae_overflow_hint(vae.dtype))
    # In place: at 4096x4096 every extra float copy of the image is 200 MB.
    pixels = pixels.clamp_(-1, 1).add_(1).mul_(127.5).round_().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu()


@torch.no_grad()
def encode_mean(vae, pixels: torch.Tensor, tiled: bool) -> torch.Tensor:
    """Pixels (B, 3, H, W) in [-1, 1] -> the posterior mean, scaled like the UNet's latents (vae dtype)."""
    set_tiling(vae, tiled)
    mean = vae.encode(pixels.to(vae.dtype)).latent_dist.mean
    check_finite(mean, "the encoded latents", vae_overflow_hint(vae.dtype))
    shift = getattr(vae.config, "shift_factor", None)
    if shift:
        mean = mean - shift
    return mean * vae.config.scaling_factor
