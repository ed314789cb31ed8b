"""Thin handlers of the Train adapter tab: uploads -> TrainingRequest -> training events and samples -> UI outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from selfcascade.adapters.designs import DEFAULT_DESIGN, DEFAULT_OBJECTIVE
from selfcascade.adapters.files import check_usable, read_adapter_config
from selfcascade.cascade.fields import number, whole_number
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.files.outputs import OUTPUTS
from selfcascade.models.loader import is_embedded, is_embedded_video, load_model
from selfcascade.models.names import SHIPPED_ADAPTERS
from selfcascade.shapes.train_adapter import render_example_clips, render_examples
from selfcascade.training.data.images import sidecar_caption
from selfcascade.training.data.uploads import TrainingData, gather_training_clips, gather_training_images
from selfcascade.training.loop import TrainingDone, TrainingRequest, TrainingStep
from selfcascade.training.samples import SampleSettings, TrainingSample, samples_left, train_with_samples
from selfcascade.ui import sessions, visitor_files
from selfcascade.ui.gpu_time import training_seconds
from selfcascade.ui.handlers import on_gpu
from selfcascade.ui.space_policy import check_source
from selfcascade.ui.video_handlers import VIDEO_MODEL_CHOICES

TRAIN_GPU_SECONDS = int(os.environ.get("SELFCASCADE_TRAIN_GPU_SECONDS", "300"))  # ZeroGPU time when unknown
SHIPPED_ADAPTER = SHIPPED_ADAPTERS["shapes-adapter"]
SHIPPED_VIDEO_ADAPTER = SHIPPED_ADAPTERS["shapes-video-adapter"]  # for the embedded shapes-video model
SAMPLE_PROMPT = "a large red circle on a white background"  # the embedded model's, when nothing else is given
NEW_ADAPTER = "(new)"  # the resume choice that starts from zero, i.e. from the tuning-free result
STATUS_INTERVAL = 0.5  # seconds between status updates: the browser need not redraw every step
TRAIN_OUTPUTS = ("status", "plot", "reference", "sample", "adapter", "resume")


def adapter_choices(video: bool | None = False, request: gr.Request | None = None) -> list[tuple[str, str]]:
    """(label, token) pairs: this session's adapters, newest first, then the shipped one for images (`video`: for
    the embedded video model; None: both). Tokens, not paths (visitor_files.resolve_adapter maps them back)."""
    return visitor_files.adapter_choices(request, video)


def resume_choices(request: gr.Request | None = None) -> list[tuple[str, str]]:
    """What a training can start from: zero, or an adapter of this session or a shipped one, by token."""
    return [("New adapter (starts as the tuning-free result)", NEW_ADAPTER), *adapter_choices(None, request)]


def _register_upload(path: str | None, model: str, request: gr.Request | None) -> str:
    """Check an uploaded adapter (readable, then fitting the chosen model) and make it this session's; its token.
    The file is checked before the model loads: a hostile file costs no model load."""
    if not path:
        raise InvalidRequest("no file")
    check_source("model", model)
    config = read_adapter_config(path)
    check_usable(config, load_model(None if is_embedded(model) else model), Path(path).name)
    return visitor_files.adopt_adapter(path, request)


def add_uploaded_adapter(path: str | None, model: str, request: gr.Request | None = None):
    """Generate tab: check an uploaded adapter file against the chosen model; list it when it fits."""
    if not path:
        return gr.skip(), "No file."
    try:
        token = _register_upload(path, model, request)
    except InvalidRequest as error:
        return gr.skip(), f"**Adapter refused:** {error}"
    return (gr.update(choices=adapter_choices(False, request), value=token),
            f"Adapter {token} is ready (mode: tuned).")


def add_resume_adapter(path: str | None, model: str, request: gr.Request | None = None):
    """Train tab: an uploaded adapter to continue training; checked against the base model now, not at Train."""
    if not path:
        return gr.skip(), gr.skip()
    try:
        token = _register_upload(path, model, request)
    except InvalidRequest as error:
        return gr.skip(), f"**Adapter refused:** {error}"
    return gr.update(choices=resume_choices(request), value=token), f"Training will continue from {token}."


def _outputs(**values) -> tuple:
    """The handler's outputs in the tab's order (TRAIN_OUTPUTS); what is not given stays as it is."""
    return tuple(values.get(name, gr.skip()) for name in TRAIN_OUTPUTS)


def _loss_frame(losses: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses})


def _notes(data_notes: list[str]) -> str:
    return "".join(f"\n- {note}" for note in data_notes)


def _sample_prompt(prompt: str, caption: str, data: TrainingData, model_id: str | None) -> str:
    """The sample's prompt: the one asked for, else the shared caption, else the first image's own."""
    for text in (prompt, caption, sidecar_caption(data.images[0])):
        if text and text.strip():
            return text.strip()
    return SAMPLE_PROMPT if model_id is None else ""


def _training_data(uploads, folder, use_examples, size, model_id, frames: int = 0) -> TrainingData:
    """The checked training set; `frames` > 0: a video model's clips of that many frames."""
    staging = OUTPUTS.new_path("datasets", "data")
    if use_examples:
        if frames and is_embedded_video(model_id):
            render_example_clips(staging / "examples", 16, max(size), frames, 0)
        elif model_id is not None or frames:
            raise InvalidRequest("the examples are renders of the shapes world: use the embedded model (images) "
                                 "or the embedded shapes-video model (clips)")
        else:
            render_examples(staging / "examples", 64, max(size), 0)
    if frames:
        return gather_training_clips(uploads, folder, staging, size, frames)
    return gather_training_images(uploads, folder, staging, size)


