"""Algorithm 1 of the paper: fine-tune only the time-aware feature upsamplers on a few high-resolution images.

    x0 ~ data at the stage size (random crops), c its caption (10% dropped to "")
    z0 = E(x0);  pivot = E(downsample_2x(x0))        (downsampled ground truth as the pivot, as in the paper)
    t ~ U{1..K};  z_t = sqrt(a_t) z0 + sqrt(1 - a_t) eps
    loss = || eps_theta(z_t, t, c; skips + phi(skips(pivot, 0), t)) - eps ||^2   (or the v-target)

With objective "restore" (the default, measured better on the embedded model: docs/results.md "Tuned mode") z_t is
noised from the pivot up-sampled as an upper stage starts from it, up(pivot), and the loss is on the clean estimate:
    z_t = sqrt(a_t) up(pivot) + sqrt(1 - a_t) eps;   loss = || x0_theta(z_t, t, ...) - z0 ||^2
so the upsamplers learn what the cascade needs at inference, where z_t never holds the true image: to redraw
what the small size lost (lumpy outlines, soft edges). "keep" is the paper's loss above.

Everything but phi is frozen: the frozen terms (z0, the pivot's skips, c) are computed once per distinct
crop and caption (selfcascade.training.features). A generator of progress events (start, step, loss,
speed, ETA, the saved adapter); a checkpoint every N steps; resume from a saved adapter. Cancel
(cooperative) keeps what was learned: the weights of the last finished step are saved and TrainingDone
says it stopped. Data-parallel under torchrun or `accelerate launch` (selfcascade.training.distributed), with
accelerate's mixed precision and gradient accumulation; the main process alone writes the adapter, its
model card and its training log.

The request, its limits and the progress events are in selfcascade.training.request.

The record an adapter carries (config.json's `training`, its metadata and model card) counts the steps
actually trained: a run stopped at step 166 of 400 records 166 (and `planned_steps` 400, `ended` "stopped"),
and a periodic checkpoint at step 100 records 100 (`ended` "checkpoint"; a killed run leaves that one).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import broadcast_object_list
from diffusers import DDPMScheduler

from selfcascade.adapters.designs import default_width
from selfcascade.adapters.files import load_adapter, save_adapter
from selfcascade.adapters.upsampler import new_upsamplers
from selfcascade.cascade.presets import request_defaults
from selfcascade.diffusion.prediction import clean_estimate
from selfcascade.errors import Cancelled
from selfcascade.models.base import DiffusionModel
from selfcascade.models.loader import load_model
from selfcascade.models.names import public_name
from selfcascade.training.data.clips import TrainingClips, as_clip_sources, refuse_clips
from selfcascade.training.data.images import TrainingImages
from selfcascade.training.distributed import (
    FROZEN_DTYPE,
    layout,
    rank_seed,
    start_run,
)
from selfcascade.training.features import FrozenFeatures, freeze_base_model
from selfcascade.training.request import (
    TrainingDone,
    TrainingRequest,
    TrainingStarted,
    TrainingStep,
)

CAPTION_DROP = 0.1
FINAL_LOSS_STEPS = 10  # the recorded final loss is the mean of the last steps' losses (one step is noisy)


def diffusion_target(scheduler, z0, noise, t):
    """epsilon, or the v-target for v-prediction models (Salimans & Ho 2022)."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(z0, noise, t)
    return noise


