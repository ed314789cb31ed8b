"""Pivot consensus: the first stage hands on the mean of several clean estimates of its sample.

A sample's outline carries the model's own per-sample error: a circle a fraction of a pixel lumpy, a square
side that ripples with the VAE's latent lattice. Every upper stage up-samples its pivot and keeps the pivot's
low band (pivot anchoring), so that error grows with the scale factor: at 4x a 0.3 px bump at 64 px is 1.2 px,
near the judge's 1.5 px limit (benchmarks/stage_outlines.py: 0.24 -> 0.56 -> 1.42 px per stage).

Re-noising the clean sample z_0 to a small timestep t* and predicting x_0 again (one guided UNet call) gives
an estimate that keeps the layout and redraws the edge with a fresh draw of that error. Averaging K of them
in latent space, every other one on the horizontally mirrored latents and mirrored back (so that an error tied
to the orientation cancels too), keeps the edge where the estimates agree. This is test-time self-ensembling
(as for super-resolution: Lim et al., EDSR, 2017, Sec. 3.3; Timofte et al., "Seven ways to improve
example-based single image super resolution", 2016) applied to the diffusion model's own x_0 prediction.
It runs at the native size only, where the model is in its training distribution: averaged after an upper
stage or on the result, the estimates blur edges (measured: sharpness 0.77 -> 0.74 and 0.70, fewer correct).

Cost: K guided UNet passes at the first stage's size, batched (K = 4: one call beside the 40 of a 40-step
first stage; 1-2% of a 256 px image). Measured on the embedded model (benchmarks/sweep.py, composition.py;
docs/method.md "Pivot consensus"): tuning-free at 256 px 45 -> 50 of 64 pairs (seeds from 1000) and 49 -> 51 held out
(from 7000), tuned even; no gain at 512 px. Images only: on the embedded video model, unmirrored (a mirrored
clip moves against its prompt), it moved 4 of 128 frames, not enough to offer it there.
"""

from __future__ import annotations

import torch

from selfcascade.diffusion.prediction import Predictor, alpha_bar_at, clean_estimate

CONSENSUS_TIMESTEP = 100  # t* (of 1000 training timesteps): 100 and 200 measured alike, 300 worse in place
MAX_CONSENSUS = 16
EMBEDDED_CONSENSUS = 4  # the embedded image model's (its selfcascade.json): 4 and 8 measured alike
# Views per UNet call. Four native-size views hold no more latent pixels than one call of a 2x stage, so the
# cascade's memory peak (an upper stage) does not grow.
VIEWS_PER_CALL = 4


def views_that_run(requested: int, stages: int, video: bool, pivot_image: bool) -> int:
    """Estimates a run averages: `requested` for an image cascade that samples its own first stage, else 0
    (one stage has nothing to enlarge; an uploaded first stage is the user's; videos: not measured to gain).
    One estimate is the sample itself, so 1 counts as 0."""
    runs = stages > 1 and not video and not pivot_image and requested > 1
    return requested if runs else 0


def consensus_latents(pivot: torch.Tensor, predict: Predictor, scheduler, generator: torch.Generator,
                      views: int, timestep: int | None = None) -> torch.Tensor:
    """The mean of `views` clean estimates of `pivot` re-noised to `timestep` (every other view mirrored).

    `predict` is the stage's guided noise predictor (a batch of views of one prompt); `views` <= 1 returns
    `pivot` unchanged. Up to VIEWS_PER_CALL views share one UNet call."""
    if views <= 1:
        return pivot
    timestep = CONSENSUS_TIMESTEP if timestep is None else timestep
    t = torch.tensor(int(timestep))
    alpha_bar = alpha_bar_at(scheduler.alphas_cumprod, timestep, pivot)
    mirrored = [view % 2 == 1 for view in range(views)]
    total = torch.zeros(pivot.shape, dtype=torch.float32, device=pivot.device)
    for first in range(0, views, VIEWS_PER_CALL):
        chunk = mirrored[first:first + VIEWS_PER_CALL]
        clean = torch.cat([torch.flip(pivot, dims=[-1]) if flip else pivot for flip in chunk]).float()
        # z_t = sqrt(a) x_0 + sqrt(1 - a) eps, the form the UNet takes (a scheduler's add_noise may be another:
        # Euler's is x_0 + sigma eps, which its scale_model_input would have to undo at the right step).
        noise = torch.randn(clean.shape, generator=generator, dtype=torch.float32).to(clean.device)
        noisy = alpha_bar.sqrt() * clean + (1 - alpha_bar).sqrt() * noise
        with torch.no_grad():
            output = predict(noisy.to(pivot.dtype), t)
        estimates = clean_estimate(output.float(), noisy, alpha_bar, scheduler.config.prediction_type)
        for flip, estimate in zip(chunk, estimates.chunk(len(chunk))):
            total += torch.flip(estimate, dims=[-1]) if flip else estimate
    return (total / views).to(pivot.dtype)
