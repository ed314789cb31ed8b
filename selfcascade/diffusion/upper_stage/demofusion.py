"""DemoFusion (Du et al., arXiv 2311.16973, Sec. 3.3) at one stage: dilated sampling on smoothed latents for
the layout, blended on a cosine schedule into MultiDiffusion windows for the detail."""

from __future__ import annotations

import math

import torch

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.upper_stage.context import StageContext
from selfcascade.diffusion.upper_stage.views import dilated_prediction, gaussian_blur, windowed_prediction


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