def is_video_adapter(path: str) -> bool:
    """Whether an adapter file was trained for a video model (its record names a clip length)."""
    try:
        return bool((read_adapter_config(path).get("training") or {}).get("frames"))
    except InvalidRequest:
        return False


def _is_video_choice(model: str | None) -> bool:
    """What the Base model choice says before loading: the listed video models (others: after loading)."""
    return model is not None and model.strip() in {value for _, value in VIDEO_MODEL_CHOICES}


def _training_gpu_seconds(arguments: dict) -> float:
    """ZeroGPU time of a training call (selfcascade.ui.gpu_time): clips count their frames."""
    return training_seconds(arguments, video=_is_video_choice(arguments.get("model")))


@on_gpu(seconds=_training_gpu_seconds, default=TRAIN_GPU_SECONDS)
def train_stream(model, uploads, folder, use_examples, width, height, steps, learning_rate, batch, caption,
                 sample_every=0, sample_prompt="", sample_seed=0, resume=NEW_ADAPTER, frames=8,
                 objective=DEFAULT_OBJECTIVE, design=DEFAULT_DESIGN, request: gr.Request | None = None):
    """Yield (status, loss plot, tuning-free sample, tuned sample, adapter file, resume choices) while training."""
    cancel = sessions.begin(request)
    losses: list[float] = []
    started = time.monotonic()
    try:
        sessions.raise_if_stopped(cancel)
        resume = visitor_files.checked_sources(request, model, None, resume, resume not in (None, "", NEW_ADAPTER))
        size = (whole_number(width, "width"), whole_number(height, "height"))
        model_id = None if is_embedded(model) else model
        every = whole_number(sample_every, "sample every N steps")
        if every < 0:
            raise InvalidRequest(f"sample every N steps must be 0 (only at the end) or more, not {every}")
        out = visitor_files.new_adapter_folder(request)
        training = TrainingRequest(images=[], size=size, steps=whole_number(steps, "steps"),
                                   learning_rate=number(learning_rate, "learning rate"),
                                   batch=whole_number(batch, "batch"),
                                   caption=caption or "", model=model_id, out=str(out), resume=resume,
                                   checkpoint_every=every, frames=whole_number(frames, "frames per clip"),
                                   objective=objective or DEFAULT_OBJECTIVE, design=design or DEFAULT_DESIGN)
        training.check()  # bad numbers fail before any file work
        clip_frames = training.frames if _is_video_choice(model) else 0
        data = _training_data(uploads, folder, use_examples, size, model_id, clip_frames)
        training.images = data.images
        settings = SampleSettings(_sample_prompt(sample_prompt, caption, data, model_id), size,
                                  whole_number(sample_seed, "sample seed"), model_id)
        notes = _notes(data.notes)
        yield _outputs(status=f"Loading the model; {data.describe()}.{notes}", plot=_loss_frame([]))
        loaded = load_model(model_id)
        if getattr(loaded, "is_video", False) != data.clips:  # a hub id or folder: its kind shows once loaded
            clip_frames = training.frames if data.clips is False else 0
            data = _training_data(uploads, folder, use_examples, size, model_id, clip_frames)
            training.images = data.images
        settings.frames = clip_frames
        last_status, sample_seconds = 0.0, 0.0
        for event in train_with_samples(training, loaded, settings, cancel):
            if isinstance(event, TrainingSample):
                sample_seconds = event.seconds
                if not event.tuned:
                    yield _outputs(status=f"Tuning-free sample of “{settings.prompt}” ready "
                                          f"({event.seconds:.1f} s); training...", reference=event.image)
                else:
                    yield _outputs(sample=gr.update(value=event.image, label=f"Tuned, step {event.step}"))
            elif isinstance(event, TrainingStep):
                losses.append(event.loss)
                update = {"adapter": str(event.checkpoint / "adapter.safetensors")} if event.checkpoint else {}
                if update or time.monotonic() - last_status > STATUS_INTERVAL or event.step == event.steps:
                    last_status = time.monotonic()
                    left = event.eta_seconds + samples_left(event.step, event.steps, every) * sample_seconds
                    yield _outputs(status=f"Step {event.step}/{event.steps} · loss {event.loss:.4f} · "
                                          f"{event.steps_per_second:.2f} steps/s · about {left:.0f} s left",
                                   plot=_loss_frame(losses), **update)
            elif isinstance(event, TrainingDone):
                if event.stopped:
                    text = (f"**Stopped at step {event.steps} of {training.steps}.** The adapter of step "
                            f"{event.steps} is saved as {event.path.name}: download it or press *Use this adapter*.")
                else:
                    text = (f"**Trained** {event.steps} steps in {event.seconds:.0f} s "
                            f"({time.monotonic() - started:.0f} s with loading and samples). Saved as "
                            f"{event.path.name}; press *Use this adapter*.")
                yield _outputs(status=text + notes, plot=_loss_frame(losses),
                               adapter=str(event.path / "adapter.safetensors"),
                               resume=gr.update(choices=resume_choices(request)))
    except InvalidRequest as error:
        gr.Warning(str(error))
        yield _outputs(status=f"**Not trained:** {error}")
    except Cancelled:
        yield _outputs(status="**Stopped** before the first step: nothing was saved.")
    finally:
        sessions.finish(request, cancel)
