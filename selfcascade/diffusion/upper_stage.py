"""Upper-stage denoising strategies: how the frozen UNet predicts noise at a stage above its training size.

A stage r >= 1 of the cascade denoises latents s times larger per side than the UNet's native latent size.
Its convolutions then see flat regions wider than anything in their training field and paint colour clouds
into them (measured on the embedded model: docs/method.md). Each strategy here is a function

    strategy(full, native, scale) -> predict          predict(latents, t) -> eps

where `full` is the ordinary guided noise predictor at the stage size (with the tuned mode's residuals, when
tuned) and `native` the frozen predictor for batches of native-size views. Strategies wrap predictors and
never branch inside the denoising loop (k-diffusion / A1111 CFGDenoiser style):

- plain            the full-size call (the paper's tuning-free Algorithm 2 as written).
- frequency-split  eps = lowpass(eps_dilated) + (eps_full - lowpass(eps_full)): layout and background from
                   the in-distribution dilated view, edges from the full view (the project's measured lead).
- frequency-pyramid  the same with a view per octave (full, 2x2, 4x2, ... s x s sub-lattices), each band of
                   the noise from the view nearest the native scale that still resolves it; the default
                   for hub models (at 4x it keeps circles rounder than the two-band split).
- demofusion       DemoFusion (arXiv 2311.16973, Sec. 3.3): dilated sampling on Gaussian-smoothed latents,
                   blended on a cosine schedule with overlapping native-size local windows (MultiDiffusion).
- scalecrafter     ScaleCrafter (arXiv 2310.07702, Sec. 3.2): the UNet's 3x3 convolutions dilated by s.
- fouriscale       FouriScale (arXiv 2403.12963): re-dilated convolutions behind a low-pass filter.
- hidiffusion      HiDiffusion's RAU-Net (arXiv 2311.17528): the full-size call with its deep blocks at native
                   size (selfcascade.diffusion.resolution_aware).
- hidiffusion-pyramid  frequency-pyramid whose full view is a HiDiffusion RAU-Net call (when the run's target
                   is >= 4x the native size): the embedded models' default (rounder circles where the full call
                   flattens them into octagons; benchmarks/sweep.py).

Names. A strategy taken from another paper is named after that paper (demofusion, scalecrafter, fouriscale,
hidiffusion), so a PNG's record, a benchmark table or the app's dropdown says where to read what ran; the
names describe the paper's denoising-side mechanism at one stage, not its whole pipeline (progressive
upscaling and skip residuals are the cascade's own pivots here, ScaleCrafter's dispersed convolutions and
noise-damped guidance and HiDiffusion's MSW-MSA attention are not implemented). The project's own strategies,
from no paper, are named after what they do (plain, frequency-split, frequency-pyramid), and a combination
after its parts (hidiffusion-pyramid: a frequency pyramid over a HiDiffusion full view). Earlier names
(dilated, redilated, rau, rau-pyramid: the mechanism, not its source) are kept as aliases in STRATEGY_ALIASES:
every place that reads a name (requests, the CLI, presets, PNG records, the app) accepts them and
`canonical_strategy` turns them into the current name, which is the one recorded.

Batching: the s*s sub-lattices (or the windows) go to the UNet in chunks of s*s views, so one chunk holds
no more latent pixels than the full-size call: the memory peak of a stage does not grow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.resolution_aware import resolution_aware_call

Scale = tuple[int, int]  # (rows, columns) factor of the stage's latent size over the native one


def stage_scale(latent_size: tuple[int, int], native_size: tuple[int, int]) -> Scale:
    """Integer factor by which a stage exceeds the UNet's native latent size (1 = native), the same on both
    axes: round(sqrt(stage area / native area)), which is side / native side for squares.

    One factor for both axes so that every s x s sub-lattice (and RAU-Net's pooled deep blocks) keeps the
    stage's aspect ratio. Per-axis factors squeezed non-square stages: a 96x48 stage 0 of the embedded model
    (24 x 12 latents, native 16 x 16) became two 12 x 12 views, each the image squeezed 2:1, on which the
    model drew round shapes that came out twice as wide (256x128: 0 of 32 correct).
    """
    ratio = (latent_size[0] * latent_size[1]) / (native_size[0] * native_size[1])
    factor = max(1, round(math.sqrt(ratio)))
    return factor, factor


def target_scale(latent_size: tuple[int, int], native_size: tuple[int, int]) -> Scale:
    """The run's target over the native size for the RAU-Net rule (UpperStageSettings.rau_min_target_scale): its
    longer side's factor, rounded, on both axes. The rule was measured on square targets and is kept per side
    for others."""
    factor = max(1, max(round(side / base) for side, base in zip(latent_size, native_size)))
    return factor, factor


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


@dataclass(frozen=True)
class UpperStageSettings:
    """The measured tunables of the upper stages, handed down with each stage (StageContext.settings); a
    request carries changes to them in `GenerationRequest.tuning` (benchmarks/sweep.py varies them that way).
    The defaults are the measured ones (docs/method.md, docs/experiments.md)."""

    frequency_split_sigma: float = 1.0  # frequency-split: low-pass sigma in latent pixels per unit of scale
    frequency_split_refresh: int = 2  # frequency-split: recompute the dilated view every this many steps
    pyramid_sigma: float = 0.5  # frequency-pyramid: band edge between views of scales a < b, sigma = b * this
    pyramid_refresh: int = 2  # frequency-pyramid: each dilated view recomputed every max(this, views) steps
    rau_min_target_scale: float = 4  # HiDiffusion strategies: smaller targets (per side) keep the ordinary call
    anchor_sigma: float = 2.0  # pivot anchoring: low-pass width in latent pixels, unless the model has its own

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))


class StageContext:
    """What a strategy needs to know about the stage it runs in."""

    def __init__(self, scale: Scale, native_latent: tuple[int, int], multiple: int, start_timestep: int,
                 unet: nn.Module | None = None, target_scale: Scale | None = None,
                 settings: UpperStageSettings | None = None):
        self.settings = settings or UpperStageSettings()
        self.scale = scale
        self.target_scale = target_scale or scale  # the run's final size over the native one
        self.native_latent = native_latent  # (h, w) the UNet was trained at
        self.multiple = multiple  # latent sizes must be multiples of this (2^down-samplings)
        self.start_timestep = max(1, start_timestep)  # K of this stage
        self.unet = unet


def plain(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """The ordinary full-size prediction (Algorithm 2 as the paper writes it)."""
    return full


def frequency_split(full: Predictor, native: Predictor, stage: StageContext,
                    sigma_per_scale: float | None = None, refresh: int | None = None) -> Predictor:
    """eps = G_sigma * eps_dilated + (eps_full - G_sigma * eps_full), sigma = s latent pixels by default.

    The dilated view sees the image at the model's native resolution, so its low frequencies (layout, flat
    backgrounds) are in distribution; the full view supplies the high frequencies (crisp edges) that the
    interleaved views alone render jagged. The low band changes slowly from step to step, so it may be
    reused for `refresh` steps (measured in benchmarks/upper_stage.py).
    """
    sigma = (stage.settings.frequency_split_sigma if sigma_per_scale is None else sigma_per_scale) * max(stage.scale)
    refresh = stage.settings.frequency_split_refresh if refresh is None else refresh
    cache: dict = {"calls": 0, "low": None}

    def predict(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps_full = full(latents, t)
        if cache["low"] is None or cache["calls"] % refresh == 0 or cache["low"].shape != eps_full.shape:
            cache["low"] = gaussian_blur(dilated_prediction(native, latents, t, stage.scale, stage.multiple), sigma)
        cache["calls"] += 1
        return cache["low"] + eps_full - gaussian_blur(eps_full, sigma)

    return predict




def pyramid_scales(scale: Scale) -> list[Scale]:
    """The dilated views of a frequency pyramid: per-axis factors 2, 4, ... below the stage's, then its own."""
    top, scales, k = max(scale), [], 2
    while k < top:
        scales.append((min(k, scale[0]), min(k, scale[1])))
        k *= 2
    return [*scales, scale]


