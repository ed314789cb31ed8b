"""The project's own strategies, from no paper, named after what they do: frequency-split (two bands: the
dilated view's low frequencies, the full call's high ones) and frequency-pyramid (a view per octave)."""

from __future__ import annotations

import torch

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.upper_stage.context import Scale, StageContext
from selfcascade.diffusion.upper_stage.views import dilated_prediction, gaussian_blur


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
