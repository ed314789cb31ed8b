"""FreeInit (Wu et al., ECCV 2024, arXiv 2312.07537) for a video's first stage: sample once, diffuse the result
back to t = T with the same starting noise, keep its spatio-temporal low frequencies, take the high ones from
fresh noise, and sample again.

Why: a trained model's clean videos have low frequencies (layout, background colour) that are consistent over
the frames, but the Gaussian noise a sampler starts from has none, and the train/inference gap at t = T
(the forward process never reaches pure noise: sqrt(a_bar_T) ~ 0.07 for SD's schedule) lets every frame pick
its own low frequencies. Re-initialising from the first result's diffused low band starts the second pass
with one layout for all frames. The filter and the frequency mix are diffusers' own
(`diffusers.pipelines.free_init_utils.FreeInitMixin`, which AnimateDiffPipeline uses inside its own loop);
here they serve the cascade's loop, for every video family.

Only the first stage starts from noise; the upper stages start from its pivot and keep what it fixed.
"""

from __future__ import annotations

import torch
from diffusers.pipelines.free_init_utils import FreeInitMixin

# diffusers' defaults (the paper's): a 4th-order Butterworth low pass at 0.25 of the band, in space and time.
METHOD = "butterworth"
ORDER = 4
SPATIAL_STOP = 0.25
TEMPORAL_STOP = 0.25


def low_pass(frames: int, channels: int, height: int, width: int, device) -> torch.Tensor:
    """The (1, C, F, H, W) FreeInit low-pass filter, in fftshift order (diffusers' own construction)."""
    return FreeInitMixin._get_free_init_freq_filter(None, (1, channels, frames, height, width), device, METHOD,
                                                    ORDER, SPATIAL_STOP, TEMPORAL_STOP)


def reinitialised(clean: torch.Tensor, start_noise: torch.Tensor, scheduler, frames: int,
                  generator: torch.Generator) -> torch.Tensor:
    """New starting latents from a finished first pass.

    clean, start_noise: folded (videos * frames, C, H, W), frames fastest, as the cascade holds them (the
    noise unit-variance, before the scheduler's init_noise_sigma). Returns the next pass's start, scaled by
    init_noise_sigma, same layout and dtype as `clean`."""
    count, channels, height, width = clean.shape
    videos = count // frames

    def unfold(folded: torch.Tensor) -> torch.Tensor:
        return folded.reshape(videos, frames, channels, height, width).permute(0, 2, 1, 3, 4).float()

    last = torch.full((videos,), scheduler.config.num_train_timesteps - 1, dtype=torch.long)
    diffused = scheduler.add_noise(unfold(clean), unfold(start_noise), last.to(clean.device))
    fresh = torch.randn(diffused.shape, generator=generator, dtype=torch.float32).to(clean.device)
    mixed = FreeInitMixin._apply_freq_filter(None, diffused, fresh, low_pass(frames, channels, height, width,
                                                                             clean.device))
    folded = mixed.permute(0, 2, 1, 3, 4).reshape(count, channels, height, width)
    return (folded * scheduler.init_noise_sigma).to(clean.dtype)