def frequency_pyramid(full: Predictor, native: Predictor, stage: StageContext, sigma: float | None = None,
                      refresh: int | None = None) -> Predictor:
    """frequency-split with a view per octave: each band of the noise from the view whose scale suits it.

        eps = G_{s h}(eps_s) + sum over consecutive views a < b of (G_{a h}(eps_a) - G_{b h}(eps_a)),  G_0 = id

    With views 1 (the full call), 2, 4, ..., s (eps_k = the prediction assembled from the k x k
    interleaved sub-lattices, each k times closer to the native size), view a contributes the band between
    the Gaussian low-passes at sigma = a h (none for a = 1) and sigma = b h, b the next view's scale; the
    top view contributes everything below sigma = s h. Why: at 4x the two-band split gave the object's
    outline (a few latent px of wavelength) to the full view, which has never seen curvature that low and
    flattens circles into polygons; the 2x view has, nearly. Measured on the embedded model at 256 px (12
    circle prompts): shape failures 10 -> 3, edge sharpness unchanged; held-out table in docs/method.md. The
    band edge h trades shape for colour: the s x s views paint off-colour blemishes on the object, the full
    call flattens it; h = 0.5 (with upper-stage guidance 1) measured best on 48 pairs, h = 0.35 and 0.7 no better.
    Cost: the full call plus one dilated view per step (views refreshed in turn; reused in between).
    """
    h = stage.settings.pyramid_sigma if sigma is None else sigma
    scales = pyramid_scales(stage.scale)
    every = max(stage.settings.pyramid_refresh if refresh is None else refresh, len(scales))
    cache: dict = {"calls": 0, "views": [None] * len(scales)}

    def predict(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        views = cache["views"]
        for index, scale in enumerate(scales):
            stale = views[index] is None or views[index].shape != latents.shape
            if stale or (cache["calls"] - index) % every == 0:
                views[index] = dilated_prediction(native, latents, t, scale, stage.multiple)
        cache["calls"] += 1
        eps = full(latents, t)
        bands = [(1, eps)] + [(max(scale), view) for scale, view in zip(scales, views)]
        result = gaussian_blur(bands[-1][1], bands[-1][0] * h)
        for (low_scale, view), (high_scale, _) in zip(bands, bands[1:]):
            result = result + gaussian_blur(view, low_scale * h if low_scale > 1 else 0) - gaussian_blur(
                view, high_scale * h)
        return result

    return predict


def dilated(full: Predictor, native: Predictor, stage: StageContext, smoothing: float = 0.8,
            cosine_power: float = 3.0) -> Predictor:
    """DemoFusion's global + local paths: eps = c * eps_dilated(G(z)) + (1 - c) * eps_windows(z).

    c = ((1 + cos(pi * (1 - t / K))) / 2) ** cosine_power goes from 1 at the stage's first step (the global,
    dilated view sets the layout) to 0 at its end (the local windows refine edges); the latents are smoothed
    (sigma = smoothing * c) before the dilated split, so the interleaved views agree with each other.
    """
    rows, cols = stage.scale
    chunk = rows * cols

    def predict(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c = ((1 + math.cos(math.pi * (1 - float(t) / stage.start_timestep))) / 2) ** cosine_power
        eps = 0.0
        if c > 1e-3:
            smoothed = _match_statistics(gaussian_blur(latents, smoothing * c), latents)
            eps = c * dilated_prediction(native, smoothed, t, stage.scale, stage.multiple)
        if c < 1 - 1e-3:
            eps = eps + (1 - c) * windowed_prediction(native, latents, t, stage.native_latent,
                                                      chunk * latents.shape[0])
        return eps

    return predict


def _match_statistics(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Restore the mean and standard deviation that blurring took away (DemoFusion does the same)."""
    return (x - x.mean()) / x.std().clamp_min(1e-6) * reference.std() + reference.mean()


def _conv_layers(unet: nn.Module) -> Iterator[nn.Conv2d]:
    """The 3x3 convolutions of the UNet's ResNet blocks (ScaleCrafter re-dilates these, not conv_in/out)."""
    for name, module in unet.named_modules():
        if (isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.stride == (1, 1)
                and ".resnets." in f".{name}"):
            yield module


@contextmanager
def redilated_convolutions(unet: nn.Module, scale: Scale, lowpass: bool = False):
    """Set dilation = padding = s on the UNet's ResNet 3x3 convs; FouriScale adds a Gaussian low-pass
    (sigma = s/2) on each such conv's input so the dilated kernel does not alias."""
    layers = list(_conv_layers(unet))
    saved = [(layer.dilation, layer.padding) for layer in layers]
    hooks = []
    for layer in layers:
        layer.dilation, layer.padding = scale, scale
        if lowpass:
            hooks.append(layer.register_forward_pre_hook(
                lambda _m, args: (gaussian_blur(args[0], max(scale) / 2),) + tuple(args[1:])))
    try:
        yield
    finally:
        for layer, (dilation, padding) in zip(layers, saved):
            layer.dilation, layer.padding = dilation, padding
        for hook in hooks:
            hook.remove()


def redilated(full: Predictor, native: Predictor, stage: StageContext, lowpass: bool = False) -> Predictor:
    """ScaleCrafter: the full-size prediction with the ResNet convolutions dilated by the stage scale."""

    def predict(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with redilated_convolutions(stage.unet, stage.scale, lowpass):
            return full(latents, t)

    return predict


def fouriscale(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """FouriScale: re-dilated convolutions with a low-pass filter in front of each."""
    return redilated(full, native, stage, lowpass=True)


def _resolution_aware(full: Predictor, stage: StageContext) -> Predictor:
    """`full` as RAU-Net calls when the run's target is at least `rau_min_target_scale` times the native size.

    Measured on the embedded model (docs/method.md, Upper stages): at 4x RAU-Net lifts the strict score (65.6% ->
    71.9%, circles round instead of octagonal), at 2x it lowers it (89.1% -> 76.6%: it bows straight sides
    outwards, and at 2x the full call does not yet flatten circles). Applying it only at a 256 px run's 4x
    stage was worse than at both of its stages (30/48 against 36/48), so the rule is on the target."""
    if max(stage.target_scale) < stage.settings.rau_min_target_scale:
        return full
    return resolution_aware_call(full, stage)


def rau(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """HiDiffusion's RAU-Net (selfcascade.diffusion.resolution_aware): the full-size call with native-size deep
    blocks."""
    return _resolution_aware(full, stage)


def rau_pyramid(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """frequency-pyramid whose full view is a RAU-Net call: the dilated views set the layout, the
    resolution-aware full view draws outlines whose curvature the deep blocks have seen (rounder circles)."""
    return frequency_pyramid(_resolution_aware(full, stage), native, stage)


STRATEGIES: dict[str, Callable[..., Predictor]] = {
    "hidiffusion-pyramid": rau_pyramid,
    "hidiffusion": rau,
    "frequency-split": frequency_split,
    "frequency-pyramid": frequency_pyramid,
    "plain": plain,
    "demofusion": dilated,
    "scalecrafter": redilated,
    "fouriscale": fouriscale,
}
DEFAULT_STRATEGY = "frequency-pyramid"
# The names strategies had before they were named after their papers: still accepted wherever a name is read
# (PNGs, presets and scripts made with them), and turned into the current name by canonical_strategy.
STRATEGY_ALIASES = {"rau-pyramid": "hidiffusion-pyramid", "rau": "hidiffusion", "dilated": "demofusion",
                    "redilated": "scalecrafter"}
STRATEGY_NAMES = (*STRATEGIES, *STRATEGY_ALIASES)  # every name accepted, current ones first


def canonical_strategy(name):
    """The current name of a strategy given by its current or earlier name; anything else unchanged (so a
    check can still refuse it with its own message)."""
    return STRATEGY_ALIASES.get(name, name) if isinstance(name, str) else name


def relative_cost(name: str, settings: UpperStageSettings | None = None) -> float:
    """UNet work of one upper-stage step relative to the plain full-size call (latent pixels processed):
    for the time estimate shown before a run."""
    refresh = (settings or UpperStageSettings()).frequency_split_refresh
    return {"frequency-split": 1 + 1 / refresh, "frequency-pyramid": 2.0, "hidiffusion-pyramid": 1.8,
            "hidiffusion": 0.8, "demofusion": 2.5, "fouriscale": 1.1}.get(canonical_strategy(name), 1.0)


def strategy_that_runs(name: str, stage: StageContext) -> str:
    """The name of what `name` runs at this stage, for the metadata: the HiDiffusion strategies fall back to
    their ordinary call below `rau_min_target_scale` (hidiffusion-pyramid is then frequency-pyramid, hidiffusion
    the plain call)."""
    name = canonical_strategy(name)
    if name in ("hidiffusion", "hidiffusion-pyramid") and max(stage.target_scale) < stage.settings.rau_min_target_scale:
        return "plain" if name == "hidiffusion" else "frequency-pyramid"
    return name


def upper_stage_predictor(name: str, full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """The predictor for one upper stage; any strategy is the plain call when the stage is native size."""
    if stage.scale == (1, 1):
        return full
    return STRATEGIES[canonical_strategy(name)](full, native, stage)
