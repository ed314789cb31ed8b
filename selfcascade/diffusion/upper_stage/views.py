"""The native-size views the strategies share: DemoFusion's interleaved s x s sub-lattices (dilated sampling),
MultiDiffusion's overlapping windows, run in chunks no larger than one full-size call, and the Gaussian
low-pass the frequency bands and anchoring are cut with."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.upper_stage.context import Scale


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian low-pass over the last two axes, reflect-padded (no dark borders)."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(shape)


def _padded_lattice(size: int, factor: int, multiple: int) -> int:
    """Side of one sub-lattice: ceil(size / factor), rounded up to what the UNet accepts."""
    side = -(-size // factor)
    return -(-side // multiple) * multiple


def to_sublattices(latents: torch.Tensor, scale: Scale, multiple: int) -> torch.Tensor:
    """(N, C, H, W) -> (sr*sc*N, C, h, w): the interleaved views latents[..., i::sr, j::sc] (DemoFusion's
    dilated sampling), view-major so a batch of folded video frames stays whole videos. The latents are
    edge-padded so every view has the same UNet-compatible size."""
    (rows, cols), (height, width) = scale, latents.shape[-2:]
    h, w = _padded_lattice(height, rows, multiple), _padded_lattice(width, cols, multiple)
    padded = F.pad(latents, (0, w * cols - width, 0, h * rows - height), mode="replicate")
    n, c = latents.shape[:2]
    views = padded.reshape(n, c, h, rows, w, cols).permute(3, 5, 0, 1, 2, 4)
    return views.reshape(rows * cols * n, c, h, w)


def from_sublattices(views: torch.Tensor, scale: Scale, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of `to_sublattices`: interleave the views back and crop the padding."""
    rows, cols = scale
    c, h, w = views.shape[1:]
    n = views.shape[0] // (rows * cols)
    merged = views.reshape(rows, cols, n, c, h, w).permute(2, 3, 4, 0, 5, 1).reshape(n, c, h * rows, w * cols)
    return merged[..., : size[0], : size[1]]


def in_chunks(predict: Predictor, views: torch.Tensor, t: torch.Tensor, chunk: int) -> torch.Tensor:
    """Run `predict` over a batch of views, `chunk` at a time (memory stays that of one full-size call)."""
    return torch.cat([predict(views[i:i + chunk], t) for i in range(0, views.shape[0], chunk)])


def dilated_prediction(native: Predictor, latents: torch.Tensor, t: torch.Tensor, scale: Scale,
                       multiple: int) -> torch.Tensor:
    """Noise predicted on the s*s interleaved native-size sub-lattices, reassembled at the stage size."""
    views = to_sublattices(latents, scale, multiple)
    eps = in_chunks(native, views, t, scale[0] * scale[1] * latents.shape[0])
    return from_sublattices(eps, scale, tuple(latents.shape[-2:]))


def window_origins(size: int, window: int) -> list[int]:
    """Start positions of overlapping windows (stride window/2) that cover [0, size) exactly."""
    if size <= window:
        return [0]
    count = math.ceil((size - window) / (window // 2)) + 1
    return sorted({round(i * (size - window) / (count - 1)) for i in range(count)})


def windowed_prediction(native: Predictor, latents: torch.Tensor, t: torch.Tensor, window: tuple[int, int],
                        chunk: int) -> torch.Tensor:
    """MultiDiffusion (Bar-Tal et al. 2023): average the noise of overlapping native-size windows."""
    height, width = latents.shape[-2:]
    wh, ww = min(window[0], height), min(window[1], width)
    boxes = [(y, x) for y in window_origins(height, wh) for x in window_origins(width, ww)]
    crops = torch.cat([latents[..., y:y + wh, x:x + ww] for y, x in boxes])
    eps_crops = in_chunks(native, crops, t, chunk).split(latents.shape[0])
    total, count = torch.zeros_like(latents), torch.zeros_like(latents[:, :1])
    for (y, x), eps in zip(boxes, eps_crops):
        total[..., y:y + wh, x:x + ww] += eps
        count[..., y:y + wh, x:x + ww] += 1
    return total / count
