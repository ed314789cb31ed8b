"""Peak memory of a run, the device's free memory, and what happens when memory runs out.

The model of the peak (inference, no gradients, attention through SDPA so no seq x seq matrix is stored):

- UNet: the skip features the encoder keeps for the decoder, plus the working set of the widest block at
  the largest level: a transformer's GEGLU feed-forward (its 8C projection, the 4C gate and the 4C product:
  16 C) or, without attention, a decoder ResNet on [x; skip] (its input, GroupNorm and SiLU: 9 C). Batch
  doubles with classifier-free guidance. Upper-stage strategies chunk their views so a chunk holds no more
  latent pixels than the full call (diffusion/upper_stage/views.py), so the largest stage's full call sets the peak.
- VAE decode: at full resolution the decoder holds the up-sampled input of its last block (kept for the
  shortcut), its GroupNorm and its SiLU, 3 x block_out_channels[1] channels, plus the convolution output
  and allocator slack: DECODE_CHANNEL_FACTOR (3.8, measured on the SD/SDXL VAE at 512x512 on the CPU by
  benchmarks/vae_memory.py, which checks it at 1024-4096 px). Tiled: one tile's decode, plus the decoded
  tiles diffusers keeps until it stitches them, plus two copies of the image (row strips, then the whole).
- Weights: every component on the device (the UNet alone with model CPU offload).

The decode and the UNet never hold their activations at the same time, so the peak is the weights plus
the larger of the two.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass

import torch

from selfcascade.errors import InvalidRequest
from selfcascade.models.vae import tile_side

DECODE_CHANNEL_FACTOR = 3.8
FEED_FORWARD_CHANNELS = 16  # GEGLU: 8C projection + 4C gelu(gate) + 4C product, alive together
RESNET_CHANNELS = 9  # decoder ResNet on concat([x, skip]) (3C): its input, GroupNorm and SiLU
MARGIN = 0.9  # refuse when the extra memory a run needs is above this share of the free memory
GIB = 2**30


class NotEnoughMemory(InvalidRequest):
    """The estimate says the run cannot fit: refused before it starts, with what to change."""


class OutOfMemory(InvalidRequest):
    """The device ran out of memory anyway; the memory was freed and the app keeps serving."""


def _levels(unet_config) -> list[tuple[int, bool]]:
    """(channels, has attention) per resolution level of the UNet."""
    return [(channels, "CrossAttn" in kind) for channels, kind in zip(unet_config.block_out_channels,
                                                                       unet_config.down_block_types)]


def unet_activation_bytes(unet_config, latent_pixels: int, batch: int, bytes_per_value: int,
                          tuned: bool = False) -> int:
    """Peak activations of one UNet call on `batch` latents of `latent_pixels` (h*w) each. `tuned` adds the
    upsampled pivot features the tuned mode holds through a stage (one skip per level, at the stage size)
    and the residuals it adds each step."""
    levels = _levels(unet_config)
    layers = unet_config.layers_per_block
    layers = layers[0] if isinstance(layers, (list, tuple)) else layers
    skips = levels[0][0]  # conv_in's output
    working = 0
    for index, (channels, attention) in enumerate(levels):
        pixels = latent_pixels / 4**index
        last = index == len(levels) - 1
        skips += channels * pixels * layers + (0 if last else channels * pixels / 4)
        working = max(working, channels * pixels * (FEED_FORWARD_CHANNELS if attention else RESNET_CHANNELS))
    if tuned:
        skips += 2 * sum(channels * latent_pixels / 4**index for index, (channels, _) in enumerate(levels))
    return int((skips + working) * batch * bytes_per_value)


def _tiled_side_sum(latent_side: int, tile_latent: int, scale: int) -> int:
    """Sum of the pixel sides of the tiles along one axis, as diffusers' tiled_decode cuts them."""
    stride = int(tile_latent * 0.75)  # diffusers: tile_overlap_factor 0.25
    return sum(min(tile_latent, latent_side - start) * scale for start in range(0, latent_side, stride))


