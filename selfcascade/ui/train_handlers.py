"""Thin handlers of the Train adapter tab: uploads -> TrainingRequest -> training events -> UI outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from ..adapters import load_adapter
from ..cascade import run
from ..models.loader import is_embedded, load_model
from ..outputs import OUTPUTS
from ..presets import request_defaults
from ..request import GenerationRequest
from ..sampling import Cancelled
from ..shapes.train_adapter import render_examples
from ..stages import InvalidRequest
from ..training import TrainingDone, TrainingRequest, TrainingStep, train
from . import sessions
from .handlers import on_gpu, whole_number

TRAIN_GPU_SECONDS = int(os.environ.get("SELFCASCADE_TRAIN_GPU_SECONDS", "300"))  # ZeroGPU time for one training
SHIPPED_ADAPTER = Path(__file__).resolve().parents[2] / "assets" / "shapes-adapter"
SAMPLE_PROMPT = "a large red circle on a white background"
_session_adapters: list[str] = []  # adapters trained or uploaded while this app runs, newest first


def adapter_choices() -> list[str]:
    shipped = [str(SHIPPED_ADAPTER)] if SHIPPED_ADAPTER.is_dir() else []
    _session_adapters[:] = [path for path in _session_adapters if Path(path).exists()]  # the bounded folder prunes
    return _session_adapters + shipped


def add_uploaded_adapter(path: str | None, model: str):
    """Check an uploaded adapter file against the chosen model; list it when it fits."""
    if not path:
        return gr.skip(), "No file."
    try:
        load_adapter(path, load_model(None if is_embedded(model) else model))
    except InvalidRequest as error:
        return gr.skip(), f"**Adapter refused:** {error}"
    _session_adapters.insert(0, path)
    return gr.update(choices=adapter_choices(), value=path), f"Adapter {Path(path).name} is ready (mode: tuned)."


def _loss_frame(losses: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses})


@on_gpu(seconds=TRAIN_GPU_SECONDS)
def train_stream(model, uploads, use_examples, width, height, steps, learning_rate, batch, caption,
                 request: gr.Request | None = None):
    """Yield (status, loss plot, sample image, adapter file) while the upsamplers train."""
    cancel = sessions.begin(request)
    losses: list[float] = []
    try:
        size = (whole_number(width, "width"), whole_number(height, "height"))
        model_id = None if is_embedded(model) else model
        paths = list(uploads or [])
        if use_examples:
            if model_id is not None:
                raise InvalidRequest("the example images are renders of the shapes world: use the embedded model")
            paths += render_examples(OUTPUTS.new_path("examples", "examples"), 64, max(size), 0)
        out = OUTPUTS.new_path("adapters", "adapter")
        training = TrainingRequest(images=paths, size=size, steps=whole_number(steps, "steps"),
                                   learning_rate=float(learning_rate), batch=whole_number(batch, "batch"),
                                   caption=caption or "", model=model_id, out=str(out))
        training.check()
        yield "Loading the model and the images...", gr.skip(), gr.skip(), gr.skip()
        loaded = load_model(model_id)
        last = 0.0
        for event in train(training, loaded, cancel=cancel):
            if isinstance(event, TrainingStep):
                losses.append(event.loss)
                if time.monotonic() - last > 0.5 or event.step == event.steps:
                    last = time.monotonic()
                    yield (f"Step {event.step}/{event.steps} · loss {event.loss:.4f} · "
                           f"{event.steps_per_second:.2f} steps/s · about {event.eta_seconds:.0f} s left",
                           _loss_frame(losses), gr.skip(), gr.skip())
            elif isinstance(event, TrainingDone):
                _session_adapters.insert(0, str(event.path))
                sample = run(GenerationRequest(caption or SAMPLE_PROMPT, size[0] * 2, size[1] * 2, mode="tuned",
                                               adapter=str(event.path), model=model_id,
                                               **request_defaults(model_id)), loaded, previews=False)
                yield (f"**Trained** {event.steps} steps in {event.seconds:.0f} s. Saved as {event.path.name}; "
                       "press *Use in Generate*.", _loss_frame(losses), sample.image,
                       str(event.path / "adapter.safetensors"))
    except InvalidRequest as error:
        gr.Warning(str(error))
        yield f"**Not trained:** {error}", gr.skip(), gr.skip(), gr.skip()
    except Cancelled:
        yield "**Stopped.** Nothing was saved.", gr.skip(), gr.skip(), gr.skip()
    finally:
        sessions.finish(request, cancel)
