"""Watching an adapter learn: Algorithm 1's training with a tuned sample every N steps beside the tuning-free one.

The tuning-free image (same prompt, size and seed) is made once, before the first step. Every N steps the
trainer saves a checkpoint adapter (training.py), and the cascade runs in tuned mode from that file: the
sample shows exactly what a download at that step would give, and the live upsamplers are never touched
(their train mode, gradients and optimizer state stay as they were). A Stop during a sample ends the
sample; the trainer then stops at its next step and saves what it has learned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image

from selfcascade.adapters.files import load_adapter
from selfcascade.cascade.pipeline import run
from selfcascade.cascade.presets import request_defaults
from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.cascade.stages import Size
from selfcascade.errors import Cancelled
from selfcascade.models.base import DiffusionModel
from selfcascade.models.video import VideoModel
from selfcascade.training.loop import TrainingDone, TrainingRequest, TrainingStep, train


@dataclass
class SampleSettings:
    prompt: str
    size: Size  # the size the adapter is trained for: its cascade is base -> ... -> size
    seed: int = 0
    model: str | None = None  # as in GenerationRequest (None: the embedded model)
    frames: int = 0  # a video model's sample length (0: an image model)

    def request(self, adapter: str | None) -> GenerationRequest:
        """The model's usual sampling settings; tuned with `adapter`, tuning-free without one."""
        kind, extra = (VideoRequest, {"frames": self.frames}) if self.frames else (GenerationRequest, {})
        loads = self.model if self.model is not None else kind.default_model  # None: the embedded one of its kind
        return kind(self.prompt, self.size[0], self.size[1], mode="tuned" if adapter else "tuning-free",
                    adapter=adapter, seed=self.seed, model=self.model, **request_defaults(loads), **extra)


@dataclass
class TrainingSample:
    step: int  # 0: before training
    image: Image.Image  # a video's: a strip of its frames
    tuned: bool  # False: the tuning-free reference
    seconds: float


def sample(model: DiffusionModel, settings: SampleSettings, adapter: str | None = None,
           cancel: threading.Event | None = None, step: int = 0) -> TrainingSample:
    """One sample: tuned with the adapter saved at `adapter`, or tuning-free without one."""
    started = time.perf_counter()
    result = run(settings.request(adapter), model, cancel=cancel, previews=False)
    image = VideoModel.strip(result.frames) if result.frames else result.image
    return TrainingSample(step, image, adapter is not None, time.perf_counter() - started)


def samples_left(step: int, steps: int, every: int) -> int:
    """Tuned samples still to come once `step` is done: its own (at a checkpoint), later checkpoints', the final."""
    checkpoints = (steps - 1) // every - (step - 1) // every if every else 0
    return max(0, checkpoints) + 1


def train_with_samples(request: TrainingRequest, model: DiffusionModel, settings: SampleSettings,
                       cancel: threading.Event | None = None
                       ) -> Iterator[TrainingStep | TrainingDone | TrainingSample]:
    """`train`'s events, with TrainingSample events: the tuning-free one first, a tuned one after each
    checkpoint (request.checkpoint_every) and before TrainingDone (not when stopped)."""
    if request.resume:
        load_adapter(request.resume, model)  # a wrong or damaged adapter fails before the reference sample
    yield sample(model, settings, None, cancel)
    for event in train(request, model, cancel):
        if isinstance(event, TrainingDone) and not event.stopped:
            yield sample(model, settings, str(event.path), None, event.steps)  # the result's own picture
        yield event
        if isinstance(event, TrainingStep) and event.checkpoint is not None:
            try:
                yield sample(model, settings, str(event.checkpoint), cancel, event.step)
            except Cancelled:
                pass  # the trainer sees the same flag at its next step, saves and reports where it stopped
