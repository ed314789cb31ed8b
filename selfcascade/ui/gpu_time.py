"""How many seconds of ZeroGPU a handler asks for: the time estimate of what the call will run, with a margin,
a floor and a ceiling.

On a ZeroGPU Space, `spaces.GPU(duration=...)` reserves a GPU for that long per call: a call that runs longer
is cut off, and a longer reservation puts the visitor further back in ZeroGPU's queue and spends more of
their quota. `duration` may be a function: `spaces` calls it with the decorated handler's own arguments
before each call (spaces.zero.wrappers.static_duration), so each run asks for about what it needs. The
handlers' `on_gpu` (selfcascade.ui.handlers) builds that function with `gpu_duration`.

The estimate: `selfcascade.cascade.estimate.estimate(model, request).seconds` when the model is in memory and
has been timed in this process; otherwise a rule from the request alone (its stage sizes, steps, strength,
strategy and frames, in guided UNet calls per megapixel, plus the model's loading when it is not in memory).
The rule's constants are assumptions about a ZeroGPU GPU, not measurements (this project has no GPU to
time): the margin, floor and ceiling absorb their error, and each is an environment variable.
"""

from __future__ import annotations

import inspect
import math
import os
from typing import Callable

from selfcascade.cascade.estimate import estimate, folder_geometry, is_calibrated
from selfcascade.cascade.request import DEFAULT_FREE_INIT, GenerationRequest, VideoRequest
from selfcascade.cascade.stages import Size
from selfcascade.diffusion.upper_stage import canonical_strategy, relative_cost
from selfcascade.models.loader import current_model
from selfcascade.models.names import is_embedded, is_embedded_video, resolve

GPU_SECONDS = int(os.environ.get("SELFCASCADE_GPU_SECONDS", "120"))  # when a call's arguments tell nothing usable
FLOOR = int(os.environ.get("SELFCASCADE_GPU_SECONDS_MIN", "60"))  # the least a call asks for
CEILING = int(os.environ.get("SELFCASCADE_GPU_SECONDS_MAX", "600"))  # the most (ZeroGPU refuses above a quota)
MARGIN = 1.5  # estimate x margin: a run cut off at its end loses everything
LOAD_SECONDS = 60.0  # a model not in memory yet: reading (or downloading) its weights happens inside the call
EMBEDDED_LOAD_SECONDS = 5.0  # ... an embedded one (a few MB, shipped in the package)
MEGAPIXEL_STEP_SECONDS = 0.25  # one guided UNet call on one megapixel of image (frame), assumed, pessimistic
DECODE_MEGAPIXEL_SECONDS = 1.0  # the VAE decode of one megapixel of the result (frame), assumed
TRAIN_STEP_FACTOR = 3.0  # a training step (forward and backward) per sample, in guided UNet calls, assumed
HUB_STRATEGY = "frequency-pyramid"  # what a hub model's upper stages run unless asked otherwise

Arguments = dict  # a handler's arguments by parameter name


def gpu_duration(function: Callable, seconds: int | Callable[[Arguments], float],
                 default: int = GPU_SECONDS) -> int | Callable[..., int]:
    """`duration` for `spaces.GPU` on `function`: `seconds` as is when it is a number; else a function taking
    `function`'s arguments (as `spaces` passes them) that returns `seconds(arguments by name)` with the margin,
    within FLOOR..CEILING; `default` when the arguments tell nothing usable. It never raises: a bad request
    fails at once in the handler, with its one line."""
    if not callable(seconds):
        return int(seconds)
    signature = inspect.signature(function)

    def duration(*args, **kwargs) -> int:
        try:
            return clamp(seconds(signature.bind_partial(*args, **kwargs).arguments))
        except Exception:  # noqa: BLE001 - any failure means "cannot tell": ask for the default, never fail the call
            return default
    duration.__name__ = f"{getattr(function, '__name__', 'handler')}_gpu_seconds"
    return duration


def clamp(seconds: float) -> int:
    """Estimated seconds with the margin, within FLOOR..CEILING."""
    if not math.isfinite(seconds):
        raise ValueError(f"no estimate: {seconds}")
    return int(min(CEILING, max(FLOOR, math.ceil(seconds * MARGIN))))