def training_loss(model: DiffusionModel, upsamplers, scheduler, pixels: torch.Tensor, captions: list[str],
                  max_timestep: int, generator: torch.Generator,
                  features: FrozenFeatures | None = None) -> torch.Tensor:
    """One Algorithm-1 loss on a batch of images (B, 3, H, W) in [-1, 1] (a video model's: clips, frames
    fastest, `features.group` frames each; one timestep per clip, as the video UNet takes it).

    `features` reuses the frozen terms of crops seen before; None computes them all for this batch.
    `upsamplers` is called (not a method of it): under DistributedDataParallel only a forward call
    all-reduces the gradients.
    """
    features = features or FrozenFeatures(model, budget_mb=0)
    frozen = features(pixels.cpu(), captions)
    z0 = frozen.z0
    t = torch.randint(1, max_timestep + 1, (len(pixels) // features.group,), generator=generator)
    t = t.repeat_interleave(features.group)
    noise = torch.randn(z0.shape, generator=generator)  # drawn on the CPU: the same numbers on any device
    t, noise = t.to(z0.device), noise.to(z0.device)
    start = z0 if frozen.pivot_up is None else frozen.pivot_up
    zt = scheduler.add_noise(start, noise, t).to(model.dtype)
    residuals, mid = upsamplers(frozen.skips, t, tuple(z0.shape[-2:]), model.dtype)
    prediction = model.predict_noise(zt, t, frozen.conditioning, down_block_additional_residuals=residuals,
                                     mid_block_additional_residual=mid)
    if frozen.pivot_up is None:
        return F.mse_loss(prediction.float(), diffusion_target(scheduler, z0, noise, t).float())
    alpha_bar = scheduler.alphas_cumprod.to(z0.device)[t].reshape(-1, *[1] * (z0.dim() - 1))
    x0 = clean_estimate(prediction.float(), zt.float(), alpha_bar, scheduler.config.prediction_type)
    return F.mse_loss(x0, z0.float())


def restored_with(request: TrainingRequest) -> str | None:
    """The restore objective's pivot up-sampling: the one the model's default settings generate with (so that
    training sees what inference does); None for the keep objective."""
    if request.objective != "restore":
        return None
    return request_defaults(request.model).get("pivot_up") or "latent"


def drop_captions(captions: list[str], group: int, rng: random.Random) -> list[str]:
    """CAPTION_DROP of the units (images, or whole clips of `group` frames) get "" (classifier-free guidance)."""
    kept = []
    for start in range(0, len(captions), group):
        dropped = rng.random() < CAPTION_DROP
        kept += ["" if dropped else c for c in captions[start:start + group]]
    return kept


def _adapter_folder(request: TrainingRequest, accelerator) -> Path:
    """request.out, or a timestamped name that every process agrees on (the main process's)."""
    names = [request.out or f"adapter-{int(time.time())}"]
    if accelerator.num_processes > 1 and not request.out:
        broadcast_object_list(names)
    return Path(names[0])


def _progress(request: TrainingRequest, done: int, previous: dict | None, checkpoint: bool) -> dict:
    """The steps trained so far (a resumed adapter's earlier ones included), and, for a run that has not
    finished them all, the steps planned and how this record ended: "checkpoint" (saved on the way; what a
    killed run leaves) or "stopped" (cancelled)."""
    earlier = int((previous or {}).get("steps", 0))
    record = {"steps": earlier + done}
    if done < request.steps:
        record |= {"planned_steps": earlier + request.steps, "ended": "checkpoint" if checkpoint else "stopped"}
    return record


def _record(request: TrainingRequest, started: TrainingStarted, losses: list[float], max_timestep: int,
            previous: dict | None, checkpoint: bool = False) -> dict:
    """What the adapter was trained for, stored in its metadata and model card: `losses` holds one loss per
    step done, so its length is what the record counts, never the steps asked for."""
    tail = losses[-FINAL_LOSS_STEPS:]
    return {**_progress(request, len(losses), previous, checkpoint), "final_loss": round(sum(tail) / len(tail), 6),
            "final_loss_steps": len(tail), "strength": request.strength, "timesteps": [1, max_timestep],
            "stage_size": list(request.size), "pivot_size": [request.size[0] // 2, request.size[1] // 2],
            "objective": request.objective, "design": request.design, "learning_rate": request.learning_rate,
            "batch": started.batch, "processes": started.processes,
            "grad_accum": started.grad_accum, "effective_batch": started.effective_batch,
            "mixed_precision": started.mixed_precision, "images": len(request.images),
            **({"frames": started.frames} if started.frames > 1 else {}),
            "resumed_from": public_name(request.resume) if request.resume else None,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _write_log(folder: Path, started: TrainingStarted, losses: list[float], seconds: list[float],
               hit_rate: float) -> None:
    log = {**{k: v for k, v in vars(started).items() if k != "main_process"},
           "effective_batch": started.effective_batch, "losses": losses, "seconds": seconds,
           "frozen_features_reused": round(hit_rate, 4)}
    (folder / "training_log.json").write_text(json.dumps(log, indent=1))


def _model_and_data(request: TrainingRequest, model: DiffusionModel):
    """(model, data, group): a video model set to the clip length with its clips, or an image model with its
    images (clips refused); `group` is the frames per clip (1 for images)."""
    if not getattr(model, "is_video", False):
        refuse_clips(request.images, public_name(model.name))
        return model, TrainingImages(request.images, request.size, model.size_multiple, request.caption), 1
    model = model.for_frames(request.frames)
    clips = TrainingClips(as_clip_sources(request.images), request.size, model.size_multiple, request.frames,
                          request.caption)
    return model, clips, request.frames


def _starting_upsamplers(request: TrainingRequest, model: DiffusionModel):
    """The adapter to resume, or new upsamplers (zero output gain: they start as the tuning-free cascade)."""
    with torch.random.fork_rng(devices=[]):  # the request's seed makes the random start (and so the run) repeatable
        torch.manual_seed(request.seed)
        if request.resume:
            return load_adapter(request.resume, model)
        return new_upsamplers(model.unet, model.name, request.width or default_width(request.design), request.design)


def _optimizer_step(request: TrainingRequest, accelerator, model, upsamplers, optimizer, scheduler, data, rngs,
                    features, max_timestep: int, group: int) -> float:
    """One optimizer step over `grad_accum` micro-batches; the loss averaged over them and over processes."""
    rng, generator = rngs
    total = torch.zeros((), device=accelerator.device)
    for _ in range(accelerator.gradient_accumulation_steps):
        pixels, captions = data.batch(request.batch, rng)
        captions = drop_captions(captions, group, rng)
        # accumulate() skips the all-reduce and the optimizer step until the last micro-batch.
        with accelerator.accumulate(upsamplers):
            with accelerator.autocast():
                loss = training_loss(model, upsamplers, scheduler, pixels, captions, max_timestep, generator, features)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        total += loss.detach().float().to(total.device)
    return accelerator.reduce(total / accelerator.gradient_accumulation_steps, "mean").item()


def train(request: TrainingRequest, model: DiffusionModel | None = None,
          cancel: threading.Event | None = None) -> Iterator[TrainingStarted | TrainingStep | TrainingDone]:
    """Train upsamplers for `request`: TrainingStarted, a TrainingStep per optimizer step (its loss averaged
    over micro-batches and processes), then TrainingDone with the saved adapter."""
    request.check()
    accelerator = start_run(request.mixed_precision, request.grad_accum)  # first: it picks this rank's GPU
    model = model or load_model(request.model, FROZEN_DTYPE[accelerator.mixed_precision])
    freeze_base_model(model)
    model, data, group = _model_and_data(request, model)
    upsamplers = _starting_upsamplers(request, model)
    previous = dict(upsamplers.config.get("training") or {})
    upsamplers = upsamplers.float().train()  # trainable weights stay float32 whatever the frozen model's dtype
    optimizer = torch.optim.AdamW(upsamplers.parameters(), lr=request.learning_rate, weight_decay=0.0)
    upsamplers, optimizer = accelerator.prepare(upsamplers, optimizer)
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    max_timestep = max(1, int(request.strength * scheduler.config.num_train_timesteps) - 1)
    seed = rank_seed(request.seed, accelerator.process_index)  # each process draws its own crops and noise
    rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    features = FrozenFeatures(model, keep=tuple(accelerator.unwrap_model(upsamplers).config.skip_indices),
                              group=group, restore=restored_with(request))
    spread = layout(accelerator)
    started_event = TrainingStarted(request.steps, request.batch, spread["processes"], spread["grad_accum"],
                                    spread["mixed_precision"], spread["distributed"], spread["backend"],
                                    spread["device"], spread["main_process"], group)
    yield started_event
    folder = _adapter_folder(request, accelerator)
    losses, seconds, started = [], [], time.perf_counter()
    try:
        for step in range(1, request.steps + 1):
            if cancel is not None and cancel.is_set():
                if not losses:  # nothing learned yet: nothing worth saving
                    raise Cancelled()
                break  # keep the weights of the last finished step
            losses.append(_optimizer_step(request, accelerator, model, upsamplers, optimizer, scheduler, data,
                                          (rng, generator), features, max_timestep, group))
            seconds.append(time.perf_counter() - started)
            speed = step / seconds[-1]
            checkpoint = None
            if request.checkpoint_every and step % request.checkpoint_every == 0 and step < request.steps:
                # Saving reads the weights only: the training state (train mode, optimizer) is untouched.
                checkpoint = _save(request, accelerator, upsamplers, folder, model, started_event, losses,
                                   max_timestep, previous, checkpoint=True)
            paused = time.perf_counter()
            yield TrainingStep(step, request.steps, losses[-1], speed, (request.steps - step) / speed, checkpoint)
            started += time.perf_counter() - paused  # the consumer's time (e.g. a live sample) is not training time
        _save(request, accelerator, upsamplers, folder, model, started_event, losses, max_timestep, previous)
        if accelerator.is_main_process:
            _write_log(folder, started_event, losses, seconds, features.hit_rate())
        accelerator.wait_for_everyone()  # no process reports the adapter before it is written
    finally:
        accelerator.free_memory()  # drop the accelerator's references to this run's model and optimizer
    yield TrainingDone(folder, len(losses), time.perf_counter() - started, losses, len(losses) < request.steps)


def _save(request: TrainingRequest, accelerator, upsamplers, folder: Path, model: DiffusionModel,
          started: TrainingStarted, losses: list[float], max_timestep: int, previous: dict,
          checkpoint: bool = False) -> Path:
    """The adapter as it is now, written by the main process (with what it was trained for so far)."""
    if accelerator.is_main_process:
        save_adapter(accelerator.unwrap_model(upsamplers), folder, size=request.size, model=model,
                     training=_record(request, started, losses, max_timestep, previous, checkpoint))
    return folder
