"""What a strategy knows about its stage: the stage's scale over the native size, and the settings (the
measured tunables) handed down with it."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from torch import nn

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