def _whole(value) -> int:
    number = float(value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def _model(value, video: bool = False) -> str | None:
    text = str(value or "").strip()
    return None if is_embedded(text) or (video and is_embedded_video(text)) else text


def image_request(arguments: Arguments, mode: str | None = None) -> GenerationRequest:
    """The checked request of an image handler's arguments, as far as time goes (no prompt, no files)."""
    get = arguments.get
    request = GenerationRequest(
        prompt="", width=_whole(get("width")), height=_whole(get("height")), stages=get("stages") or "",
        mode=mode or get("mode") or "tuning-free", steps=_whole(get("steps", 40)),
        strength=float(get("strength", 0.5)), guidance=float(get("guidance", 4.0)), model=_model(get("model")),
        upper=get("upper") or None,
        upper_guidance=None if get("upper_guidance") in (None, "") else float(get("upper_guidance")),
        consensus=None if get("consensus") in (None, "") else _whole(get("consensus")))
    request.check()
    return request


def video_request(arguments: Arguments) -> VideoRequest:
    """The checked request of the video handler's arguments, as far as time goes."""
    get = arguments.get
    request = VideoRequest(
        prompt="", width=_whole(get("width")), height=_whole(get("height")), frames=_whole(get("frames", 16)),
        stages=get("stages") or "", mode=get("mode") or "tuning-free", steps=_whole(get("steps", 40)),
        strength=float(get("strength", 0.5)), guidance=float(get("guidance", 4.0)),
        model=_model(get("model"), video=True), upper=get("upper") or None,
        upper_guidance=None if get("upper_guidance") in (None, "") else float(get("upper_guidance")),
        free_init=_whole(get("free_init", DEFAULT_FREE_INIT)))
    request.check()
    return request


def _geometry(request: GenerationRequest) -> tuple[Size, int]:
    """(base size, size multiple) of the request's model: an embedded one's from its config files, a hub
    model's guessed (1024 px for an SDXL id, 256 for a video model, else 512; latents of 1/8, 3 downsamplings)."""
    if request.model is None:
        return folder_geometry(resolve(request.default_model))
    if isinstance(request, VideoRequest):
        return (256, 256), 64
    side = 1024 if "xl" in request.model.lower() else 512
    return (side, side), 64


def rule_seconds(request: GenerationRequest) -> float:
    """Seconds of `request` from its size alone: guided UNet calls per megapixel over its stages (the first at
    full steps, each upper stage at steps x strength, its strategy's relative cost) and the decode. Frames
    multiply it; FreeInit passes repeat the first stage. The model's loading is `load_seconds`'."""
    plan = request.plan(*_geometry(request))
    frames = getattr(request, "frames", 1)
    strategy = canonical_strategy(request.upper) or ("plain" if request.mode == "direct" else HUB_STRATEGY)
    calls = 0.0
    for index, (width, height) in enumerate(plan.sizes):
        steps = request.steps * (1 + request.free_init_passes()) if index == 0 else request.steps * request.strength
        if index == 0:
            steps += request.consensus or 0
        cost = 1.0 if index == 0 else relative_cost(strategy)
        guided = 1.0 if request.stage_guidance(index > 0) > 1 else 0.5
        calls += steps * cost * guided * width * height / 1e6
    width, height = plan.sizes[-1]
    return (calls * MEGAPIXEL_STEP_SECONDS + width * height / 1e6 * DECODE_MEGAPIXEL_SECONDS) * frames


def load_seconds(request: GenerationRequest) -> float:
    """The loading of the request's model when it is not the one in memory, else 0."""
    if current_model(request.model if request.model is not None else request.default_model) is not None:
        return 0.0
    return EMBEDDED_LOAD_SECONDS if request.model is None else LOAD_SECONDS


def run_seconds(request: GenerationRequest, loading: bool = True) -> float:
    """Seconds of one run: the time estimate of the model in memory when it has been timed in this process
    (images), else the rule, and with `loading` the model's loading."""
    if not isinstance(request, VideoRequest):
        loaded = current_model(request.model)
        if loaded is not None and is_calibrated(loaded):
            return estimate(loaded, request).seconds
    return rule_seconds(request) + (load_seconds(request) if loading else 0.0)


def image_seconds(arguments: Arguments) -> float:
    """An image handler's run (Generate): its `num_images` images one after another on the model loaded once.
    Compare's (it has a `baseline`) is two: the baseline, and the cascade in tuned mode when the form's mode
    is, else tuning-free."""
    baseline = arguments.get("baseline")
    if not baseline:
        images = arguments.get("num_images")
        request, count = image_request(arguments), 1 if images in (None, "") else _whole(images)
        if count < 1:
            raise ValueError(f"not a number of images: {count}")
        return run_seconds(request) + (count - 1) * run_seconds(request, loading=False)
    cascade = "tuned" if arguments.get("mode") == "tuned" else "tuning-free"
    return (run_seconds(image_request(arguments, mode=cascade))
            + run_seconds(image_request(arguments, mode=str(baseline)), loading=False))


def images_that_fit(request: GenerationRequest, count: int) -> int:
    """How many of `count` images of `request` (one after another, the model loaded once) fit in the most one
    call may ask for, CEILING, with the margin; at least 1 (a single image asks for at most the ceiling, as
    always). On a Space the Generate handler refuses a batch above it: cut off at its duration, the call would
    lose the images it had not finished."""
    first, each = run_seconds(request), run_seconds(request, loading=False)
    if each <= 0:
        return count
    return max(1, min(count, 1 + int(max(0.0, CEILING / MARGIN - first) // each)))


def video_seconds(arguments: Arguments) -> float:
    """The video handler's run."""
    return run_seconds(video_request(arguments))


def training_seconds(arguments: Arguments, video: bool = False) -> float:
    """A training run: its steps (batch x frames samples of the training size each, TRAIN_STEP_FACTOR guided
    calls per megapixel), the tuning-free sample, a tuned one every `sample_every` steps and one at the end
    (each a run at the training size), and the model's loading."""
    get = arguments.get
    width, height, steps, batch = (_whole(get(name)) for name in ("width", "height", "steps", "batch"))
    frames = _whole(get("frames", 8)) if video else 1
    every = _whole(get("sample_every") or 0)
    if min(width, height, steps, batch, frames) < 1 or every < 0:
        raise ValueError("not a training request")
    kind, extra = (VideoRequest, {"frames": frames}) if video else (GenerationRequest, {})
    sample = kind(prompt="", width=width, height=height, model=_model(get("model"), video=video), **extra)
    sample.check()
    samples = 2 + (steps // every if every else 0)
    train = steps * batch * frames * width * height / 1e6 * TRAIN_STEP_FACTOR * MEGAPIXEL_STEP_SECONDS
    return train + samples * rule_seconds(sample) + load_seconds(sample)