def vae_decode_bytes(vae_config, width: int, height: int, bytes_per_value: int, tiled: bool) -> int:
    """Peak activations of decoding one width x height image (weights not included)."""
    full_res_channels = vae_config.block_out_channels[1] if len(vae_config.block_out_channels) > 1 else \
        vae_config.block_out_channels[0]
    per_pixel = DECODE_CHANNEL_FACTOR * full_res_channels * bytes_per_value
    image = 3 * width * height * bytes_per_value
    scale = 2 ** (len(vae_config.block_out_channels) - 1)
    side = tile_side(vae_config)
    tile_latent = side // scale
    if not tiled or (width <= side and height <= side):
        return int(per_pixel * width * height + image)
    tiles_area = _tiled_side_sum(width // scale, tile_latent, scale) * _tiled_side_sum(height // scale,
                                                                                         tile_latent, scale)
    one_tile = per_pixel * side * side
    return int(one_tile + 3 * tiles_area * bytes_per_value + 2 * image)


def module_bytes(*modules) -> int:
    return sum(p.numel() * p.element_size() for module in modules if module is not None
               for p in module.parameters())


def free_memory(device: torch.device | str) -> int | None:
    """Bytes a run may still use on `device`: free CUDA memory (plus torch's cached blocks), or the CPU's
    available RAM (psutil, else /proc/meminfo). None when unknown (e.g. MPS)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type != "cpu":
        return None
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        text = open("/proc/meminfo").read()
    except OSError:
        return None
    found = re.search(r"MemAvailable:\s+(\d+) kB", text)
    return int(found.group(1)) * 1024 if found else None


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


@dataclass(frozen=True)
class MemoryPlan:
    """Peak memory of one run in bytes, by part, and the device's free memory (None: unknown)."""

    device: str
    weights: int
    unet: int
    vae: int
    free: int | None
    tiled: bool

    @property
    def peak(self) -> int:
        return self.weights + max(self.unet, self.vae)

    @property
    def extra(self) -> int:
        """What the run needs beyond the weights already loaded."""
        return max(self.unet, self.vae)

    @property
    def fits(self) -> bool:
        return self.free is None or self.extra <= MARGIN * self.free

    def describe(self) -> str:
        text = (f"peak about {gib(self.peak)} on {self.device} (weights {gib(self.weights)}, UNet "
                f"{gib(self.unet)}, VAE decode {gib(self.vae)}{' tiled' if self.tiled else ''})")
        return text + (f", {gib(self.free)} free" if self.free is not None else "")

    def refusal(self, dtype: torch.dtype) -> str:
        advice = ["a smaller size"]
        if not self.tiled and self.vae >= self.unet:
            advice.append("VAE tiling (--vae-tiling on)")
        if self.device.startswith("cuda"):
            advice.append("model CPU offload (--offload on)")
        if dtype == torch.float32 and self.device != "cpu":
            advice.append("--dtype float16")
        return (f"not enough memory: this run needs {gib(self.extra)} beyond the loaded weights "
                f"({self.describe()}); try {', '.join(advice)}")


def plan_memory(unet_config, vae_config, size: tuple[int, int], *, weights: int, unet_dtype: torch.dtype,
                vae_dtype: torch.dtype, guided: bool, tiled: bool, tuned: bool = False, device: str = "cpu",
                free: int | None = None) -> MemoryPlan:
    """The plan for generating a `size` (width, height) image whose largest stage is that size."""
    width, height = size
    scale = 2 ** (len(vae_config.block_out_channels) - 1)
    latent_pixels = (width // scale) * (height // scale)
    unet = unet_activation_bytes(unet_config, latent_pixels, 2 if guided else 1, unet_dtype.itemsize, tuned)
    vae = vae_decode_bytes(vae_config, width, height, vae_dtype.itemsize, tiled)
    return MemoryPlan(device, weights, unet, vae, free, tiled)


def check_memory_fits(plan: MemoryPlan, dtype: torch.dtype) -> None:
    if not plan.fits:
        raise NotEnoughMemory(plan.refusal(dtype))


def is_out_of_memory(error: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(error, oom_type):
        return True
    if isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_memory() -> None:
    """Give freed tensors back: Python's cycles first, then torch's CUDA cache."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory_message(where: str) -> str:
    return (f"the device ran out of memory {where}; the memory was freed. Try a smaller size, VAE tiling "
            "(--vae-tiling on), model CPU offload (--offload on) or --dtype float16 on a GPU")
