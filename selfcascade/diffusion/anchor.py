"""Pivot anchoring: an upper stage keeps the low frequencies of its pivot (ILVR on the clean estimate).

Each upper stage of the cascade starts from the up-sampled pivot, re-noised to K, and the frozen UNet is free
to redraw everything from there. Above its training size it redraws the low frequencies too: lumpy circles
and grey or coloured blotches in flat backgrounds, which grow stage after stage (measured on the embedded
model at 8x: the up-sampled pivot decodes clean; the blotches appear while the upper stage denoises).

ILVR (Choi et al., "ILVR: Conditioning Method for Denoising Diffusion Probabilistic Models", ICCV 2021)
conditions sampling on a reference y by keeping the low-pass of y in the sample at every step. We apply it
to the model's clean estimate x0 rather than to z_t, so it wraps a noise predictor like the upper-stage
strategies and needs no change to the denoising loop:

    x0  = clean estimate from the model output (epsilon, v or sample prediction) and z_t
    x0' = x0 + w * (G_sigma(pivot_up) - G_sigma(x0))          pivot_up: the bilinearly up-sampled pivot
    output' = the model output that gives x0' from z_t

w = 1 pulls the low band of every clean estimate onto the pivot's (layout, background); the model draws what the
pivot cannot know (the frequencies the previous stage's resolution could not hold). w = 0 is the paper's
sampling. sigma = ANCHOR_SIGMA latent pixels of the stage: measured in benchmarks/upper_stage.py.
"""

from __future__ import annotations

import torch

from selfcascade.diffusion.prediction import Predictor, edits_clean_estimate
from selfcascade.diffusion.upper_stage import UpperStageSettings, gaussian_blur

ANCHOR_SIGMA = UpperStageSettings.anchor_sigma  # Gaussian low-pass width, latent pixels of the current stage
DEFAULT_ANCHOR = 1.0  # weight w of the pivot's low band (0: off, the paper's sampling)
# The embedded image model's width. Its upper stages flatten large circles into polygons during the last,
# low-noise steps (outline error per stage on 10 circle prompts at 256 px: 0.24 -> 0.62 -> 1.82 px; with
# strength 0.02, i.e. the up-sampled pivots alone, 1.17 px). A narrower band keeps more of the pivot's
# round outline: at 256 px 14 -> 27 of 48 pairs correct (seeds from 1000) and 13 -> 24 held out (from
# 5000), with the preset's guidance 2; edge sharpness 0.76 -> 0.72 (benchmarks/sweep.py; docs/method.md).
EMBEDDED_ANCHOR_SIGMA = 0.7


def anchored(predict: Predictor, pivot_up: torch.Tensor, alphas_cumprod: torch.Tensor, prediction_type: str,
             weight: float, sigma: float | None = None) -> Predictor:
    """Wrap `predict` so that its clean estimate keeps `pivot_up`'s low band with weight `weight`."""
    if weight <= 0:
        return predict
    sigma = ANCHOR_SIGMA if sigma is None else sigma
    pivot_low = gaussian_blur(pivot_up.float(), sigma)

    def keep_pivot_low_band(x0: torch.Tensor) -> torch.Tensor:
        reference = pivot_low.expand_as(x0) if pivot_low.shape[0] == 1 else pivot_low
        return x0 + weight * (reference - gaussian_blur(x0, sigma))

    return edits_clean_estimate(predict, alphas_cumprod, prediction_type, keep_pivot_low_band)
