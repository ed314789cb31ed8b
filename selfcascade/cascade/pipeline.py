"""Algorithm 2 of the paper (Self-Cascade, tuning-free or tuned) and two baselines, as one generator of events.

    stage 0:       z^0 = denoise(noise) at the first stage size, over the full schedule
    stage r >= 1:  z_K = sqrt(a_bar_K) * up(z^{r-1}) + sqrt(1 - a_bar_K) * eps,  K = strength * T
                   z^r = denoise(z_K) from K to 0 with the same frozen model at the new size

`up` is bilinear resize of the clean latent pivot (the paper's), or with `pivot_up="pixel"` decode -> Lanczos
in pixel space -> encode (always so in the hires-fix baseline). `tuned` is tuning-free plus the trained feature
upsamplers, which add phi(pivot skip features, t) to the UNet's skips at every step. `direct` is one stage at
the target size. A video's stage 0 runs `free_init` more passes, each started from the last one's diffused
low frequencies (FreeInit, selfcascade.diffusion.free_init), so its frames share one background and layout. An
image's stage 0 hands on the mean of a few clean estimates of its sample when the model asks for it
(pivot consensus, selfcascade.diffusion.consensus): the outline the upper stages magnify is where they agree.

Around the stages: a run that the memory plan says cannot fit is refused before it starts
(NotEnoughMemory), latents holding NaN/Inf after a stage stop it (NonFiniteResult), and an out-of-memory
error that still happens frees the memory and becomes OutOfMemory: all InvalidRequest, with a message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from selfcascade.adapters.files import load_adapter
from selfcascade.adapters.upsampler import encoder_skips
from selfcascade.cascade.estimate import memory_plan
from selfcascade.cascade.plan import RunPlan, resolve_run
from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.cascade.stages import Size
from selfcascade.diffusion.anchor import anchored
from selfcascade.diffusion.consensus import consensus_latents
from selfcascade.diffusion.free_init import reinitialised
from selfcascade.diffusion.motion_steering import steered
from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.sampling import denoise, guided_predictor, initial_noise, make_scheduler, renoise, schedule
from selfcascade.diffusion.upper_stage import (
    StageContext,
    stage_scale,
    strategy_that_runs,
    target_scale,
    upper_stage_predictor,
)
from selfcascade.models.base import DiffusionModel
from selfcascade.models.loader import load_model
from selfcascade.models.lora import apply_loras, parse_loras, record_of
from selfcascade.models.memory import (
    OutOfMemory,
    check_memory_fits,
    is_out_of_memory,
    out_of_memory_message,
    release_memory,
)
from selfcascade.models.names import public_name
from selfcascade.models.precision import check_finite, dtype_name, unet_overflow_hint
from selfcascade.models.video import check_video_model


@dataclass
class StageStarted:
    stage: int
    stages: int
    size: Size
    steps: int  # denoising steps this stage will run
    strategy: str = "-"  # upper-stage denoising strategy ("-": native size, the plain call)


@dataclass
class StepDone:
    stage: int
    step: int  # 1-based within the stage
    steps: int
    latents: torch.Tensor  # the current (noisy) latents: for a cheap live preview
    timestep: int | None = None  # the scheduler's timestep this step denoised


@dataclass
class StageDone:
    stage: int
    stages: int
    size: Size
    seconds: float
    pivot: torch.Tensor  # this stage's clean latents: the next stage's pivot
    preview: Image.Image | None  # the pivot decoded (None when previews are off); a video's: a strip of frames
    frames: list[Image.Image] | None = None  # a video's pivot decoded, every frame (None for images)


@dataclass
class Finished:
    image: Image.Image  # the result (a video's first frame)
    seconds: float
    metadata: dict = field(default_factory=dict)
    frames: list[Image.Image] | None = None  # a video's frames (None for images)


Event = StageStarted | StepDone | StageDone | Finished


def upsample_pivot(model: DiffusionModel, pivot: torch.Tensor, size: Size, how: str = "latent",
                   tiling: str = "auto") -> torch.Tensor:
    """The pivot brought to the next stage's latent size: `how` = "latent", bilinear on the latents (the `up`
    of Algorithm 2), or "pixel": decode, Lanczos, encode (request.PIVOT_UPSAMPLINGS says why).

    Per image of the batch: a video's frames are folded into it (models/video.py), so space is resized per frame."""
    latent_size = (size[1] // model.vae_scale_factor, size[0] // model.vae_scale_factor)
    if how == "pixel":
        images = model.decode(pivot, tiling)
        return model.encode([image.resize(size, Image.Resampling.LANCZOS) for image in images], tiling)
    return F.interpolate(pivot, size=latent_size, mode="bilinear", align_corners=False)


def pivot_from_image(model: DiffusionModel, image: Image.Image, size: Size, messages: list[str],
                     tiling: str = "auto") -> torch.Tensor:
    """A user's image as the stage-0 pivot: resized (centre-cropped to the aspect) to `size`, encoded."""
    image = image.convert("RGB")
    if image.size != size:
        messages.append(f"your image ({image.width}x{image.height}) was resized to {size[0]}x{size[1]}, "
                        "the first stage")
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    return model.encode([image], tiling)


def tuned_unet_inputs(model: DiffusionModel, upsamplers, pivot: torch.Tensor, conditioning):
    """UNet inputs of the tuned mode (paper Eq. 6): phi_n(h_{n,0}^{r-1}, t) added to the skips at every step.

    h_{n,0}^{r-1} are the frozen encoder's skip features of the clean pivot at t = 0, so they and the
    t-independent trunk of phi are computed once per stage; each step adds only phi's timestep modulation.
    """
    pivot_batch = torch.cat([pivot, pivot]) if conditioning.guided else pivot
    skips = encoder_skips(model, pivot_batch, torch.zeros((), dtype=torch.long), conditioning.expand(pivot.shape[0]))
    trunks: dict = {}  # per latent size: the t-independent part of phi, once per stage

    def unet_inputs(latents: torch.Tensor, timestep: torch.Tensor) -> dict:
        if int(timestep) < upsamplers.config.stop_below_timestep:
            return {}
        size = tuple(latents.shape[-2:])
        if size not in trunks:
            trunks[size] = upsamplers.prepare(skips, size)
        residuals, mid = upsamplers.residuals_from(trunks[size], timestep, size)
        return {"down_block_additional_residuals": residuals, "mid_block_additional_residual": mid}

    return unet_inputs


def stage_predictor(model: DiffusionModel, plan: RunPlan, target: Size, conditioning, latents: torch.Tensor,
                    timesteps: torch.Tensor, unet_inputs, scheduler, pivot_up: torch.Tensor | None
                    ) -> tuple[Predictor, str]:
    """The noise predictor of one stage and the name of its upper-stage strategy ("-" at native size).

    A stage above the model's native size runs the plan's upper-stage strategy; a stage with a pivot keeps the
    pivot's low band (pivot anchoring, ILVR) when the plan's weight > 0 and is guided with the plan's
    upper-stage guidance (`conditioning` must match: see Prompts). `target` is the run's target size in pixels."""
    guidance = plan.guidance_for(pivot_up is not None)
    full = guided_predictor(model, conditioning, guidance, unet_inputs)
    native_latent = model.native_latent_size
    scale = stage_scale(tuple(latents.shape[-2:]), native_latent)
    predict, name = full, "-"
    if scale != (1, 1):
        native = guided_predictor(model, conditioning, guidance)
        target_latent = target_scale((target[1] // model.vae_scale_factor, target[0] // model.vae_scale_factor),
                                     native_latent)
        context = StageContext(scale, native_latent, model.latent_multiple, int(timesteps[0]), model.unet,
                               target_latent, plan.settings)
        predict = upper_stage_predictor(plan.strategy, full, native, context)
        name = strategy_that_runs(plan.strategy, context)
    if pivot_up is not None:
        predict = anchored(predict, pivot_up, scheduler.alphas_cumprod, scheduler.config.prediction_type,
                           plan.anchor, plan.anchor_sigma)
    return predict, name


def steered_first_stage(predict: Predictor, request: VideoRequest, plan: RunPlan, model: DiffusionModel,
                        scheduler) -> Predictor:
    """A video's first stage, steered along the plan's direction in its noisiest steps (motion_steering)."""
    if plan.motion is None:
        return predict
    from_timestep = round(scheduler.config.num_train_timesteps * (1 - request.steer))
    return steered(predict, scheduler.alphas_cumprod, scheduler.config.prediction_type, model.frames, plan.motion,
                   request.travel, from_timestep=from_timestep)


class Prompts:
    """The request's prompt encoded once per kind: with the negative prompt for stages guided above 1,
    without it for unguided ones (one UNet pass per step instead of two)."""

    def __init__(self, model: DiffusionModel, request: GenerationRequest, plan: RunPlan):
        self.model, self.request, self.plan, self.encoded = model, request, plan, {}

    def for_stage(self, has_pivot: bool):
        guided = self.plan.guidance_for(has_pivot) > 1
        if guided not in self.encoded:
            self.encoded[guided] = self.model.encode_prompt(self.request.prompt, self.request.negative_prompt, guided)
        return self.encoded[guided]


def generate(request: GenerationRequest, model: DiffusionModel | None = None,
             cancel: threading.Event | None = None, previews: bool = True,
             pivot_image: Image.Image | None = None) -> Iterator[Event]:
    """Run `request`, yielding StageStarted, StepDone..., StageDone per stage, then Finished.

    With `pivot_image`, that image replaces stage 0 ("upscale my image") and the cascade continues from it.
    A VideoRequest runs the same stages on a video model (frames folded into the batch, kept at every stage);
    its StageDone and Finished events carry every frame.
    Raises InvalidRequest (bad settings, an image model for a video or the reverse, before any model work;
    NotEnoughMemory, NonFiniteResult, OutOfMemory) and Cancelled (when `cancel` is set).
    """
    video = isinstance(request, VideoRequest)
    request.check()  # before loading a model: bad numbers fail fast
    model = model or load_model(request.model or request.default_model, request.dtype, request.vae, request.offload)
    check_video_model(model, video)
    apply_loras(model, parse_loras(request.loras))
    if video:
        model = model.for_frames(request.frames)
    check_memory_fits(memory_plan(model, request), model.dtype)
    stages = _stages(request, model, video, cancel, previews, pivot_image)
    try:
        yield from stages
        return
    except Exception as error:  # noqa: BLE001 - only out-of-memory is handled; the rest is re-raised
        if not is_out_of_memory(error):
            raise
    # Outside the except block, so the traceback (and the tensors its frames hold) is gone.
    stages.close()
    del stages
    release_memory()
    raise OutOfMemory(out_of_memory_message(f"at {request.width}x{request.height}"))


@dataclass
class _Run:
    """What one cascade run carries from stage to stage (read by the loop and its helpers)."""

    request: GenerationRequest
    plan: RunPlan  # the request resolved against the model: every default already decided
    model: DiffusionModel
    video: bool
    generator: torch.Generator
    prompts: Prompts
    upsamplers: object | None  # the tuned mode's FeatureUpsamplers


@dataclass
class _StageStart:
    """A stage ready to denoise: its schedule, its first latents and, above stage 0, its up-sampled pivot."""

    scheduler: object
    timesteps: torch.Tensor
    latents: torch.Tensor
    pivot_up: torch.Tensor | None
    passes: int  # 1, or 1 + FreeInit's extra passes on a video's first stage


def _stages(request: GenerationRequest, model: DiffusionModel, video: bool, cancel: threading.Event | None,
            previews: bool, pivot_image: Image.Image | None) -> Iterator[Event]:
    """The stage loop of the paper's Algorithm 2.

        1. plan the stages (scale decomposition, Sec. 3.1): r = 0 .. R
        2. stage 0 from noise: z^0_T ~ N(0, I), denoised by the frozen model (or the user's image is z^0_0)
        3. stage r >= 1: z^r_K = sqrt(abar_K) up(z^{r-1}_0) + sqrt(1 - abar_K) eps   (re-noise the pivot to K)
        4. denoise z^r_K -> z^r_0 with the stage's predictor (upper-stage strategy, anchoring, tuned phi_n)
        5. record the stage (its pivot for the next, a preview), then the run's metadata
    """
    plan = resolve_run(request, model, pivot_image is not None)  # 1.
    started, sizes, stage_seconds, strategies = time.perf_counter(), list(plan.sizes), [], []
    state = _Run(request, plan, model, video, torch.Generator().manual_seed(int(request.seed)),
                 Prompts(model, request, plan), load_adapter(plan.adapter, model) if plan.adapter else None)
    pivot = None
    if pivot_image is not None:  # 2. "upscale my image": the image is stage 0's result
        pivot = pivot_from_image(model, pivot_image, sizes[0], plan.stages.messages, request.vae_tiling)
        if len(sizes) > 1:  # a one-stage plan becomes img2img at that size
            sizes.pop(0)
    for index, size in enumerate(sizes):
        stage_started = time.perf_counter()
        stage = _start_stage(state, size, pivot)  # 2. noise, or 3. up(pivot) re-noised to K
        predict, strategy = _predictor_of(state, stage, pivot)
        strategies.append(strategy)
        yield StageStarted(index, len(sizes), size, len(stage.timesteps) * stage.passes, strategy)
        latents = yield from _denoise_stage(state, stage, predict, index, cancel)  # 4.
        check_finite(latents, f"the latents after stage {index + 1} ({size[0]}x{size[1]})",
                     unet_overflow_hint(model.dtype))
        last = index == len(sizes) - 1  # 5.
        pivot = latents
        if stage.pivot_up is None and not last and not video:  # the native first stage of a cascade
            pivot = consensus_latents(latents, predict, stage.scheduler, state.generator, plan.consensus)
        frames = model.decode(pivot, request.vae_tiling) if (previews or last) else None
        image = frames and (model.strip(frames) if video else frames[0])
        stage_seconds.append(round(time.perf_counter() - stage_started, 3))
        yield StageDone(index, len(sizes), size, stage_seconds[-1], pivot, image, frames if video else None)
    seconds = time.perf_counter() - started
    metadata = run_metadata(state, sizes, stage_seconds, strategies, seconds, pivot_image is not None)
    yield Finished(frames[0], seconds, metadata, frames if video else None)


def _start_stage(state: _Run, size: Size, pivot: torch.Tensor | None) -> _StageStart:
    """Stage 0 starts from noise (with FreeInit's extra passes on a video); a later stage from its pivot
    up-sampled to `size` and re-noised to K = strength x T (Algorithm 2, line 3)."""
    scheduler = make_scheduler(state.model, state.request.scheduler)
    if pivot is None:
        latents = initial_noise(state.model, scheduler, state.model.latent_shape(size), state.generator)
        passes = 1 + state.plan.free_init
        return _StageStart(scheduler, schedule(scheduler, state.request.steps, 1.0), latents, None, passes)
    timesteps = schedule(scheduler, state.request.steps, state.request.strength)
    pivot_up = upsample_pivot(state.model, pivot, size, state.plan.pivot_upsampling, state.request.vae_tiling)
    return _StageStart(scheduler, timesteps, renoise(scheduler, pivot_up, timesteps[:1], state.generator), pivot_up, 1)


def _predictor_of(state: _Run, stage: _StageStart, pivot: torch.Tensor | None) -> tuple[Predictor, str]:
    """The stage's noise predictor and strategy name: tuned residuals from the pivot's features (Eq. 6) when an
    adapter is loaded, the upper-stage strategy and anchoring (stage_predictor), a video's first-stage steering."""
    conditioning = state.prompts.for_stage(pivot is not None)
    unet_inputs = (tuned_unet_inputs(state.model, state.upsamplers, pivot, conditioning)
                   if state.upsamplers is not None and pivot is not None else None)
    target = (state.request.width, state.request.height)
    predict, strategy = stage_predictor(state.model, state.plan, target, conditioning, stage.latents,
                                        stage.timesteps, unet_inputs, stage.scheduler, stage.pivot_up)
    if state.video and pivot is None:
        predict = steered_first_stage(predict, state.request, state.plan, state.model, stage.scheduler)
    return predict, strategy


def _denoise_stage(state: _Run, stage: _StageStart, predict: Predictor, index: int,
                   cancel: threading.Event | None) -> Iterator[Event]:
    """Denoise the stage (yielding StepDone per step) and return its final latents. With FreeInit, each pass
    after the first starts from the last pass's diffused low frequencies."""
    latents, start, timesteps = stage.latents, stage.latents, stage.timesteps
    total = len(timesteps) * stage.passes
    for again in range(stage.passes):
        if again:
            latents = reinitialised(latents, start / stage.scheduler.init_noise_sigma, stage.scheduler,
                                    state.model.frames, state.generator)
            timesteps = schedule(stage.scheduler, state.request.steps, 1.0)
        for info in denoise(stage.scheduler, latents, timesteps, predict, state.generator, cancel):
            latents = info.latents
            yield StepDone(index, again * len(timesteps) + info.index + 1, total, latents, info.timestep)
    return latents


def run_metadata(state: _Run, sizes: list[Size], stage_seconds: list[float], strategies: list[str], seconds: float,
                 pivot_image: bool) -> dict:
    """The record of a run, written into its PNG or video: the request, and what each setting became. Models,
    adapters and VAEs by their public names, never a server path."""
    request, model, plan = state.request, state.model, state.plan
    cascaded = len(sizes) > 1
    return {
        **request.to_metadata(),
        "model": public_name(model.name if request.model is None else request.model),
        "adapter": public_name(plan.adapter or request.adapter),
        "vae": public_name(request.vae),
        "loras": record_of(parse_loras(request.loras), public_name),
        "stage_sizes": [f"{w}x{h}" for w, h in sizes],
        "stage_seconds": stage_seconds,
        "upper_stage": strategies,  # per stage: the upper-stage denoising strategy ("-" at native size)
        "pivot_upsampling": plan.pivot_upsampling if cascaded else "-",
        "pivot_anchor": plan.anchor if cascaded or pivot_image else 0.0,
        "pivot_anchor_sigma": plan.anchor_sigma,  # latent px of the anchored band
        "pivot_consensus": plan.consensus,  # clean estimates averaged into the first stage's pivot (0: none)
        "dtype_used": dtype_name(model.dtype),  # what "auto" became on this device
        "vae_dtype": dtype_name(model.vae.dtype),  # float32 when the VAE's config sets force_upcast
        "seconds": round(seconds, 3),
        "messages": plan.stages.messages,
        "pivot_image": pivot_image,
        **({"motion_direction": plan.motion or "-"} if state.video else {}),
        "method": "Self-Cascade (arXiv 2402.10491)",
    }


def run(request: GenerationRequest, model: DiffusionModel | None = None, **kwargs) -> Finished:
    """Run to the end without streaming; returns the Finished event."""
    for event in generate(request, model, **kwargs):
        if isinstance(event, Finished):
            return event
    raise RuntimeError("the cascade ended without a result")
