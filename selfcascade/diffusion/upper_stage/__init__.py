"""Upper-stage denoising strategies, one module per paper: how the frozen UNet predicts noise at a stage above
its training size.

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
                   size (hidiffusion).
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

Modules: context (a stage's scale and the settings handed down with it), views (the native-size views the
strategies share: DemoFusion's interleaved sub-lattices, MultiDiffusion's windows, the Gaussian low-pass),
frequency (the project's frequency-split and frequency-pyramid), demofusion, scalecrafter (with FouriScale),
hidiffusion (RAU-Net), registry (the names, their aliases, the cost of each, the predictor of a stage).

Batching: the s*s sub-lattices (or the windows) go to the UNet in chunks of s*s views, so one chunk holds
no more latent pixels than the full-size call: the memory peak of a stage does not grow.
"""

from selfcascade.diffusion.upper_stage.context import Scale, StageContext, UpperStageSettings, stage_scale, target_scale
from selfcascade.diffusion.upper_stage.demofusion import dilated
from selfcascade.diffusion.upper_stage.frequency import frequency_pyramid, frequency_split, pyramid_scales
from selfcascade.diffusion.upper_stage.hidiffusion import (
    RAU_BELOW,
    rau,
    rau_pyramid,
    resolution_aware,
    resolution_aware_call,
)
from selfcascade.diffusion.upper_stage.registry import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    STRATEGY_ALIASES,
    STRATEGY_NAMES,
    canonical_strategy,
    plain,
    relative_cost,
    strategy_that_runs,
    upper_stage_predictor,
)
from selfcascade.diffusion.upper_stage.scalecrafter import fouriscale, redilated, redilated_convolutions
from selfcascade.diffusion.upper_stage.views import (
    dilated_prediction,
    from_sublattices,
    gaussian_blur,
    in_chunks,
    to_sublattices,
    window_origins,
    windowed_prediction,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "RAU_BELOW",
    "STRATEGIES",
    "STRATEGY_ALIASES",
    "STRATEGY_NAMES",
    "Scale",
    "StageContext",
    "UpperStageSettings",
    "canonical_strategy",
    "dilated",
    "dilated_prediction",
    "fouriscale",
    "frequency_pyramid",
    "frequency_split",
    "from_sublattices",
    "gaussian_blur",
    "in_chunks",
    "plain",
    "pyramid_scales",
    "rau",
    "rau_pyramid",
    "redilated",
    "redilated_convolutions",
    "relative_cost",
    "resolution_aware",
    "resolution_aware_call",
    "stage_scale",
    "strategy_that_runs",
    "target_scale",
    "to_sublattices",
    "upper_stage_predictor",
    "window_origins",
    "windowed_prediction",
]
