"""HiDiffusion's RAU-Net (resolution-aware UNet calls) for the upper stages, and the two strategies on it.

HiDiffusion (Zhang et al., arXiv 2311.17528, Sec. 3.2) traces object duplication and distorted structure above
the training size to the UNet's deep blocks, which see feature maps s times larger than in training. RAU-Net
shrinks the features by the extra factor s at the first down-sampler and enlarges them by s again at the
matching up-sampler: the deep blocks then work on native-size feature maps, only the outermost blocks (edges,
texture) see the full resolution. HiDiffusion re-strides the down-sampling convolution and switches back to
the ordinary UNet for the last steps (its threshold T1); we pool before the unchanged down-sampler and
interpolate after the unchanged up-sampler, so no weight changes and any diffusers UNet (SD 1.x/2.x, SDXL,
AnimateDiff's UNetMotionModel, UNet3DConditionModel) takes it.

Why we use it (measured on the embedded model, benchmarks/sweep.py): at 4x the full-size call draws circles
as octagons -- the frozen model has never seen an arc that flat at the depth where it decides a shape, and it
straightens it during the last steps of each stage. With the full view as a RAU-Net call, circles come out
rounder (rau_pyramid, which uses it only for targets >= 4x the native size).
Below RAU_BELOW the ordinary call takes over: RAU-Net alone leaves soft, colour-fringed rims (HiDiffusion's
reason for T1), while the ordinary call re-flattens outlines when given more than the last few steps.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.upper_stage.context import StageContext
from selfcascade.diffusion.upper_stage.frequency import frequency_pyramid

RAU_BELOW = 60  # timesteps below this use the ordinary full-size call (HiDiffusion's T1); measured


def _pooled_side(side: int, factor: int, multiple: int) -> int:
    """The side the first down-sampler's input shrinks to: side / factor, kept a multiple of `multiple`
    (the latent multiple: more than the remaining down-samplings need), at least `multiple`."""
    return max(multiple, round(side / factor / multiple) * multiple)


def _first_samplers(unet: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The first down-sampler and the up-sampler that returns to its resolution (None when absent)."""
    downs = [block for block in getattr(unet, "down_blocks", []) if getattr(block, "downsamplers", None)]
    ups = [block for block in getattr(unet, "up_blocks", []) if getattr(block, "upsamplers", None)]
    if not downs or not ups:
        return None
    return downs[0].downsamplers[0], ups[-1].upsamplers[0]


@contextmanager
def resolution_aware(unet: nn.Module, scale: tuple[int, int], multiple: int):
    """Within this context the UNet's deep blocks see feature maps `scale` times smaller (RAU-Net).

    `multiple`: latent sides must be multiples of it (2 ** number of down-samplings). The tuned mode's skip
    residuals (sized for the ordinary call) are resized to the skips they are added to."""
    samplers = _first_samplers(unet)
    if samplers is None or scale == (1, 1):
        yield
        return
    down, up = samplers
    full: dict = {}

    def pooled(size: tuple[int, int]) -> tuple[int, int]:
        return tuple(_pooled_side(side, factor, multiple) for side, factor in zip(size, scale))

    def shrink(_module, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]  # AnimateDiff passes it by keyword
        full["size"] = tuple(x.shape[-2:])
        size = pooled(full["size"])
        if args:
            return (F.adaptive_avg_pool2d(x, size),) + tuple(args[1:]), kwargs
        return args, {**kwargs, "hidden_states": F.adaptive_avg_pool2d(x, size)}

    def enlarge(_module, _args, output):
        return F.interpolate(output, size=full["size"], mode="bilinear", align_corners=False)

    def resize_residuals(_module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        height, width = sample.shape[-2:]
        small = pooled((height, width))
        ratio = (small[0] / height, small[1] / width)

        def fit(residual: torch.Tensor) -> torch.Tensor:
            h, w = residual.shape[-2:]
            if h >= height:  # the skips before the first down-sampler keep the full size
                return residual
            size = (max(1, round(h * ratio[0])), max(1, round(w * ratio[1])))
            flat = residual.reshape(-1, *residual.shape[-3:])  # a video model's (B, C, F, h, w) too
            return F.adaptive_avg_pool2d(flat, size).reshape(*residual.shape[:-2], *size)

        if kwargs.get("down_block_additional_residuals") is not None:
            residuals = kwargs["down_block_additional_residuals"]
            kwargs["down_block_additional_residuals"] = tuple(fit(residual) for residual in residuals)
        if kwargs.get("mid_block_additional_residual") is not None:
            kwargs["mid_block_additional_residual"] = fit(kwargs["mid_block_additional_residual"])
        return args, kwargs

    hooks = [down.register_forward_pre_hook(shrink, with_kwargs=True), up.register_forward_hook(enlarge),
             unet.register_forward_pre_hook(resize_residuals, with_kwargs=True)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def resolution_aware_call(full, stage, below: int | None = None):
    """`full` as a RAU-Net call at timesteps >= `below` (default RAU_BELOW), the ordinary call under it."""
    threshold = RAU_BELOW if below is None else below

    def predict(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if int(t) < threshold or stage.unet is None:
            return full(latents, t)
        with resolution_aware(stage.unet, stage.scale, stage.multiple):
            return full(latents, t)

    return predict


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
    """HiDiffusion's RAU-Net (resolution_aware above): the full-size call with native-size deep
    blocks."""
    return _resolution_aware(full, stage)


def rau_pyramid(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """frequency-pyramid whose full view is a RAU-Net call: the dilated views set the layout, the
    resolution-aware full view draws outlines whose curvature the deep blocks have seen (rounder circles)."""
    return frequency_pyramid(_resolution_aware(full, stage), native, stage)
